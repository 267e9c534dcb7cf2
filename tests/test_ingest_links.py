"""Ingesting a folder never follows a link out of it (issue 46, finding 6)."""

from __future__ import annotations

from pathlib import Path

from indexers.scanner import candidate_files, scan


def test_a_link_out_of_the_folder_is_not_ingested_and_one_within_it_is(tmp_path: Path):
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "passwd.txt"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n", encoding="utf-8")
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    note = root / "sub" / "note.txt"
    note.write_text("Cardiovex 20 mg once daily.\n", encoding="utf-8")
    (root / "sub" / "passwd.txt").symlink_to(secret)
    (root / "sub" / "same_note.txt").symlink_to(note)
    (root / "escape").symlink_to(outside, target_is_directory=True)
    found = {p.relative_to(root).as_posix() for p in candidate_files(root / "sub")}
    assert found == {"sub/note.txt", "sub/same_note.txt"}
    assert {p.relative_to(root).as_posix() for p in candidate_files(root)} == {"sub/note.txt", "sub/same_note.txt"}
    texts = [doc.text for _, doc in scan(root) if not isinstance(doc, Exception)]
    assert texts and not any("root:x:0:0" in t for t in texts)
