"""Field checks of the launcher↔worker control messages: by a field's name where it has a range, else by
its declared type; a worker's statistics snapshot against its whole shape. Each check returns the value or
raises `TypeError` naming what was expected (`runtime.control.decode` turns it into a `CodecError`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .supervision import NodeState
from .wiring import Wiring

__all__ = ["check_for"]

_MAX_NAME = 256  # agent and node names, endpoints
_MAX_TEXT = 65_536  # an error message
_MAX_ENTRIES = 100_000  # entries of one map or list in a message
_MAX_INT = 1 << 62


def _ranged(lo: int, hi: int, what: str) -> Callable[[object], object]:
    def check(v: object) -> int:
        if type(v) is not int or not lo <= v <= hi:
            raise TypeError(what)
        return v

    return check


def _bounded_str(limit: int, what: str) -> Callable[[object], object]:
    def check(v: object) -> str:
        if type(v) is not str or len(v) > limit or (limit == _MAX_NAME and not v):
            raise TypeError(what)
        return v

    return check


def _str_map(v: object) -> dict[str, str]:
    if (
        not isinstance(v, dict)
        or len(v) > _MAX_ENTRIES
        or not all(type(k) is str and type(x) is str for k, x in v.items())
    ):
        raise TypeError("a map of strings to strings")
    return v


def _map(v: object) -> dict[str, Any]:
    if not isinstance(v, dict) or not all(type(k) is str for k in v):
        raise TypeError("a map with string keys")
    return v


def _wiring(v: object) -> Wiring:
    d = _map(v)
    remote = d.get("remote")
    try:
        if (
            set(d) != _WIRING_KEYS
            or type(d["control"]) is not str
            or type(d["telemetry"]) is not str
            or type(d["curve"]) is not bool
            or not isinstance(remote, list)
            or not all(type(x) is str for x in remote)
        ):
            raise TypeError
        for table in ("inbox", "bp_inbox", "bind", "tap"):
            _str_map(d[table])
    except TypeError as exc:
        raise TypeError(f"a wiring (keys {', '.join(sorted(_WIRING_KEYS))}; endpoints as strings)") from exc
    return Wiring.from_dict(d)


def _snapshot(v: object) -> dict[str, Any]:
    """A worker's statistics snapshot, checked against `_SNAPSHOT` (every key the summary reads)."""
    d = _map(v)
    try:
        _check_shape(d, _SNAPSHOT, "snapshot")
    except TypeError as exc:
        raise TypeError(f"a statistics snapshot ({exc})") from None
    return d


# The snapshot's shape (`AgentWorker.snapshot`): a dict is a record with exactly these keys; a 1-tuple is
# a map of names to its element; a list a list of its element; `float` a number (int or float, not
# bool); `int` a count (>= 0); `None` in a tuple of types: that value may be nil.
# A key added to a worker's snapshot must be added here too, or its every `Stats` is dropped (logged).
_PCTS = {"p50_us": float, "p99_us": float, "max_us": float}
_SNAPSHOT: dict[str, Any] = {
    "agent": str,
    "pid": int,
    "incarnation": int,
    "cpu_s": float,
    "rss": int,
    "time": float,
    "malformed": int,
    "unroutable": int,
    "tap_ignored": int,
    "transport": {"inbox": str, "host": str, "curve": bool},
    "nodes": (
        {
            "state": "state",
            "restarts": int,
            "failures": int,
            "error": str,
            "busy_s": float,
            "counters": (float,),
        },
    ),
    "edges": (
        {
            "received": int,
            "dropped": int,
            "dropped_queue": int,
            "dropped_gap": int,
            "dropped_failed": int,
            "queue_depth": int,
            "closed": bool,
            "latency": _PCTS,
            "hist": {"counts": [int], "sum_us": float},
            "sense_latency": _PCTS,
        },
    ),
    "outputs": ({"sent": int, "send_drops": int, "bytes": int},),
    "paths": (
        {
            "count": int,
            "late": int,
            "too_late": int,
            **_PCTS,
            "deadline_ms": (float, None),
        },
    ),
}
_STATES = frozenset(s.value for s in NodeState)


def _check_shape(v: object, shape: Any, where: str) -> None:
    if isinstance(shape, dict):
        if type(v) is not dict or set(v) != set(shape):
            raise TypeError(f"{where}: a record of exactly {', '.join(shape)}")
        for k, sub in shape.items():
            _check_shape(v[k], sub, f"{where}.{k}")
    elif type(shape) is tuple and len(shape) == 1:
        if type(v) is not dict or len(v) > _MAX_ENTRIES or not all(type(k) is str for k in v):
            raise TypeError(f"{where}: a map of names")
        for k, x in v.items():
            _check_shape(x, shape[0], f"{where}[{k[:40]!r}]")
    elif type(shape) is list:
        if type(v) is not list or len(v) > _MAX_ENTRIES:
            raise TypeError(f"{where}: a list")
        for x in v:
            _check_shape(x, shape[0], f"{where}[]")
    elif type(shape) is tuple:  # (float, None)
        if v is not None:
            _check_shape(v, shape[0], where)
    elif shape == "state":
        if v not in _STATES:
            raise TypeError(f"{where}: one of {', '.join(sorted(_STATES))}")
    elif shape is float:
        if type(v) is not float and type(v) is not int:
            raise TypeError(f"{where}: a number")
    elif shape is int:
        if type(v) is not int or not 0 <= v <= _MAX_INT:
            raise TypeError(f"{where}: a count (an integer >= 0)")
    elif type(v) is not shape:
        raise TypeError(f"{where}: a {shape.__name__}")


_WIRING_KEYS = set(Wiring("").to_dict())
_CHECKS: dict[str, Callable[[object], object]] = {
    "Mapping[str, str]": _str_map,
    "Mapping[str, Any]": _snapshot,
    "Wiring": _wiring,
}
_BY_NAME: dict[str, Callable[[object], object]] = {
    "agent": _bounded_str(_MAX_NAME, "a string of 1 to 256 characters"),
    "node": _bounded_str(_MAX_NAME, "a string of 1 to 256 characters"),
    "hook": _bounded_str(_MAX_NAME, "a string of 1 to 256 characters"),
    "error": _bounded_str(_MAX_TEXT, f"a string of at most {_MAX_TEXT} characters"),
    "incarnation": _ranged(0, (1 << 31) - 1, "an integer from 0 to 2**31-1"),
    "pid": _ranged(1, (1 << 31) - 1, "an integer from 1 to 2**31-1 (a process id)"),
    "code": _ranged(-255, 255, "an integer from -255 to 255 (an exit code)"),
}


def check_for(name: str, declared_type: str) -> Callable[[object], object]:
    """The check of a message field called `name`, declared as `declared_type` (its annotation text)."""
    return _BY_NAME.get(name) or _CHECKS[declared_type]
