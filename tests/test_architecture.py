"""The house rules, checked on the source tree: no import cycles, the one-way rule, short modules, a true map."""

from __future__ import annotations

from pathlib import Path

from archcheck import (
    architecture_paths,
    cycles,
    import_graph,
    missing_architecture_paths,
    one_way_violations,
    oversized,
)


def test_no_import_cycles_between_files() -> None:
    assert cycles(import_graph()) == []


def test_dependencies_point_one_way() -> None:
    assert one_way_violations(import_graph()) == []


def test_no_module_over_the_size_limit() -> None:
    assert oversized() == []


def test_architecture_map_names_only_existing_paths() -> None:
    assert missing_architecture_paths() == []


# The checker itself must be able to fail: a small tree with one of each problem.


def _tree(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_checker_finds_cycles_and_forbidden_edges(tmp_path: Path) -> None:
    _tree(
        tmp_path,
        {
            "runtime/__init__.py": "",
            "runtime/a.py": "from .b import X\n",
            "runtime/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from runtime.a import Y\n",
            "runtime/c.py": "def f():\n    import sim_hw.backend\n",
            "sim_hw/__init__.py": "",
            "sim_hw/backend.py": "from models.net import Net\n",
            "models/__init__.py": "",
            "models/net.py": "from sim_hw import backend\n",
            "nodes/__init__.py": "",
            "nodes/sensors/__init__.py": "",
            "nodes/sensors/cam.py": "from runtime import a\n",
            "bench/__init__.py": "",
        },
    )
    graph = import_graph(tmp_path)
    assert graph["models.net"] == {"sim_hw.backend"}  # `from pkg import mod` is an edge to the module
    assert cycles(graph) == [["models.net", "sim_hw.backend"], ["runtime.a", "runtime.b"]]
    assert one_way_violations(graph) == [
        "nodes.sensors.cam → runtime.a: sensor libraries run without the runtime",
        "runtime.c → sim_hw.backend: runtime knows hardware only as an opaque setting",
        "sim_hw.backend → models.net: the emulators do not know models",
    ]


def test_checker_finds_long_modules(tmp_path: Path) -> None:
    _tree(tmp_path, {"models/big.py": "x = 1\n" * 401, "models/ok.py": "x = 1\n" * 400})
    assert oversized(tmp_path) == ["models/big.py: 401 lines (limit 400: split it by concept)"]


def test_map_reader_follows_trees_and_backticks(tmp_path: Path) -> None:
    text = (
        "See `runtime/graph.py` and `nodes/gone.py`.\n"
        "```\n"
        "models/\n"
        "  snn/\n"
        "    lif.py     LIF\n"
        "  io.py        files\n"
        "nodes/catalog.py   names\n"
        "```\n"
    )
    assert architecture_paths(text) == [
        "runtime/graph.py",
        "nodes/gone.py",
        "models/",
        "models/snn/",
        "models/snn/lif.py",
        "models/io.py",
        "nodes/catalog.py",
    ]
    _tree(
        tmp_path,
        {
            "ARCHITECTURE.md": text,
            "runtime/graph.py": "",
            "models/snn/lif.py": "",
            "models/io.py": "",
            "nodes/catalog.py": "",
        },
    )
    assert missing_architecture_paths(tmp_path) == ["nodes/gone.py"]
