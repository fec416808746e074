"""Graph files: pydantic models of the YAML spec, strict validation with file:line errors, and overrides."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import GraphError
from .graphfiles import check_graph_path, check_param_files, resolve_param_files
from .node import Node
from .registry import resolve_node
from .yamlsafe import LocatedYaml, load_yaml

__all__ = [
    "RestartSpec",
    "InputSpec",
    "NodeSpec",
    "AgentSpec",
    "GraphSpec",
    "Edge",
    "Graph",
    "load_graph",
    "parse_graph",
    "TIMER_RE",
    "DEFAULT_AGENT",
]

TIMER_RE = re.compile(r"^timer/(hz|millis)/(\d+(?:\.\d+)?)$")
DEFAULT_AGENT = "main"
_ID_RE = r"^[A-Za-z_][A-Za-z0-9_\-]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class RestartSpec(_Strict):
    """Supervision: what to do when a node (or its agent's process) fails."""

    policy: Literal["never", "on-failure", "always"] = "never"
    max_restarts: int = Field(
        5, ge=0, le=1000, description="restarts allowed within window_s before giving up"
    )
    window_s: float = Field(60.0, gt=0)
    backoff_ms: int = Field(100, ge=0, description="first restart delay; doubles each time")
    backoff_max_ms: int = Field(5000, ge=0)


class InputSpec(_Strict):
    """One input edge with its quality of service."""

    from_: str = Field(alias="from", description="'node/output' or 'timer/hz/N' or 'timer/millis/N'")
    queue: int = Field(10, ge=1, le=1_000_000, description="queue depth (messages)")
    policy: Literal["latest", "drop_oldest", "backpressure"] = "drop_oldest"
    timeout_ms: float | None = Field(None, gt=0, description="declare the input stale after this silence")


class NodeSpec(_Strict):
    id: str = Field(pattern=_ID_RE)
    uses: str
    agent: str | None = Field(None, pattern=_ID_RE)
    description: str = ""
    params: dict[str, Any] = Field(default_factory=dict)
    inputs: dict[str, str | InputSpec] = Field(default_factory=dict)
    outputs: list[str] | None = None
    restart: RestartSpec | None = None

    @field_validator("inputs")
    @classmethod
    def _input_names(cls, v: dict[str, Any]) -> dict[str, Any]:
        for name in v:
            if not re.match(_ID_RE, name):
                raise ValueError(f"input name '{name}' must match {_ID_RE}")
        return v

    def input_spec(self, port: str) -> InputSpec:
        raw = self.inputs[port]
        return InputSpec(**{"from": raw}) if isinstance(raw, str) else raw


class AgentSpec(_Strict):
    """An agent is one OS process; `host` puts it on a machine (tcp when hosts differ, ipc otherwise)."""

    host: str | None = None
    restart: RestartSpec = Field(default_factory=RestartSpec)
    standby: bool = Field(
        False,
        description="keep a warm spare process (Python started, modules and graph "
        "loaded) so a restart after a crash skips start-up; one idle "
        "process per agent; agents on this host only",
    )

    @model_validator(mode="after")
    def _standby_needs_restarts(self) -> AgentSpec:
        if self.standby and self.restart.policy == "never":
            raise ValueError(
                "standby: true keeps a spare for restarts, but restart.policy is 'never'; "
                "set restart: {policy: on-failure} (or always), or drop standby"
            )
        return self


class GraphSpec(_Strict):
    name: str = Field(pattern=_ID_RE)
    description: str = ""
    agents: dict[str, AgentSpec] = Field(default_factory=dict)
    nodes: list[NodeSpec] = Field(min_length=1)
    deadline_ms: float | None = Field(
        None, gt=0, description="sensor-to-action deadline: slower messages are late"
    )
    too_late_ms: float | None = Field(
        None, gt=0, description="slower than this is too late (default 5x deadline)"
    )
    backend: str | dict[str, Any] | None = Field(None, description="hardware backend override for every node")
    clock: Literal["wall", "sim"] = "wall"


@dataclass(frozen=True, eq=False)
class Edge:
    """A resolved edge: `source` is 'node/output' or a timer; `target` is (node, input)."""

    source: str
    target_node: str
    target_input: str
    spec: InputSpec

    @property
    def is_timer(self) -> bool:
        return self.source.startswith("timer/")

    @property
    def name(self) -> str:
        return f"{self.source} -> {self.target_node}/{self.target_input}"


@dataclass
class Graph:
    """A validated graph: the spec, node classes and validated params, edges and agent placement."""

    spec: GraphSpec
    source_text: str
    filename: str
    classes: dict[str, type[Node]]
    params: dict[str, Any]
    outputs: dict[str, list[str]]
    edges: list[Edge]
    #: The graph file's folder (absolute): relative `uses: file.py:Class` and the files nodes read
    #: (`Node.file_params`) are found from here.
    base_dir: str = ""

    @property
    def nodes(self) -> dict[str, NodeSpec]:
        return {n.id: n for n in self.spec.nodes}

    def agent_of(self, node_id: str) -> str:
        return self.nodes[node_id].agent or DEFAULT_AGENT

    @property
    def agents(self) -> dict[str, AgentSpec]:
        out = dict(self.spec.agents)
        for n in self.spec.nodes:
            out.setdefault(n.agent or DEFAULT_AGENT, AgentSpec())
        return out

    def nodes_of(self, agent: str) -> list[NodeSpec]:
        return [n for n in self.spec.nodes if (n.agent or DEFAULT_AGENT) == agent]

    def feedback_edges(self) -> set[Edge]:
        """Edges that close a cycle (found by DFS from sources in file order); drawn distinctly."""
        adj: dict[str, list[Edge]] = {n.id: [] for n in self.spec.nodes}
        for e in self.edges:
            if not e.is_timer:
                adj[e.source.split("/")[0]].append(e)
        state: dict[str, int] = {}
        back: set[Edge] = set()

        def dfs(u: str) -> None:
            state[u] = 1
            for e in adj[u]:
                v = e.target_node
                if state.get(v) == 1:
                    back.add(e)
                elif v not in state:
                    dfs(v)
            state[u] = 2

        for n in self.spec.nodes:
            if n.id not in state:
                dfs(n.id)
        return back


def _apply_overrides(data: Any, overrides: list[str], filename: str) -> None:
    """`--set node.param=value` (value parsed as YAML, e.g. 3, 0.5, [1,2], {a: 1})."""
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), list):
        return
    by_id = {n.get("id"): n for n in data["nodes"] if isinstance(n, dict)}
    for item in overrides:
        key, sep, raw = item.partition("=")
        node_id, dot, param = key.partition(".")
        if not sep or not dot or not param:
            raise GraphError(f"--set {item!r}: write it as node.param=value")
        if node_id not in by_id:
            raise GraphError(
                f"--set {item!r}: no node '{node_id}' in {filename} (nodes: {', '.join(map(str, by_id))})"
            )
        try:
            value = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError as exc:
            raise GraphError(f"--set {item!r}: value is not valid YAML: {exc}") from exc
        params = by_id[node_id].setdefault("params", {})
        target = params
        *parents, leaf = param.split(".")
        for p in parents:
            target = target.setdefault(p, {})
        target[leaf] = value


def _value_at(data: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        try:
            data = data[p]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _loc_text(loc: tuple[Any, ...], data: Any) -> tuple[str, tuple[Any, ...]]:
    """Human text for a pydantic error location, naming the node id where there is one."""
    path: list[Any] = []
    owner = ""
    for part in loc:
        if part in ("str", "InputSpec") or (isinstance(part, str) and "[" in part):
            continue
        path.append(part)
    if len(path) >= 2 and path[0] == "nodes" and isinstance(path[1], int):
        try:
            owner = f"node '{data['nodes'][path[1]]['id']}', "
        except (KeyError, IndexError, TypeError):
            owner = f"node #{path[1] + 1}, "
        key = ".".join(str(p) for p in path[2:]) or "(node)"
    else:
        key = ".".join(str(p) for p in path) or "(graph)"
    return f"{owner}key '{key}'", tuple(path)


def parse_graph(
    doc: LocatedYaml,
    overrides: list[str] | None = None,
    *,
    source_text: str = "",
    check_files: bool = False,
    base_dir: str | os.PathLike[str] | None = None,
) -> Graph:
    """Validate a parsed document completely before anything starts; with `check_files`, also that
    the files nodes on this machine read (`Node.file_params`) exist.

    `base_dir` (default: the folder of `doc.filename`): where relative `uses: file.py:Class` and
    relative file parameters are found; those parameters come out absolute."""
    base = os.path.abspath(base_dir if base_dir is not None else os.path.dirname(doc.filename) or ".")
    data = doc.data
    if overrides:
        _apply_overrides(data, overrides, doc.filename)
    try:
        spec = GraphSpec.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            branch = next((b for b in ("str", "InputSpec") if b in loc), None)
            if branch is not None:
                value = _value_at(data, loc[: loc.index(branch)])
                if (branch == "str") == isinstance(value, dict):
                    continue  # the other branch of `str | InputSpec` explains the error
            where, path = _loc_text(loc, data)
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown key (check the spelling; see `edgeloop schema`)"
            lines.append(f"{doc.where(path)}: {where}: {msg}")
        raise GraphError("\n".join(dict.fromkeys(lines))) from None

    def at(i: int, *rest: Any) -> str:
        return doc.where(("nodes", i, *rest))

    ids: dict[str, int] = {}
    for i, n in enumerate(spec.nodes):
        if n.id in ids:
            raise GraphError(
                f"{at(i, 'id')}: node '{n.id}': duplicate id (first defined at line "
                f"{doc.line_of(('nodes', ids[n.id]))})"
            )
        ids[n.id] = i
        if n.agent is not None and spec.agents and n.agent not in spec.agents:
            raise GraphError(
                f"{at(i, 'agent')}: node '{n.id}', key 'agent': agent '{n.agent}' is not declared "
                f"under 'agents' (declared: {', '.join(spec.agents)})"
            )

    classes: dict[str, type[Node]] = {}
    params: dict[str, Any] = {}
    outputs: dict[str, list[str]] = {}
    for i, n in enumerate(spec.nodes):
        try:
            cls = resolve_node(n.uses, base)
        except GraphError as exc:
            raise GraphError(f"{at(i, 'uses')}: node '{n.id}', key 'uses': {exc}") from None
        classes[n.id] = cls
        try:
            params[n.id] = cls.Params.model_validate(n.params)
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(str(p) for p in err["loc"]) or "params"
            msg = "unknown parameter" if err["type"] == "extra_forbidden" else err["msg"]
            known = ", ".join(cls.Params.model_fields) or "none"
            raise GraphError(
                f"{at(i, 'params', *err['loc'])}: node '{n.id}' ({n.uses}), parameter '{key}': {msg} "
                f"(got {err.get('input')!r}; parameters: {known})"
            ) from None
        declared = list(cls.outputs)
        if n.outputs is None:
            outputs[n.id] = declared
        else:
            for j, port in enumerate(n.outputs):
                if declared and port not in declared:
                    raise GraphError(
                        f"{at(i, 'outputs', j)}: node '{n.id}' ({n.uses}), output '{port}': not an "
                        f"output of {n.uses} (outputs: {', '.join(declared)})"
                    )
            outputs[n.id] = list(n.outputs)
        if not cls.dynamic_inputs:
            for port in n.inputs:
                if port not in cls.inputs:
                    raise GraphError(
                        f"{at(i, 'inputs', port)}: node '{n.id}' ({n.uses}), input '{port}': not an "
                        f"input of {n.uses} (inputs: {', '.join(cls.inputs) or 'none'})"
                    )

    edges: list[Edge] = []
    for i, n in enumerate(spec.nodes):
        for port in n.inputs:
            s = n.input_spec(port)
            src = s.from_
            where = f"{at(i, 'inputs', port)}: node '{n.id}', input '{port}'"
            if src.startswith("timer/"):
                m = TIMER_RE.match(src)
                if not m or float(m.group(2)) <= 0:
                    raise GraphError(f"{where}: '{src}' is not a timer; write timer/hz/N or timer/millis/N")
            else:
                node_id, sep, out = src.partition("/")
                if not sep or not out:
                    raise GraphError(f"{where}: '{src}' must be 'node/output'")
                if node_id not in ids:
                    raise GraphError(f"{where}: '{src}' names no node '{node_id}' (nodes: {', '.join(ids)})")
                if out not in outputs[node_id]:
                    raise GraphError(
                        f"{where}: '{src}' is not an output of '{node_id}' (outputs: "
                        f"{', '.join(outputs[node_id]) or 'none'})"
                    )
            edges.append(Edge(src, n.id, port, s))
    graph = Graph(spec, source_text, doc.filename, classes, params, outputs, edges, base)
    if check_files:
        agents = graph.agents
        check_param_files(
            [(n.id, n.uses, agents[n.agent or DEFAULT_AGENT].host) for n in spec.nodes],
            classes,
            params,
            lambda node, param: at(ids[node], "params", param),
            base,
        )
    resolve_param_files(classes, params, base)
    return graph


def load_graph(
    path: str | Path,
    overrides: list[str] | None = None,
    *,
    text: str | None = None,
    check_files: bool = False,
    base_dir: str | os.PathLike[str] | None = None,
) -> Graph:
    """Load and validate a graph file (or `text`, named by `path`). `check_files`: the files nodes read
    must exist (`edgeloop check`/`run` ask; a worker, maybe on another host, does not). Relative paths
    in the graph are from `base_dir`, by default the folder of `path`."""
    if text is None:
        check_graph_path(path)
        doc = load_yaml(path)
        text = Path(path).read_text(encoding="utf-8")
    else:
        doc = load_yaml(path, text=text)
    return parse_graph(doc, overrides, source_text=text, check_files=check_files, base_dir=base_dir)
