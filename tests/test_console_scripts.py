"""The console's scripts are classic scripts sharing one global scope: a top-level name declared in two of them
is one binding, and the later file's wins. The taxonomy editor's review() once replaced the review queue's, and
the A key stopped accepting tags. No two files may declare the same name."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

STATIC = Path(__file__).resolve().parent.parent / "service" / "web" / "static"
TOP_LEVEL = re.compile(r"^(?:async\s+)?(?:function\*?|const|let|var|class)\s+([A-Za-z_$][\w$]*)", re.M)


def test_no_two_console_scripts_declare_the_same_top_level_name():
    where: dict[str, list[str]] = defaultdict(list)
    scripts = sorted(STATIC.glob("*.js"))
    assert len(scripts) >= 5  # console, library, admin, suggestions, taxonomy, asset
    for script in scripts:
        for name in TOP_LEVEL.findall(script.read_text(encoding="utf-8")):
            where[name].append(script.name)
    assert {name: files for name, files in where.items() if len(files) > 1} == {}


def test_every_console_script_is_loaded_by_the_page():
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    loaded = set(re.findall(r'<script src="([^"]+)"', page))
    assert loaded == {p.name for p in STATIC.glob("*.js")}
