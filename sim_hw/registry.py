"""Backend tags → classes, `make_backend`, and the spec parser used by graph-level and CLI overrides."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sim_hw.backend import Backend
from sim_hw.config import build_config, parse_value
from sim_hw.errors import BackendConfigError
from sim_hw.ideal import IdealBackend, IdealConfig
from sim_hw.loas.backend import LoASBackend
from sim_hw.loas.config import LoASConfig
from sim_hw.rram.backend import RRAMBackend
from sim_hw.rram.config import RRAMConfig

__all__ = ["BACKENDS", "make_backend", "parse_backend_spec", "resolve_backend_spec", "backend_params"]

BACKENDS: dict[str, tuple[type[Backend], type]] = {
    "ideal": (IdealBackend, IdealConfig),
    "rram": (RRAMBackend, RRAMConfig),
    "loas": (LoASBackend, LoASConfig),
}


def _check_kind(kind: str) -> str:
    if kind not in BACKENDS:
        raise BackendConfigError(f"unknown backend kind {kind!r}; valid kinds: {', '.join(BACKENDS)}")
    return kind


def backend_params(kind: str) -> dict[str, Any]:
    """The parameters of a backend kind with their defaults."""
    import dataclasses

    _, cfg_cls = BACKENDS[_check_kind(kind)]
    return {f.name: f.default for f in dataclasses.fields(cfg_cls)}


def make_backend(kind: str, **params: Any) -> Backend:
    """A backend by tag: `make_backend("rram", adc_bits=6, read_noise=0.01)`.

    String values are converted to the parameter's type, so CLI `k=v` pairs can be passed as-is.
    An unknown kind or parameter raises BackendConfigError listing the valid ones.
    """
    backend_cls, cfg_cls = BACKENDS[_check_kind(kind)]
    return backend_cls(build_config(cfg_cls, kind, params))


def parse_backend_spec(spec: str | Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """Read a backend spec: "rram", "rram:adc_bits=6,read_noise=0.01", {"kind": "rram", "adc_bits": 6}
    or {"kind": "rram", "params": {"adc_bits": 6}} → ("rram", {"adc_bits": 6, ...}).

    Only the kind is checked here; `make_backend` checks the parameters.
    """
    if isinstance(spec, Mapping):
        if "kind" not in spec:
            raise BackendConfigError(
                f"backend spec {dict(spec)!r} has no 'kind' (one of {', '.join(BACKENDS)})"
            )
        params = {k: v for k, v in spec.items() if k not in ("kind", "params")}
        nested = spec.get("params") or {}
        if not isinstance(nested, Mapping):
            raise BackendConfigError(f"backend spec 'params' must be a mapping, got {nested!r}")
        params.update(nested)
        return _check_kind(str(spec["kind"])), params
    if not isinstance(spec, str) or not spec.strip():
        raise BackendConfigError(f"backend spec must be a non-empty string or a mapping, got {spec!r}")
    kind, _, rest = spec.strip().partition(":")
    params = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise BackendConfigError(f"backend spec {spec!r}: {item!r} is not key=value")
        params[key.strip()] = parse_value(value)
    return _check_kind(kind.strip()), params


def resolve_backend_spec(
    node_spec: str | Mapping[str, Any] | None, override: str | Mapping[str, Any] | None
) -> tuple[str, dict[str, Any]]:
    """The backend a node should use when a graph-level or CLI `override` may switch all nodes.

    No override: the node's own spec (default "ideal"). Override of the same kind: the node's params
    updated by the override's. Override of another kind: the override alone.
    """
    kind, params = parse_backend_spec(node_spec) if node_spec is not None else ("ideal", {})
    if override is None:
        return kind, params
    okind, oparams = parse_backend_spec(override)
    return (okind, {**params, **oparams}) if okind == kind else (okind, oparams)
