"""The house's shape, read from the source: imports between files, cycles, the one-way rule, module sizes.

`python tests/archcheck.py` prints every violation; `tests/test_architecture.py` asserts there are none.
Imports are read with `ast` (nothing is imported), including imports inside functions and under
`if TYPE_CHECKING:` — a cycle a type checker needs is still a cycle a reader has to untangle.
`from pkg.mod import name` is an edge to `pkg.mod` (or to `pkg.mod.name` when that is a module);
`from pkg import mod` is an edge to `pkg.mod` when `mod` is a module, else to `pkg`.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ROOT",
    "PACKAGES",
    "FORBIDDEN",
    "MAX_LINES",
    "Module",
    "modules",
    "import_graph",
    "cycles",
    "one_way_violations",
    "oversized",
    "architecture_paths",
    "missing_architecture_paths",
]

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("runtime", "nodes", "models", "sim_hw", "bench")

#: (importer prefix, imported prefix, why): the one-way rule. `nodes → runtime`, `nodes → models → sim_hw`,
#: `bench → anything`; the pure libraries under nodes/ run without the runtime (notebooks, tests without sockets).
FORBIDDEN: tuple[tuple[str, str, str], ...] = (
    ("runtime", "nodes", "runtime knows nodes only through entry points"),
    ("runtime", "models", "runtime knows no science"),
    ("runtime", "sim_hw", "runtime knows hardware only as an opaque setting"),
    ("runtime", "bench", "benchmarks plug in through an entry point"),
    ("models", "runtime", "models run without the runtime"),
    ("models", "nodes", "models do not know nodes"),
    ("models", "bench", "models do not know benchmarks"),
    ("sim_hw", "runtime", "the emulators run without the runtime"),
    ("sim_hw", "nodes", "the emulators do not know nodes"),
    ("sim_hw", "models", "the emulators do not know models"),
    ("sim_hw", "bench", "the emulators do not know benchmarks"),
    ("nodes", "bench", "nodes do not know benchmarks"),
    ("nodes.sensors", "runtime", "sensor libraries run without the runtime"),
    ("nodes.sensors", "nodes.builtin", "sensor libraries do not know node classes"),
    ("nodes.swarm", "runtime", "the swarm world runs without the runtime"),
    ("nodes.swarm", "nodes.builtin", "the swarm world does not know node classes"),
)

#: Modules allowed in place of a forbidden prefix (importer prefix, imported module): stdlib-only leaves.
ALLOWED: tuple[tuple[str, str], ...] = (
    # the one file-type table (stdlib only, imports nothing else of ours): wrong-file errors name what a file is
    ("nodes.sensors.events.sniff", "runtime.filetype"),
)

MAX_LINES = 400
SIZE_CHECKED = ("runtime", "sim_hw", "models")


@dataclass(frozen=True, slots=True)
class Module:
    name: str  # dotted
    path: Path
    is_package: bool


def modules(root: Path = ROOT) -> dict[str, Module]:
    """Every module of the project's packages, by dotted name."""
    out: dict[str, Module] = {}
    for pkg in PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            rel = path.relative_to(root).with_suffix("")
            parts = rel.parts
            is_pkg = parts[-1] == "__init__"
            name = ".".join(parts[:-1] if is_pkg else parts)
            out[name] = Module(name, path, is_pkg)
    return out


def _imports(mod: Module, known: dict[str, Module]) -> Iterator[str]:
    tree = ast.parse(mod.path.read_text(), str(mod.path))
    package = mod.name if mod.is_package else mod.name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                if node.level > 1:
                    base_parts = base_parts[: -(node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                yield sub if sub in known else base


def _owner(name: str, known: dict[str, Module]) -> str | None:
    """The longest known module that `name` is or lies in (`a.b.C` → `a.b`)."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """File-level import edges between the project's modules (a module's own package `__init__` excluded)."""
    known = modules(root)
    graph: dict[str, set[str]] = {}
    for name, mod in known.items():
        edges: set[str] = set()
        for target in _imports(mod, known):
            owner = _owner(target, known)
            if owner is not None and owner != name:
                edges.add(owner)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def one_way_violations(graph: dict[str, set[str]]) -> list[str]:
    """`importer → imported: why` for every edge the one-way rule forbids."""
    out = []
    for src, targets in sorted(graph.items()):
        for dst in sorted(targets):
            for a, b, why in FORBIDDEN:
                if (
                    _within(src, a)
                    and _within(dst, b)
                    and not any(_within(src, pa) and dst == pb for pa, pb in ALLOWED)
                ):
                    out.append(f"{src} → {dst}: {why}")
    return out


def oversized(root: Path = ROOT, limit: int = MAX_LINES) -> list[str]:
    """`path: n lines` for every module over `limit` lines in runtime/, sim_hw/, models/."""
    out = []
    for pkg in SIZE_CHECKED:
        for path in sorted((root / pkg).rglob("*.py")):
            n = len(path.read_text().splitlines())
            if n > limit:
                out.append(f"{path.relative_to(root)}: {n} lines (limit {limit}: split it by concept)")
    return out


_PATH_RE = re.compile(r"`((?:runtime|nodes|models|sim_hw|bench|tests|examples|docs)/[\w./-]*)`")
_ROOTS = ("runtime/", "nodes/", "models/", "sim_hw/", "bench/", "tests/", "examples/", "docs/")
_TREE_LINE_RE = re.compile(r"^(\s*)([\w./-]+)(?:\s|$)")


def architecture_paths(text: str) -> list[str]:
    """Project paths ARCHITECTURE.md names: `backticked/paths` anywhere, and the module trees in fenced
    blocks (a line's first word: `pkg/dir/` opens a directory; deeper-indented `name.py` or `sub/` lie in it)."""
    found = [m.group(1) for m in _PATH_RE.finditer(text)]
    in_block = False
    stack: list[tuple[int, str]] = []  # (indent, directory path ending in /)
    for line in text.splitlines():
        if line.startswith("```"):
            in_block = not in_block
            stack = []
            continue
        m = _TREE_LINE_RE.match(line)
        if not in_block or not m:
            continue
        indent, word = len(m.group(1)), m.group(2)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        if word.startswith(_ROOTS):
            path = word
        elif stack and (word.endswith((".py", ".yaml", "/"))):
            path = stack[-1][1] + word
        else:
            continue
        found.append(path)
        if path.endswith("/"):
            stack.append((indent, path))
    return found


def missing_architecture_paths(root: Path = ROOT) -> list[str]:
    """Paths named in ARCHITECTURE.md that do not exist (globs and `*` patterns are skipped)."""
    text = (root / "ARCHITECTURE.md").read_text()
    out = []
    for p in dict.fromkeys(architecture_paths(text)):
        if "*" in p:
            continue
        if not (root / p.rstrip("/")).exists():
            out.append(p)
    return out


def main() -> int:
    graph = import_graph()
    problems = [f"import cycle: {' ↔ '.join(c)}" for c in cycles(graph)]
    problems += [f"one-way rule: {v}" for v in one_way_violations(graph)]
    problems += [f"too long: {v}" for v in oversized()]
    problems += [f"ARCHITECTURE.md names a missing path: {p}" for p in missing_architecture_paths()]
    for p in problems:
        print(p)
    print(f"{len(graph)} modules, {sum(map(len, graph.values()))} import edges, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
