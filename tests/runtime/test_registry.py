"""`uses:` resolution: entry-point catalogues and single entries, `package.module:Class`, and errors that say what to do.

Plugins are real: a `*.dist-info` with `entry_points.txt` and a module in a temporary directory on
`sys.path`, found by `importlib.metadata` exactly as an installed package would be.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.errors import GraphError
from runtime.node import Node
from runtime.registry import catalogue, import_target, load_plugin_table, resolve_node

GROUP = "edgeloop.nodes"

PLUGIN = """
from runtime.node import Node

class Echo(Node):
    pass

class Gain(Node):
    pass

class NotANode:
    pass

SETTING = 3

CATALOG = {"zz_test.echo": "edgeloop_test_plugin:Echo", "zz_test.bogus": "edgeloop_test_plugin:NotANode"}
"""


def install(root: Path, name: str, entry_points: str, modules: dict[str, str]) -> None:
    info = root / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)
    for module, text in modules.items():
        (root / f"{module}.py").write_text(text)


@pytest.fixture
def fresh_tables() -> Iterator[None]:
    """Entry-point tables are cached per process: start and end every test with an empty cache."""
    load_plugin_table.cache_clear()
    yield
    load_plugin_table.cache_clear()
    for mod in [m for m in sys.modules if m.startswith(("edgeloop_test_plugin", "edgeloop_broken_plugin"))]:
        del sys.modules[mod]


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_tables: None) -> None:
    install(
        tmp_path,
        "edgeloop_test_plugin",
        f"[{GROUP}]\ncatalog = edgeloop_test_plugin:CATALOG\nzz_test.gain = edgeloop_test_plugin:Gain\n",
        {"edgeloop_test_plugin": PLUGIN},
    )
    monkeypatch.syspath_prepend(str(tmp_path))


def test_the_built_in_catalogue_is_registered_through_entry_points(fresh_tables: None) -> None:
    table = catalogue()
    assert list(table) == sorted(table)
    assert table["source.counter"].startswith("nodes.")
    cls = resolve_node("source.counter")
    assert issubclass(cls, Node) and f"{cls.__module__}:{cls.__qualname__}" == table["source.counter"]


def test_a_catalogue_and_a_single_entry_point_both_add_names(plugin: None) -> None:
    table = load_plugin_table(GROUP)
    assert table["zz_test.echo"] == "edgeloop_test_plugin:Echo"  # from the dict
    assert table["zz_test.gain"] == "edgeloop_test_plugin:Gain"  # the entry point's own name
    assert "source.counter" in table  # the built-ins stay
    assert resolve_node("zz_test.echo").__name__ == "Echo"
    assert resolve_node("zz_test.gain").__name__ == "Gain"


def test_a_module_path_resolves_without_any_registration(plugin: None) -> None:
    assert resolve_node("edgeloop_test_plugin:Echo").__name__ == "Echo"
    assert import_target("edgeloop_test_plugin.Gain").__name__ == "Gain"  # the dotted form


def test_an_unknown_name_lists_its_relatives_and_both_ways_to_name_a_node(fresh_tables: None) -> None:
    with pytest.raises(GraphError) as info:
        resolve_node("source.countr")
    msg = str(info.value)
    assert msg.startswith("unknown node type 'source.countr': use a built-in name (source.")
    assert msg.endswith("…, see `edgeloop nodes`) or 'package.module:Class'")
    listed = msg.split("(", 1)[1].split("…")[0].split(", ")
    assert "source.counter" in listed and all(n.startswith("source.") for n in listed)


def test_an_unknown_name_without_relatives_lists_the_first_eight(fresh_tables: None) -> None:
    with pytest.raises(GraphError) as info:
        resolve_node("nothing_like_it")
    listed = str(info.value).split("(", 1)[1].split("…")[0].split(", ")
    assert listed == list(catalogue())[:8]


def test_a_dotted_path_in_uses_must_use_the_colon_form(plugin: None) -> None:
    with pytest.raises(
        GraphError, match="unknown node type 'edgeloop_test_plugin.Echo'.*'package.module:Class'"
    ):
        resolve_node("edgeloop_test_plugin.Echo")


def test_a_class_that_is_not_a_node_is_refused_by_name(plugin: None) -> None:
    with pytest.raises(GraphError) as info:
        resolve_node("zz_test.bogus")
    assert str(info.value) == (
        "'zz_test.bogus' resolves to <class 'edgeloop_test_plugin.NotANode'>, which is not a "
        "runtime.node.Node subclass (name a Node class)"
    )
    with pytest.raises(
        GraphError, match=r"^'edgeloop_test_plugin:SETTING' resolves to 3, which is not a runtime"
    ):
        resolve_node("edgeloop_test_plugin:SETTING")


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("Echo", "'Echo' is not an importable 'package.module:Class' path"),
        (":Echo", "':Echo' is not an importable 'package.module:Class' path"),
        ("edgeloop_test_plugin:", "'edgeloop_test_plugin:' is not an importable 'package.module:Class' path"),
        (
            "no_such_package_xyz.mod:Echo",
            "cannot import module 'no_such_package_xyz.mod' for 'no_such_package_xyz.mod:Echo': No module named "
            "'no_such_package_xyz' (is its package installed, or its directory on PYTHONPATH?)",
        ),
        (
            "edgeloop_test_plugin:Missing",
            "module 'edgeloop_test_plugin' has no attribute 'Missing' (from 'edgeloop_test_plugin:Missing')",
        ),
    ],
)
def test_bad_targets_name_the_value_and_the_rule(plugin: None, target: str, message: str) -> None:
    with pytest.raises(GraphError) as info:
        import_target(target)
    assert str(info.value) == message


def test_a_module_that_fails_on_import_is_named_with_its_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_tables: None
) -> None:
    (tmp_path / "edgeloop_broken_plugin.py").write_text("raise RuntimeError('needs a camera')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(GraphError) as info:
        resolve_node("edgeloop_broken_plugin:Cam")
    assert str(info.value) == (
        "importing module 'edgeloop_broken_plugin' for 'edgeloop_broken_plugin:Cam' failed: "
        "RuntimeError: needs a camera"
    )


def test_a_broken_plugin_package_is_named_instead_of_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_tables: None
) -> None:
    install(
        tmp_path,
        "edgeloop_broken_plugin",
        f"[{GROUP}]\nbroken = edgeloop_broken_plugin:CATALOG\n",
        {"edgeloop_broken_plugin": "import no_such_dependency_xyz\nCATALOG = {}\n"},
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(GraphError) as info:
        resolve_node("source.counter")
    assert str(info.value) == (
        f"entry point 'broken = edgeloop_broken_plugin:CATALOG' of group '{GROUP}' (from edgeloop_broken_plugin) "
        "cannot be loaded: ModuleNotFoundError: No module named 'no_such_dependency_xyz' "
        "(fix or uninstall edgeloop_broken_plugin)"
    )


def test_tables_are_read_once_per_process(plugin: None, tmp_path: Path) -> None:
    first = load_plugin_table(GROUP)
    (tmp_path / "edgeloop_test_plugin-0.1.dist-info" / "entry_points.txt").write_text(f"[{GROUP}]\n")
    assert load_plugin_table(GROUP) is first  # cached: a package changed mid-run is not seen
    assert "zz_test.gain" in catalogue()
    load_plugin_table.cache_clear()
    assert "zz_test.gain" not in catalogue()  # read afresh: the entry point is gone
