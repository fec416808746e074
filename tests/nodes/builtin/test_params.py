"""`param_errors`: a library's ValueError at setup becomes a GraphError naming the node, the param and the rule."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

import pytest

from nodes.builtin._params import param_errors
from nodes.builtin.event_camera import SyntheticEventCameraSource
from nodes.builtin.imu import ImuRateController, SyntheticImuSource
from runtime.errors import GraphError
from runtime.node import Context
from runtime.testing import NodeHarness


def _ctx() -> Context:
    return cast(Context, SimpleNamespace(node_id="cam"))  # param_errors reads only the node id


class _NarrowError(ValueError):
    pass


def test_names_node_param_and_hint() -> None:
    with pytest.raises(
        GraphError, match=r"^node 'cam', param 'scene': unknown scene 'cats' \(try bars\)$"
    ) as err:
        with param_errors(_ctx(), "scene", hint=" (try bars)"):
            raise ValueError("unknown scene 'cats'")
    assert isinstance(err.value.__cause__, ValueError)
    with pytest.raises(GraphError, match=r"^node 'cam': bad$"):
        with param_errors(_ctx()):
            raise ValueError("bad")


def test_catches_only_what_it_is_told() -> None:
    with pytest.raises(ValueError, match="other") as err:
        with param_errors(_ctx(), "backend", catch=_NarrowError):
            raise ValueError("other")
    assert not isinstance(err.value, GraphError)
    with pytest.raises(GraphError, match="param 'backend': narrow"):
        with param_errors(_ctx(), "backend", catch=_NarrowError):
            raise _NarrowError("narrow")


def test_a_graph_error_passes_unchanged() -> None:
    original = GraphError("node 'x': already named")
    with pytest.raises(GraphError) as err:
        with param_errors(_ctx(), "p"):
            raise original
    assert err.value is original


async def test_nodes_use_it() -> None:
    with pytest.raises(GraphError, match=r"node 'node': unknown gesture classes \['wave_hello'\]"):
        async with NodeHarness(SyntheticEventCameraSource, {"scene": "gestures", "classes": ["wave_hello"]}):
            pass
    with pytest.raises(GraphError, match=r"node 'node': unknown activity 'dancing'.*\(activities: walking"):
        async with NodeHarness(SyntheticImuSource, {"activities": [["dancing", 5.0]]}):
            pass
    with pytest.raises(GraphError, match=r"still_below ≤ moving_above, got 0\.9, 0\.5"):
        async with NodeHarness(ImuRateController, {"still_below": 0.9, "moving_above": 0.5}):
            pass
