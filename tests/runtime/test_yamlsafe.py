"""Safe YAML for graph files: the size cap, refused constructs with file:line, and the line of every key path."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runtime.errors import GraphError
from runtime.yamlsafe import MAX_YAML_BYTES, load_yaml

GRAPH = """\
name: demo
nodes:
  - id: cam
    uses: source.counter
    params:
      count: 3
  - id: sink
    inputs:
      x: {from: cam/out, policy: latest}
"""


def refused(text: str) -> str:
    with pytest.raises(GraphError) as info:
        load_yaml("g.yaml", text=text)
    return str(info.value)


# ----- the size cap -----


def test_a_file_of_exactly_the_cap_loads_and_one_byte_more_is_refused(tmp_path: Path) -> None:
    head = "name: big\n#"
    path = tmp_path / "big.yaml"
    path.write_text(head + "x" * (MAX_YAML_BYTES - len(head)))
    assert MAX_YAML_BYTES == 1024 * 1024 and path.stat().st_size == MAX_YAML_BYTES
    assert load_yaml(path).data == {"name": "big"}
    path.write_text(head + "x" * (MAX_YAML_BYTES - len(head) + 1))
    with pytest.raises(
        GraphError, match=re.escape(f"big.yaml: {MAX_YAML_BYTES + 1} bytes is over the 1048576-byte limit")
    ):
        load_yaml(path)


def test_text_is_capped_in_bytes_not_characters() -> None:
    text = "name: " + "é" * (MAX_YAML_BYTES // 2)  # fewer characters than the cap, more bytes
    assert len(text) < MAX_YAML_BYTES < len(text.encode())
    assert refused(text) == "g.yaml: over the 1048576-byte limit for graph files"


def test_a_missing_file_is_named_with_the_reason(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(
        GraphError, match=re.escape(f"{missing}: cannot read the graph file: No such file or directory")
    ):
        load_yaml(missing)


# ----- refused constructs, each at its line -----


def test_an_alias_is_refused_at_the_line_that_uses_it() -> None:
    text = "base: &p {count: 3}\nother: 1\nnodes:\n  - params: *p\n"
    assert refused(text) == (
        "g.yaml:4: YAML anchors/aliases are not allowed in graph files "
        "('*p' repeats the anchor '&p' of line 1: write the value out)"
    )


def test_merge_keys_are_refused_even_without_an_alias() -> None:
    assert refused("a: 1\nb:\n  <<: {x: 1}\n  y: 2\n") == "g.yaml:3: YAML merge keys ('<<') are not allowed"


def test_duplicate_keys_are_refused_at_the_second_one_also_when_they_differ_only_in_type() -> None:
    assert refused("nodes:\n  - id: a\n    uses: x\n    uses: y\n") == "g.yaml:4: duplicate key 'uses'"
    assert refused("1: a\n'1': b\n") == "g.yaml:2: duplicate key '1'"  # keys become strings


def test_keys_must_be_plain_scalars() -> None:
    assert refused("? [a, b]\n: 1\n") == "g.yaml:1: mapping keys must be plain scalars"
    assert refused("x: 1\n~: 2\n") == "g.yaml:2: mapping keys must be plain scalars"


def test_tags_and_unreadable_values_are_graph_errors_not_yaml_tracebacks() -> None:
    assert refused("name: x\nrun: !!python/object/apply:os.system ['true']\n") == (
        "g.yaml:2: the YAML tag '!!python/object/apply:os.system' is not allowed in graph files "
        "(remove it: graph files take plain mappings, lists and values)"
    )
    assert refused("a: !!set {x, y}\n").startswith("g.yaml:1: the YAML tag '!!set' is not allowed")
    msg = refused("name: x\nrun: !!python/object:os.system x\n")
    assert msg.startswith(
        "g.yaml:2: cannot read 'x' as !!python/object:os.system: could not determine a constructor"
    )
    assert refused("a: 1\nn: !!int abc\n").startswith("g.yaml:2: cannot read 'abc' as !!int: invalid literal")
    assert refused("when: 2024-13-45\n").startswith("g.yaml:1: cannot read '2024-13-45' as !!timestamp")
    assert refused("a: !camera x\n").endswith("(quote it to keep it a string; graph files take no YAML tags)")


def test_syntax_errors_empty_files_and_second_documents_name_their_line() -> None:
    assert refused("name: x\nnodes: [a, b\n").startswith("g.yaml:3: YAML syntax error: ")
    assert refused("# only a comment\n") == "g.yaml:1: the graph file is empty"
    assert refused("a: 1\n---\nb: 2\n").startswith("g.yaml:2: YAML syntax error: but found another document")


# ----- values and lines -----


def test_values_are_plain_python_with_string_keys() -> None:
    doc = load_yaml("g.yaml", text="1: one\nrate_hz: 200\nenabled: yes\nratio: 0.5\nnone: ~\nxs: [1, b]\n")
    assert doc.data == {
        "1": "one",
        "rate_hz": 200,
        "enabled": True,
        "ratio": 0.5,
        "none": None,
        "xs": [1, "b"],
    }


def test_every_key_and_list_item_has_its_line() -> None:
    doc = load_yaml("graph.yaml", text=GRAPH)
    assert doc.lines[()] == 1
    assert doc.lines[("name",)] == 1
    assert doc.lines[("nodes",)] == 2
    assert doc.lines[("nodes", 0)] == 3 and doc.lines[("nodes", 0, "id")] == 3
    assert doc.lines[("nodes", 0, "params", "count")] == 6
    assert doc.lines[("nodes", 1)] == 7
    assert doc.lines[("nodes", 1, "inputs", "x")] == 9
    assert doc.lines[("nodes", 1, "inputs", "x", "policy")] == 9


def test_a_path_below_the_known_ones_points_at_its_deepest_known_key() -> None:
    doc = load_yaml("graph.yaml", text=GRAPH)
    assert doc.line_of(("nodes", 0, "params", "count", "oops")) == 6
    assert doc.line_of(("nodes", 1, "outputs")) == 7  # a missing key: the node it belongs to
    assert doc.line_of(("elsewhere",)) == 1
    assert doc.where(("nodes", 1, "inputs", "x")) == "graph.yaml:9"


def test_a_named_source_with_text_is_not_read(tmp_path: Path) -> None:
    doc = load_yaml(tmp_path / "not-there.yaml", text="a: 1\n")
    assert doc.data == {"a": 1} and doc.filename == str(tmp_path / "not-there.yaml")
