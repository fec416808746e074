"""Find node classes by name: built-in catalogues and third-party nodes via the `edgeloop.nodes` entry points, `package.module:Class`, or `file.py:Class` next to the graph."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from .errors import GraphError
from .node import Node

__all__ = ["resolve_node", "catalogue", "load_plugin_table", "import_target"]


def _load_file(file: str, target: str, base_dir: Path | None) -> Any:
    """The module in a `.py` file; a relative path is from `base_dir` (the graph's folder)."""
    path = Path(file)
    where = ""
    if not path.is_absolute():
        base = base_dir if base_dir is not None else Path.cwd()
        where = f" (relative to the graph's folder, {base})" if base_dir is not None else ""
        path = base / path
    path = path.absolute()
    if not path.is_file():
        raise GraphError(f"'{target}': file '{file}'{where} does not exist; fix the path in `uses:`")
    name = f"_edgeloop_file_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:10]}"
    if name in sys.modules:  # the same file, loaded again by a transformed graph: the same classes
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise GraphError(f"'{target}': {path} cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the file itself is broken: say which, with its error
        del sys.modules[name]
        raise GraphError(f"importing {path} for '{target}' failed: {type(exc).__name__}: {exc}") from exc
    return module


def _import_next_to(module_name: str, target: str, base_dir: Path) -> Any:
    """`module:Class` whose module (or package) sits in the graph's folder, imported from there."""
    top = module_name.split(".")[0]
    if not ((base_dir / f"{top}.py").is_file() or (base_dir / top / "__init__.py").is_file()):
        return None
    sys.path.insert(0, str(base_dir))
    try:
        return importlib.import_module(module_name)
    except Exception as exc:
        raise GraphError(
            f"importing module '{module_name}' for '{target}' from the graph's folder {base_dir} failed: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    finally:
        sys.path.remove(str(base_dir))


def import_target(target: str, base_dir: str | Path | None = None) -> Any:
    """Import `package.module:Attr` (or `package.module.Attr`), or `path/file.py:Attr`.

    `base_dir`, the graph's folder: a relative `.py` file is found there, and a module that is not
    importable otherwise is looked for there too."""
    base = None if base_dir is None else Path(base_dir)
    module_name, sep, attr = target.partition(":")
    if not sep:
        module_name, _, attr = target.rpartition(".")
    if not module_name or not attr:
        raise GraphError(f"'{target}' is not an importable 'package.module:Class' path")
    if module_name.endswith(".py"):
        return _attr(_load_file(module_name, target, base), module_name, attr, target)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        module = None
        if base is not None and exc.name == module_name.split(".")[0]:
            module = _import_next_to(module_name, target, base)
        if module is None:
            folder = f", or a {module_name.split('.')[0]}.py in the graph's folder {base}" if base else ""
            raise GraphError(
                f"cannot import module '{module_name}' for '{target}': {exc} (is its package installed, "
                f"or its directory on PYTHONPATH{folder}?)"
            ) from exc
    except ImportError as exc:
        raise GraphError(
            f"cannot import module '{module_name}' for '{target}': {exc} (is its package installed, "
            "or its directory on PYTHONPATH?)"
        ) from exc
    except Exception as exc:  # the module itself is broken: say which, with its error
        raise GraphError(
            f"importing module '{module_name}' for '{target}' failed: {type(exc).__name__}: {exc}"
        ) from exc
    return _attr(module, module_name, attr, target)


def _attr(module: Any, module_name: str, attr: str, target: str) -> Any:
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


def resolve_node(uses: str, base_dir: str | Path | None = None) -> type[Node]:
    """The Node class a graph's `uses:` names; `file.py:Class` and modules next to the graph are
    found in `base_dir`, the graph's folder."""
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
    cls = import_target(target, base_dir)
    if not (isinstance(cls, type) and issubclass(cls, Node)):
        raise GraphError(
            f"'{uses}' resolves to {cls!r}, which is not a runtime.node.Node subclass (name a Node class)"
        )
    return cls
