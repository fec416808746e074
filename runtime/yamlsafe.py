"""Safe YAML loading with a size cap, no aliases, no duplicate keys, and a line number for every key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import GraphError

__all__ = ["LocatedYaml", "load_yaml", "MAX_YAML_BYTES"]

MAX_YAML_BYTES = 1024 * 1024

Path_ = tuple[str | int, ...]


class LocatedYaml:
    """A parsed YAML document plus the source line of every key and list item (1-based)."""

    def __init__(self, data: Any, lines: dict[Path_, int], filename: str) -> None:
        self.data = data
        self.lines = lines
        self.filename = filename

    def line_of(self, path: Path_) -> int:
        """The line of the deepest known prefix of `path` (so a bad value points at its key)."""
        for n in range(len(path), -1, -1):
            if tuple(path[:n]) in self.lines:
                return self.lines[tuple(path[:n])]
        return 1

    def where(self, path: Path_) -> str:
        return f"{self.filename}:{self.line_of(path)}"


def load_yaml(source: str | Path, *, text: str | None = None) -> LocatedYaml:
    """Parse a graph file safely. `text` overrides reading `source` (which then only names it)."""
    filename = str(source)
    if text is None:
        p = Path(source)
        try:
            size = p.stat().st_size
        except OSError as exc:
            raise GraphError(f"{filename}: cannot read the graph file: {exc.strerror}") from exc
        if size > MAX_YAML_BYTES:
            raise GraphError(
                f"{filename}: {size} bytes is over the {MAX_YAML_BYTES}-byte limit for graph files"
            )
        text = p.read_text(encoding="utf-8")
    elif len(text.encode()) > MAX_YAML_BYTES:
        raise GraphError(f"{filename}: over the {MAX_YAML_BYTES}-byte limit for graph files")
    loader = _Loader(text, filename)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else 1
        ctx = exc.context_mark
        started = f" ({exc.context} at line {ctx.line + 1})" if ctx is not None and exc.context else ""
        raise GraphError(f"{filename}:{line}: YAML syntax error: {exc.problem}{started}") from exc
    except yaml.YAMLError as exc:
        raise GraphError(f"{filename}: YAML error: {exc}") from exc
    finally:
        loader.dispose()
    lines: dict[Path_, int] = {}
    if root is None:
        raise GraphError(f"{filename}:1: the graph file is empty")

    def build(node: yaml.Node, path: Path_) -> Any:
        lines.setdefault(path, node.start_mark.line + 1)
        plain = _PLAIN_TAGS.get(type(node))
        if plain is not None and node.tag != plain:  # a tag would be dropped silently
            tag = str(node.tag).replace("tag:yaml.org,2002:", "!!")
            raise GraphError(
                f"{filename}:{node.start_mark.line + 1}: the YAML tag '{tag}' is not allowed in graph files "
                "(remove it: graph files take plain mappings, lists and values)"
            )
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise GraphError(
                        f"{filename}:{key_node.start_mark.line + 1}: YAML merge keys ('<<') are not allowed"
                    )
                key = build(key_node, path + ("<key>",))
                if not isinstance(key, str | int | float | bool):
                    raise GraphError(
                        f"{filename}:{key_node.start_mark.line + 1}: mapping keys must be plain scalars"
                    )
                key = str(key)
                if key in out:
                    raise GraphError(f"{filename}:{key_node.start_mark.line + 1}: duplicate key '{key}'")
                lines[path + (key,)] = key_node.start_mark.line + 1
                out[key] = build(value_node, path + (key,))
            return out
        if isinstance(node, yaml.SequenceNode):
            items = []
            for i, item in enumerate(node.value):
                lines[path + (i,)] = item.start_mark.line + 1
                items.append(build(item, path + (i,)))
            return items
        try:
            return _construct_scalar_value(node)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
            problem = exc.problem if isinstance(exc, yaml.MarkedYAMLError) else str(exc)
            tag = str(node.tag).replace("tag:yaml.org,2002:", "!!")
            raise GraphError(
                f"{filename}:{node.start_mark.line + 1}: cannot read {node.value!r} as {tag}: {problem} "
                "(quote it to keep it a string; graph files take no YAML tags)"
            ) from exc

    return LocatedYaml(build(root, ()), lines, filename)


_PLAIN_TAGS: dict[type[yaml.Node], str] = {
    yaml.MappingNode: "tag:yaml.org,2002:map",
    yaml.SequenceNode: "tag:yaml.org,2002:seq",
}


class _Loader(yaml.SafeLoader):
    """Refuses an alias where it is used: once composed, an alias is its anchor's node (and line)."""

    def __init__(self, text: str, filename: str) -> None:
        super().__init__(text)
        self.filename = filename

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            anchor = self.anchors.get(event.anchor)
            of = f" of line {anchor.start_mark.line + 1}" if anchor is not None else ""
            raise GraphError(
                f"{self.filename}:{event.start_mark.line + 1}: YAML anchors/aliases are not allowed in graph "
                f"files ('*{event.anchor}' repeats the anchor '&{event.anchor}'{of}: write the value out)"
            )
        return super().compose_node(parent, index)


def _construct_scalar_value(node: yaml.Node) -> Any:
    constructor = yaml.SafeLoader("")
    try:
        return constructor.construct_object(node, deep=True)
    finally:
        constructor.dispose()
