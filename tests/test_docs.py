"""The docs are checked like code: links resolve, paths and modules exist, `edgeloop …` commands parse, the README's example runs."""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_README_LINES = 300
# Pages other engineers are writing now: a link to one of these may wait for its file; nothing else may.
PENDING = frozenset({"docs/demo.md", "docs/quantization.md", "docs/security.md"})
PACKAGES = ("runtime", "nodes", "models", "sim_hw", "bench")
# Folders of the repository a docs path may start with (out/ is what runs write, so it is not checked).
TREE_DIRS = (*PACKAGES, "examples", "tests", "docs", ".ci")
EXAMPLE_MARK = re.compile(r"<!-- readme-example: (\S+) -->")


def pages() -> list[Path]:
    return [README, *sorted((ROOT / "docs").glob("*.md"))]


@dataclass(frozen=True)
class Fence:
    info: str
    body: str
    line: int  # 1-based line of the opening fence
    mark: str | None  # the readme-example file name on the line before, if any


def fences(text: str) -> list[Fence]:
    """The fenced code blocks of a Markdown text (``` or ~~~, any info string)."""
    out: list[Fence] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        m = re.match(r"^\s*(`{3,}|~{3,})(.*)$", lines[i])
        if not m:
            i += 1
            continue
        fence, info, start = m.group(1), m.group(2).strip(), i
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            j += 1
        prev = lines[start - 1] if start else ""
        mark = EXAMPLE_MARK.search(prev)
        out.append(Fence(info, "\n".join(lines[start + 1 : j]) + "\n", start + 1, mark and mark.group(1)))
        i = j + 1
    return out


def prose(text: str) -> str:
    """The text outside fenced code blocks (fence lines blanked, so line numbers stay)."""
    lines = text.split("\n")
    for f in fences(text):
        end = f.line + f.body.count("\n")
        for k in range(f.line - 1, min(end + 1, len(lines))):
            lines[k] = ""
    return "\n".join(lines)


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name


# --- links -------------------------------------------------------------------------------------------

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|!\[[^\]]*\]\(([^)\s]+)\)")


def links(text: str) -> list[tuple[int, str]]:
    """(line, target) of every Markdown link and image outside code blocks and code spans."""
    out = []
    for n, line in enumerate(prose(text).split("\n"), 1):
        line = re.sub(r"`[^`]*`", lambda m: "x" * len(m.group(0)) if "](" not in m.group(0) else "", line)
        for m in LINK.finditer(line):
            out.append((n, m.group(1) or m.group(2)))
    return out


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"\s", "-", re.sub(r"[^\w\- ]", "", text))


def anchors(text: str) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in prose(text).split("\n"):
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            base = slug(m.group(1))
            k = seen.get(base, 0)
            seen[base] = k + 1
            out.add(base if k == 0 else f"{base}-{k}")
    return out


def link_problems(page: Path) -> list[str]:
    problems = []
    text = page.read_text()
    for line, target in links(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path_part, _, anchor = target.partition("#")
        dest = (page.parent / path_part).resolve() if path_part else page
        where = f"{rel(page)}:{line}: link '{target}'"
        try:
            dest_rel = dest.relative_to(ROOT).as_posix()
        except ValueError:
            problems.append(f"{where} leaves the repository (a clone does not have it)")
            continue
        if not dest.exists():
            if dest_rel in PENDING:
                continue  # being written by another engineer; checked once it exists
            problems.append(f"{where}: {dest_rel} does not exist")
            continue
        if anchor and dest.suffix == ".md" and anchor not in anchors(dest.read_text()):
            problems.append(f"{where}: no heading with anchor #{anchor} in {dest_rel}")
    return problems


@pytest.mark.parametrize("page", pages(), ids=rel)
def test_relative_links_resolve(page: Path) -> None:
    assert link_problems(page) == []


def test_link_check_can_fail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# Title A\n\n## Run it `now`\n")
    page = tmp_path / "README.md"
    page.write_text(
        "[ok](docs/a.md) [ok](docs/a.md#run-it-now) [web](https://x.org/y) `[code](nowhere.md)`\n"
        "[pending](docs/demo.md)\n"
        "[dead](README_remote.md) [anchor](docs/a.md#nope) [out](../shared/SCIENCE.md)\n"
        "```\n[in code](nowhere.md)\n```\n"
    )
    problems = link_problems(page)
    assert len(problems) == 3, problems
    assert "README_remote.md does not exist" in problems[0]
    assert "#nope" in problems[1]
    assert "leaves the repository" in problems[2]


# --- paths and modules named in the text ---------------------------------------------------------------

CODE_SPAN = re.compile(r"`([^`\n]+)`")
PATH = re.compile(rf"^(?:\.\./)?(?:{'|'.join(re.escape(d) for d in TREE_DIRS)})/[\w./-]*$")
DOTTED = re.compile(rf"^((?:{'|'.join(PACKAGES)})(?:\.\w+)+)")
FROM_IMPORT = re.compile(
    rf"^\s*from\s+((?:{'|'.join(PACKAGES)})(?:\.\w+)*)\s+import\s+\(?([\w\s,]+?)\)?\s*(?:#.*)?$", re.M
)


USES = re.compile(r"\buses:\s*[\"']?([\w.:-]+)")


@cache
def node_names() -> frozenset[str]:
    from runtime.registry import catalogue

    return frozenset(catalogue())


def module_file(dotted: str) -> Path | None:
    base = ROOT.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@cache
def top_level_names(path: Path) -> frozenset[str]:
    """Names a module binds at top level (also under if/try), without importing it."""
    names: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    names.update(n.id for n in ast.walk(t) if isinstance(n, ast.Name))
            elif isinstance(node, ast.Import | ast.ImportFrom):
                names.update((a.asname or a.name).split(".")[0] for a in node.names)
            elif isinstance(node, ast.If | ast.Try):
                visit(node.body)
                visit(node.orelse)
                for h in getattr(node, "handlers", []):
                    visit(h.body)
                visit(getattr(node, "finalbody", []))

    visit(ast.parse(path.read_text()).body)
    return frozenset(names)


def name_problem(module: str, name: str) -> str | None:
    path = module_file(module)
    if path is None:
        return f"module {module} does not exist"
    if name in top_level_names(path) or module_file(f"{module}.{name}") is not None:
        return None
    return f"{module} has no {name} ({rel(path)})"


def reference_problems(page: Path) -> list[str]:
    problems = []
    text = page.read_text()
    for n, line in enumerate(prose(text).split("\n"), 1):
        for span in CODE_SPAN.findall(line):
            span = span.strip()
            if PATH.match(span) and not any(c in span for c in "*?"):
                if not (page.parent / span if span.startswith("..") else ROOT / span).exists():
                    problems.append(f"{rel(page)}:{n}: path `{span}` does not exist")
            m = DOTTED.match(span)
            if m and not span.startswith(tuple(f"{d}/" for d in TREE_DIRS)):
                parts = m.group(1).split(".")
                k = max((i for i in range(1, len(parts) + 1) if module_file(".".join(parts[:i]))), default=0)
                if k < len(parts):
                    problem = name_problem(".".join(parts[:k]), parts[k]) if k else "no such package"
                    if problem:
                        problems.append(f"{rel(page)}:{n}: `{span}`: {problem}")
    for f in fences(text):
        if f.info.split()[:1] == ["yaml"]:
            for m in USES.finditer(f.body):
                if ":" not in m.group(1) and m.group(1) not in node_names():
                    problems.append(f"{rel(page)}:{f.line}: yaml block uses unknown node '{m.group(1)}'")
        if f.info.split()[:1] != ["python"]:
            continue
        for m in FROM_IMPORT.finditer(f.body):
            module = m.group(1)
            for name in filter(None, (s.strip().split(" as ")[0] for s in m.group(2).split(","))):
                problem = name_problem(module, name)
                if problem:
                    problems.append(f"{rel(page)}:{f.line}: python block imports {name}: {problem}")
    return problems


@pytest.mark.parametrize("page", pages(), ids=rel)
def test_paths_and_modules_named_exist(page: Path) -> None:
    assert reference_problems(page) == []


def test_reference_check_can_fail(tmp_path: Path) -> None:
    page = tmp_path / "probe.md"
    text = (
        "`runtime/graph.py` `nodes/builtin/` `runtime/nowhere.py` `nodes.sensors.events.EVENT_DTYPE`\n"
        "`nodes.sensors.events.NO_SUCH_NAME` `runtime.recording_cli` `out/anything.png` `cam/*`\n"
        "```python\nfrom runtime.testing import NodeHarness, Gone\nfrom runtime.nothing import X\n```\n"
        '```yaml\nnodes:\n  - {id: a, uses: signal.sine}\n  - {id: b, uses: "mod:Cls"}\n  - id: c\n    uses: signal.sin\n```\n'
    )
    page.write_text(text)
    problems = reference_problems(page)
    assert [p.split(": ", 1)[1] for p in problems] == [
        "path `runtime/nowhere.py` does not exist",
        "`nodes.sensors.events.NO_SUCH_NAME`: nodes.sensors.events has no NO_SUCH_NAME (nodes/sensors/events/__init__.py)",
        "`runtime.recording_cli`: runtime has no recording_cli (runtime/__init__.py)",
        "python block imports Gone: runtime.testing has no Gone (runtime/testing.py)",
        "python block imports X: module runtime.nothing does not exist",
        "yaml block uses unknown node 'signal.sin'",
    ], problems


# --- whole graphs in the docs ----------------------------------------------------------------------------


def whole_graphs() -> list[tuple[str, str]]:
    """(where, text) of every yaml block that is a whole graph file (top-level `name:` and `nodes:`)
    using only catalogue nodes (the README's own node is checked by running its example)."""
    out = []
    for page in pages():
        for f in fences(page.read_text()):
            body = f.body
            if (
                f.info.split()[:1] == ["yaml"]
                and re.search(r"^name:", body, re.M)
                and re.search(r"^nodes:", body, re.M)
            ):
                if not any(":" in m.group(1) for m in USES.finditer(body)):
                    out.append((f"{rel(page)}:{f.line}", body))
    return out


@pytest.mark.parametrize(("where", "text"), whole_graphs(), ids=[w for w, _ in whole_graphs()])
def test_whole_graphs_in_the_docs_validate(where: str, text: str, tmp_path: Path) -> None:
    from runtime.graph import load_graph

    path = tmp_path / "graph.yaml"
    path.write_text(text)
    load_graph(str(path))  # raises GraphError naming the line


# --- edgeloop commands ----------------------------------------------------------------------------------

GRAPH_VERBS = {"run", "check", "graph", "record"}
SHELL_INFOS = {"", "sh", "bash", "shell", "console"}  # ```text and others are output, not commands


def commands(text: str) -> list[tuple[int, list[str]]]:
    """(line, argv after `edgeloop`) of every `edgeloop …` command in shell fenced blocks (in a
    ```console block only lines with a prompt, `$ ` or `host$ `, are commands)."""
    out = []
    for f in fences(text):
        info = (f.info.split() or [""])[0]
        if info not in SHELL_INFOS:
            continue
        for k, raw in enumerate(f.body.split("\n")):
            prompt = re.match(r"^\s*[\w.@-]*\$\s+", raw)
            if info == "console" and not prompt:
                continue
            line = raw[prompt.end() :] if prompt else raw
            for part in re.split(r"\s*(?:&&|\|\||;|\|)\s*", line):
                words = shlex.split(part, comments=True)
                while words and re.match(r"^\w+=", words[0]):  # PYTHONPATH=. edgeloop …
                    words.pop(0)
                if words[:1] == ["edgeloop"]:
                    out.append((f.line + 1 + k, words[1:]))
    return out


def inline_verbs(text: str) -> set[tuple[str, ...]]:
    """The verbs (and sub-verbs) of every `edgeloop …` named in prose code spans."""
    out = set()
    for span in CODE_SPAN.findall(prose(text)):
        m = re.match(r"^edgeloop\s+([a-z][\w-]*)(?:\s+([a-z][\w-]*))?", span.strip())
        if m:
            out.add(tuple(v for v in m.groups() if v))
    return out


class _ParserExit(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def parse(argv: list[str]) -> tuple[int, str]:
    """Parse an `edgeloop` argument list as `runtime.cli.main` does (status 0 = ok), in-process; a
    command on one of the repository's graph files also validates that graph with its `--set`s."""
    from runtime.cli import build_parser

    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            args, extra = parser.parse_known_args(argv)
        except SystemExit as exc:
            return int(exc.code or 0), err.getvalue() or out.getvalue()
    if extra and args.command != "bench":  # main() allows extra options only for benchmarks
        return 2, f"unrecognized arguments: {' '.join(extra)}"
    if not getattr(args, "func", None):
        return 2, "no command"
    graph = getattr(args, "graph", None)
    if args.command in GRAPH_VERBS and graph and (ROOT / graph).is_file():
        from runtime.errors import GraphError
        from runtime.graph import load_graph

        try:
            load_graph(ROOT / graph, list(getattr(args, "set", None) or []))
        except GraphError as exc:
            return 2, str(exc).replace("\n", " ")
    return 0, ""


def subverbs(verb: str) -> set[str]:
    """The sub-commands of a verb (`hw report`, `train har`, `topic echo`), if it has any."""
    from runtime.cli import build_parser

    parser = build_parser(verb)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    vparser = sub.choices[verb]
    return {name for a in vparser._actions if isinstance(a, argparse._SubParsersAction) for name in a.choices}


def command_problems(page: Path) -> list[str]:
    text = page.read_text()
    problems = []
    verbs: dict[tuple[str, ...], str] = {}
    for line, argv in commands(text):
        where = f"{rel(page)}:{line}: edgeloop {shlex.join(argv)}"
        if not argv:
            problems.append(f"{where}: no command")
            continue
        for word in argv:  # a file of the repository named in a command must exist
            if PATH.match(word) and not (ROOT / word).exists():
                problems.append(f"{where}: {word} does not exist")
        status, message = parse(argv)
        if status != 0:
            problems.append(f"{where}: {message.strip().splitlines()[-1] if message.strip() else status}")
        head = [a for a in argv if not a.startswith("-")]
        verb = tuple(head[:2]) if len(head) > 1 and head[1] in subverbs(head[0]) else tuple(head[:1])
        verbs.setdefault(verb, where)
    for verb in inline_verbs(text):
        if len(verb) == 2 and verb[1] not in subverbs(verb[0]):
            verb = verb[:1]
        verbs.setdefault(verb, f"{rel(page)}: `edgeloop {' '.join(verb)}`")
    for verb, where in sorted(verbs.items()):
        status, message = parse([*verb, "--help"])
        if status != 0:
            problems.append(
                f"{where}: `edgeloop {' '.join(verb)} --help` exits {status}: {message.strip()[-200:]}"
            )
    return problems


@pytest.mark.parametrize("page", pages(), ids=rel)
def test_edgeloop_commands_parse(page: Path) -> None:
    assert command_problems(page) == []


def test_command_check_can_fail(tmp_path: Path) -> None:
    page = tmp_path / "probe.md"
    page.write_text(
        "`edgeloop nodes` and `edgeloop frobnicate`\n"
        "```sh\n$ edgeloop run examples/demo.yaml --duration 5   # ok\n"
        "edgeloop run examples/demo.yaml --no-such-option\n"
        "edgeloop hw report demo-cnn --backend rram --param adc_bits=6\n"
        "edgeloop keys a && edgeloop keys\n"
        "edgeloop check examples/minimal.yaml --set sensor.no_such_param=1\n"
        "edgeloop run examples/no_such_graph.yaml\n"
        "```\n"
        "```console\n$ edgeloop keys b --dir keys\nedgeloop prints this, not a command\n```\n"
        "```text\nedgeloop run summary (3.01 s)\n```\n"
    )
    problems = command_problems(page)
    assert len(problems) == 5, problems
    assert "--no-such-option" in problems[0] and "unrecognized arguments" in problems[0]
    assert "edgeloop keys" in problems[1] and "required" in problems[1]
    assert "no_such_param" in problems[2]
    assert "examples/no_such_graph.yaml does not exist" in problems[3]
    assert "`edgeloop frobnicate --help` exits 2" in problems[4]


# --- the README ------------------------------------------------------------------------------------------


def test_readme_fits_a_newcomer() -> None:
    n = len(README.read_text().splitlines())
    assert n <= MAX_README_LINES, (
        f"README.md has {n} lines (at most {MAX_README_LINES}: move detail to docs/)"
    )


def readme_examples(text: str) -> dict[str, str]:
    return {f.mark: f.body for f in fences(text) if f.mark}


def test_readme_node_example_runs_as_written(tmp_path: Path) -> None:
    """The README's node, its test, its graph and its commands, copied verbatim into an empty folder: the
    test passes with a plain pytest (no edgeloop pytest configuration, so no asyncio_mode), and the
    commands (check, then a short run) exit 0 as written."""
    files = readme_examples(README.read_text())
    assert {"scale.py", "test_scale.py", "scale.yaml", "commands.sh"} <= set(files), sorted(files)
    for name, body in files.items():
        (tmp_path / name).write_text(body)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # the user's own project: no asyncio_mode
    # edgeloop as if installed: the repository on the path, its scripts on PATH; nothing of the folder
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }
    test = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_scale.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert test.returncode == 0 and "1 passed" in test.stdout, test.stdout + test.stderr
    lines = [ln for ln in files["commands.sh"].splitlines() if ln.strip() and not ln.startswith("#")]
    assert any(" check " in ln for ln in lines) and any(" run " in ln for ln in lines), lines
    for line in lines:
        # the documented PYTHONPATH=. replaces the repository's entry; an installed edgeloop needs none
        cmd = line.replace("PYTHONPATH=.", f"PYTHONPATH=.{os.pathsep}{ROOT}", 1)
        done = subprocess.run(
            ["bash", "-c", cmd], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=90
        )
        assert done.returncode == 0, f"{line}: exit {done.returncode}\n{done.stdout}{done.stderr}"
