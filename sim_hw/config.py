"""Backend parameter records: build a frozen dataclass from user params, with clear errors and type coercion."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from sim_hw.errors import BackendConfigError

__all__ = ["build_config", "parse_value", "describe_config"]

C = TypeVar("C")


def parse_value(text: str) -> Any:
    """Turn a command-line value into a Python scalar: ints, floats, true/false, none, else the string."""
    low = text.strip().lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if low in ("none", "null"):
        return None
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text.strip()


def _coerce(kind: str, name: str, value: Any, hint: Any) -> Any:
    """Coerce `value` to the annotated type `hint` (str values come from CLI specs)."""
    args = typing.get_args(hint)
    allowed = [a for a in args if a is not type(None)] if args else [hint]
    if value is None:
        if type(None) in args:
            return None
        raise BackendConfigError(f"backend {kind!r}: parameter {name!r} may not be None")
    if isinstance(value, str) and str not in allowed:
        value = parse_value(value)
    for typ in allowed:
        if typ is bool:
            if isinstance(value, bool):
                return value
            continue
        if typ is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if typ is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if typ is str and isinstance(value, str):
            return value
    names = " or ".join(getattr(t, "__name__", str(t)) for t in allowed)
    raise BackendConfigError(f"backend {kind!r}: parameter {name!r} must be {names}, got {value!r}")


def build_config(cls: type[C], kind: str, params: Mapping[str, Any]) -> C:
    """`cls(**params)` with unknown names and wrong types reported, listing the valid parameters.

    The dataclass may define `validate(self) -> None` raising ValueError for out-of-range values.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(params) - set(fields))
    if unknown:
        valid = ", ".join(sorted(fields))
        raise BackendConfigError(
            f"backend {kind!r}: unknown parameter(s) {', '.join(unknown)}; valid: {valid}"
        )
    values = {k: _coerce(kind, k, v, hints[k]) for k, v in params.items()}
    try:
        cfg = cls(**values)
        validate = getattr(cfg, "validate", None)
        if validate is not None:
            validate()
    except BackendConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise BackendConfigError(f"backend {kind!r}: {exc}") from exc
    return cfg


def describe_config(cfg: Any) -> dict[str, Any]:
    """The parameters of a config record as a plain dict."""
    return dataclasses.asdict(cfg)
