"""The report as one self-contained HTML page (inline CSS and SVG charts), rendered from the report's JSON."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from jinja2 import Environment, FileSystemLoader, select_autoescape

from service.reports.plots import charts
from service.reports.schema import EvalReport

TEMPLATES = Path(__file__).resolve().parent / "templates"
Language = Literal["en", "zh"]
# No script, nothing fetched, styles inline: what the page needs is in it. A CDN link added later fails
# loudly (blocked, and a console error the browser test sees) instead of silently needing the network.
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"


def fmt(value: object) -> str:
    """How the page writes a number (the report test formats the JSON's value the same way)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _arrow(change: str) -> str:
    return {"better": "▲", "worse": "▼"}.get(change, "")


@cache
def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]),
                      trim_blocks=False, lstrip_blocks=False)
    env.filters["fmt"] = fmt
    env.filters["arrow"] = _arrow
    return env


@cache
def _strings() -> dict[str, dict[str, str]]:
    data = yaml.safe_load((TEMPLATES / "strings.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def render_html(report: EvalReport, lang: Language = "en") -> str:
    return _environment().get_template("report.html.j2").render(
        r=report, charts=charts(report), t=_strings()[lang], lang="zh-CN" if lang == "zh" else "en")
