"""Find node classes by name: built-in catalogues and third-party nodes via the `edgeloop.nodes` entry points, or `package.module:Class`."""

from __future__ import annotations

import importlib
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from .errors import GraphError
from .node import Node

__all__ = ["resolve_node", "catalogue", "load_plugin_table", "import_target"]


def import_target(target: str) -> Any:
    """Import `package.module:Attr` (or `package.module.Attr`)."""
    module_name, sep, attr = target.partition(":")
    if not sep:
        module_name, _, attr = target.rpartition(".")
    if not module_name or not attr:
        raise GraphError(f"'{target}' is not an importable 'package.module:Class' path")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise GraphError(
            f"cannot import module '{module_name}' for '{target}': {exc} (is its package installed, "
            "or its directory on PYTHONPATH?)"
        ) from exc
    except Exception as exc:  # the module itself is broken: say which, with its error
        raise GraphError(
            f"importing module '{module_name}' for '{target}' failed: {type(exc).__name__}: {exc}"
        ) from exc
    try:
        return getattr(module, attr)
    except AttributeError as exc:
        raise GraphError(f"module '{module_name}' has no attribute '{attr}' (from '{target}')") from exc


@cache
def load_plugin_table(group: str) -> dict[str, str]:
    """Merge the name → target tables that packages register under entry-point `group`.

    An entry point may name a dict (a catalogue of many names) or a single object (its entry-point
    name is the graph name).
    """
    table: dict[str, str] = {}
    for ep in entry_points(group=group):
        try:
            obj = ep.load()
        except Exception as exc:  # one broken plugin package: name it rather than fail with its traceback
            package = ep.dist.name if ep.dist is not None else "unknown package"
            raise GraphError(
                f"entry point '{ep.name} = {ep.value}' of group '{group}' (from {package}) cannot be loaded: "
                f"{type(exc).__name__}: {exc} (fix or uninstall {package})"
            ) from exc
        if isinstance(obj, dict):
            table.update(obj)
        else:
            table[ep.name] = ep.value
    return table


def catalogue() -> dict[str, str]:
    """Every node name usable in `uses:`, mapped to its import target."""
    return dict(sorted(load_plugin_table("edgeloop.nodes").items()))


def resolve_node(uses: str) -> type[Node]:
    """The Node class a graph's `uses:` names."""
    table = catalogue()
    if uses in table:
        target = table[uses]
    elif ":" in uses:
        target = uses
    else:
        close = [n for n in table if n.split(".")[0] == uses.split(".")[0]] or list(table)[:8]
        raise GraphError(
            f"unknown node type '{uses}': use a built-in name ({', '.join(close)}…, see "
            "`edgeloop nodes`) or 'package.module:Class'"
        )
    cls = import_target(target)
    if not (isinstance(cls, type) and issubclass(cls, Node)):
        raise GraphError(
            f"'{uses}' resolves to {cls!r}, which is not a runtime.node.Node subclass (name a Node class)"
        )
    return cls
