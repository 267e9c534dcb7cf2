"""YAML from outside is read without expanding aliases or recursing without end: a few hundred bytes must not
take memory, time or the process (issue 46, finding 2 and the deep trees of finding 11)."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexers.errors import IngestError
from indexers.parsers.markdown import split_front_matter
from indexers.sidecar import read_sidecar
from service.core.taxonomy import TaxonomyError, parse_taxonomy

# "Billion laughs": nine levels of nine aliases each would be 9**9 strings; refused at its first alias.
LAUGHS = "a: &a [" + ",".join(['"lol"'] * 9) + "]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(8))
DEEP_LIST = "a: " + "[" * 5000 + "]" * 5000
DEEP_MAP = "a: " + "{x: " * 3000 + "1" + "}" * 3000
LONG_NUMBER = "id: " + "9" * 100_000


@pytest.mark.parametrize(("text", "says"), [(LAUGHS, "aliases"), (DEEP_LIST, "nested more than"),
                                            (DEEP_MAP, "nested more than"), (LONG_NUMBER, "digits")])
def test_a_hostile_taxonomy_is_refused_as_invalid_yaml_naming_why(text, says):
    assert len(LAUGHS) < 500
    with pytest.raises(TaxonomyError) as raised:
        parse_taxonomy(text)
    assert "invalid YAML" in str(raised.value) and says in str(raised.value)


def test_anchors_alone_and_ordinary_nesting_still_read():
    with pytest.raises(TaxonomyError) as raised:  # a valid YAML document, just not a taxonomy
        parse_taxonomy("id: &x t\nversion: '1'\n")
    assert "invalid YAML" not in str(raised.value)


def test_sidecars_and_front_matter_refuse_aliases_as_bad_metadata(tmp_path: Path):
    doc = tmp_path / "note.md"
    doc.write_text("# Note\n", encoding="utf-8")
    (tmp_path / "note.md.meta.yaml").write_text(LAUGHS, encoding="utf-8")
    with pytest.raises(IngestError) as raised:
        read_sidecar(doc)
    assert raised.value.code == "bad_metadata" and "aliases" in str(raised.value)
    with pytest.raises(IngestError) as raised:
        split_front_matter("---\n" + LAUGHS + "---\n# Body\n", "front.md")
    assert raised.value.code == "bad_metadata"
