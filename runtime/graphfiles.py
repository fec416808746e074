"""Files around a graph, checked before anything starts: the graph file itself (a YAML file, not a
directory or a recording), the files nodes' parameters name (`Node.file_params`), and output files
whose folder is missing (`ensure_parent`)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .errors import EdgeloopError, GraphError
from .filetype import file_type
from .node import Node

__all__ = ["check_graph_path", "check_param_files", "resolve_param_files", "ensure_parent"]

#: `pretrained:gestures`, `s3://…`, `hf:…`: a name some node resolves itself, not a local file. Two
#: letters at least, so a Windows drive (`C:\…`) is still a path.
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]+:")
#: Hosts that are this machine (as `runtime.wiring.is_local_host`; not imported: wiring needs zmq).
_LOCAL_HOSTS = {None, "", "localhost", "127.0.0.1", "::1"}


def check_graph_path(path: str | Path) -> None:
    """A GraphError naming what `path` is when it cannot be a graph file (a directory, a recording,
    a binary file); a missing file is left to the YAML loader, which says so."""
    ft = file_type(path)
    if ft.kind == "directory":
        yamls = sorted(p.name for p in Path(path).iterdir() if p.suffix in (".yaml", ".yml"))
        hint = (
            f"; the graph files in it: {', '.join(os.path.join(str(path), y) for y in yamls[:5])}"
            if yamls
            else " (it holds no .yaml file)"
        )
        raise GraphError(f"{path}: is a directory, not a graph file: give a graph YAML file{hint}")
    if ft.kind == "mcap":
        raise GraphError(
            f"{path}: this is an MCAP recording, not a graph; replay it with `edgeloop replay {path}`"
        )
    if ft.kind not in ("text", "empty", "missing"):
        raise GraphError(f"{path}: this is {ft.description}, not a graph YAML file")


def check_param_files(
    nodes: list[tuple[str, str, str | None]],
    classes: Mapping[str, type[Node]],
    params: Mapping[str, Any],
    where: Callable[[str, str], str],
    base_dir: str | None = None,
) -> None:
    """Every file a node reads (its class's `file_params`) exists, for nodes on this machine.

    `nodes`: (id, uses, host of its agent) in file order; `where(node, param)`: `file:line`.
    A value that is None or starts with a scheme (`pretrained:NAME`) is not a file. Relative paths are
    from `base_dir`, the graph's folder (default: the current directory). One GraphError lists every
    missing file."""
    problems = []
    base = base_dir or os.getcwd()
    for node_id, uses, host in nodes:
        cls = classes[node_id]
        if not cls.file_params or host not in _LOCAL_HOSTS:
            continue  # a node on another machine reads its files there
        for name in cls.file_params:
            value = getattr(params[node_id], name, None)
            if not isinstance(value, str | os.PathLike) or _SCHEME.match(str(value)):
                continue
            p = Path(base, value)
            if p.exists() and not p.is_dir():
                continue
            what = "is a directory, not a file" if p.is_dir() else "does not exist"
            rel = "" if Path(value).is_absolute() else f" (relative to the graph's folder, {base})"
            problems.append(
                f"{where(node_id, name)}: node '{node_id}' ({uses}), parameter '{name}': "
                f"file '{value}' {what}{rel}; fix the path or create the file"
            )
    if problems:
        raise GraphError("\n".join(problems))


def resolve_param_files(classes: Mapping[str, type[Node]], params: dict[str, Any], base_dir: str) -> None:
    """Make each relative file parameter (`Node.file_params`) absolute from `base_dir`, the graph's
    folder, so a node opens the same file whatever the current directory; schemes and absolute paths
    are left as they are."""
    for node_id, cls in classes.items():
        for name in cls.file_params:
            value = getattr(params[node_id], name, None)
            if not isinstance(value, str | os.PathLike) or _SCHEME.match(str(value)):
                continue
            if not Path(value).is_absolute():
                full = os.path.join(base_dir, value)
                params[node_id] = params[node_id].model_copy(
                    update={name: full if isinstance(value, str) else Path(full)}
                )


def ensure_parent(path: str | Path, option: str) -> None:
    """Create the folder an output file goes into (like `mkdir -p`), before the work that writes it;
    an EdgeloopError naming `option` when that is impossible (a file in the way, no permission)."""
    parent = Path(path).parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EdgeloopError(
            f"{option} {path}: cannot create its folder {parent}: {exc.strerror or exc}; choose another path"
        ) from None
