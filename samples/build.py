"""Write the sample content repository and its gold tags from samples/spec.yaml.

    python samples/build.py        # rewrites samples/content/ and samples/gold.yaml

The generated files are committed, so tests and `make run` need none of the writers used here
(reportlab, python-docx, python-pptx); this script only documents and reproduces them.
"""

from __future__ import annotations

import html
import json
import re
import shutil
from datetime import UTC, date, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
CONTENT = HERE / "content"
CJK = re.compile(r"[\u4e00-\u9fff]")

FORMAT_TAG = {".pptx": "slide_deck", ".pdf": "document", ".docx": "document", ".txt": "document",
              ".html": "web_article", ".md": "web_article"}
# A fixed timestamp keeps rebuilt files byte-identical (so re-ingesting them is a no-op).
FIXED = datetime(2026, 11, 1, tzinfo=UTC)


def is_zh(text: str) -> bool:
    return len(CJK.findall(text)) > len(text) * 0.15


def meta_for_sidecar(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in meta.items()}


def write_sidecar(path: Path, meta: dict[str, Any]) -> None:
    sidecar = path.with_name(path.name + ".meta.yaml")
    sidecar.write_text(yaml.safe_dump(meta_for_sidecar(meta), allow_unicode=True, sort_keys=False), encoding="utf-8")


def write_pptx(path: Path, spec: dict[str, Any]) -> None:
    from pptx import Presentation

    deck = Presentation()
    deck.core_properties.title = spec["title"]
    deck.core_properties.modified = FIXED.replace(tzinfo=None)
    deck.core_properties.created = FIXED.replace(tzinfo=None)
    for slide_spec in spec["slides"]:
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = slide_spec["title"]
        body = slide.placeholders[1].text_frame
        for i, line in enumerate(slide_spec.get("body", [])):
            paragraph = body.paragraphs[0] if i == 0 else body.add_paragraph()
            paragraph.text = line
        if slide_spec.get("notes"):
            slide.notes_slide.notes_text_frame.text = slide_spec["notes"]
    deck.save(str(path))


def write_docx(path: Path, spec: dict[str, Any]) -> None:
    import docx

    document = docx.Document()
    document.core_properties.title = spec["title"]
    document.core_properties.created = FIXED.replace(tzinfo=None)
    document.core_properties.modified = FIXED.replace(tzinfo=None)
    document.add_heading(spec["title"], level=0)
    for section in spec["sections"]:
        document.add_heading(section["heading"], level=1)
        for paragraph in section.get("paragraphs", []):
            document.add_paragraph(paragraph)
        if section.get("table"):
            rows = section["table"]
            table = document.add_table(rows=len(rows), cols=len(rows[0]))
            for r, row in enumerate(rows):
                for c, cell in enumerate(row):
                    table.cell(r, c).text = cell
    document.save(str(path))


def write_pdf(path: Path, spec: dict[str, Any]) -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Spacer

    zh = is_zh(spec["title"])
    if zh:
        pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    font = "STSong-Light" if zh else "Helvetica"
    heading = ParagraphStyle("h", fontName=font, fontSize=15, leading=20, wordWrap="CJK" if zh else None)
    body = ParagraphStyle("b", fontName=font, fontSize=10.5, leading=16, wordWrap="CJK" if zh else None)
    story: list[Any] = []
    for i, section in enumerate(spec["sections"]):
        if i:
            story.append(PageBreak())  # one section a page: page provenance is worth testing
        story.append(Paragraph(html.escape(section["heading"]), heading))
        story.append(Spacer(1, 8))
        for paragraph in section.get("paragraphs", []):
            story.append(Paragraph(html.escape(paragraph), body))
            story.append(Spacer(1, 6))
    doc = SimpleDocTemplate(str(path), pagesize=A4, title=spec["title"], author=spec["meta"].get("owner", ""),
                            invariant=1)
    doc.build(story)


def write_html(path: Path, spec: dict[str, Any]) -> None:
    lang = "zh" if is_zh(spec["title"]) else "en"
    parts = [f"<!DOCTYPE html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\">",
             f"<title>{html.escape(spec['title'])}</title></head><body>",
             "<nav><a href=\"/\">Home</a> | <a href=\"/products\">Products</a> | <a href=\"/contact\">Contact us</a>"
             " | <a href=\"/login\">Log in</a></nav>",
             "<main><article>"]
    for i, section in enumerate(spec["sections"]):
        tag = "h1" if i == 0 and section["heading"] == spec["title"] else "h2"
        if i == 0 and tag == "h2":
            parts.append(f"<h1>{html.escape(spec['title'])}</h1>")
        parts.append(f"<{tag}>{html.escape(section['heading'])}</{tag}>")
        parts += [f"<p>{html.escape(p)}</p>" for p in section.get("paragraphs", [])]
    parts.append("</article></main>")
    parts.append("<footer><p>Cookie settings | Privacy policy | Terms of use</p>"
                 "<p>Copyright 2026 Example Pharma. All rights reserved.</p></footer></body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")


def write_markdown(path: Path, spec: dict[str, Any]) -> None:
    front = yaml.safe_dump({"title": spec["title"], **meta_for_sidecar(spec["meta"])}, allow_unicode=True,
                           sort_keys=False)
    lines = [f"---\n{front}---", f"# {spec['title']}", ""]
    for section in spec["sections"]:
        lines += [f"## {section['heading']}", ""]
        for paragraph in section.get("paragraphs", []):
            lines += [paragraph, ""]
        if section.get("table"):
            rows = section["table"]
            lines.append("| " + " | ".join(rows[0]) + " |")
            lines.append("|" + "---|" * len(rows[0]))
            lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
            lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")


def write_text(path: Path, spec: dict[str, Any]) -> None:
    paragraphs = [spec["title"]]
    for section in spec["sections"]:
        if section["heading"] != spec["title"]:
            paragraphs.append(section["heading"])
        paragraphs += section.get("paragraphs", [])
    path.write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")


WRITERS = {".pptx": write_pptx, ".docx": write_docx, ".pdf": write_pdf, ".html": write_html,
           ".md": write_markdown, ".txt": write_text}


def write_rss(path: Path, feed: dict[str, Any]) -> None:
    items = []
    for item in feed["items"]:
        published = datetime.combine(item["published"], datetime.min.time(), tzinfo=UTC)
        items.append(
            "<item>"
            f"<title>{html.escape(item['title'])}</title>"
            f"<guid isPermaLink=\"false\">{item['id']}</guid>"
            f"<link>https://news.example.org/{item['id']}</link>"
            f"<pubDate>{format_datetime(published)}</pubDate>"
            f"<description>{html.escape('<p>' + item['text'] + '</p>')}</description>"
            "</item>")
    path.write_text("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\"><channel>"
                    f"<title>{html.escape(feed['title'])}</title><link>https://news.example.org/</link>"
                    "<description>Sample medical news feed</description>\n" + "\n".join(items) +
                    "\n</channel></rss>\n", encoding="utf-8")


def write_jsonl(path: Path, feed: dict[str, Any]) -> None:
    lines = [json.dumps({"id": item["id"], "url": f"https://news.example.org/{item['id']}", "title": item["title"],
                         "published": item["published"].isoformat(), "text": item["text"]}, ensure_ascii=False)
             for item in feed["items"]]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    spec = yaml.safe_load((HERE / "spec.yaml").read_text(encoding="utf-8"))
    shutil.rmtree(CONTENT, ignore_errors=True)
    gold: dict[str, dict[str, Any]] = {}
    for asset in spec["assets"]:
        path = CONTENT / asset["file"]
        path.parent.mkdir(parents=True, exist_ok=True)
        WRITERS[path.suffix](path, asset)
        if path.suffix != ".md":  # Markdown carries its metadata as front matter
            write_sidecar(path, {"title": asset["title"], **asset["meta"]})
        gold[asset["file"]] = {**asset["gold"], "format": FORMAT_TAG[path.suffix], "source": "internal"}
    for feed in spec["feeds"]:
        path = CONTENT / feed["file"]
        path.parent.mkdir(parents=True, exist_ok=True)
        (write_rss if path.suffix == ".rss" else write_jsonl)(path, feed)
        write_sidecar(path, feed["meta"])
        for item in feed["items"]:
            gold[f"{feed['file']}#{item['id']}"] = {**item["gold"], "format": "news_item", "source": "external"}
    header = ("# Correct tags of every sample asset (taxonomy pharma-default), keyed by source key: the path\n"
              "# under samples/content, plus #item-id for news items. Generated by samples/build.py from spec.yaml.\n")
    out = {"taxonomy": "pharma-default", "assets": gold}
    (HERE / "gold.yaml").write_text(header + yaml.safe_dump(out, allow_unicode=True, sort_keys=False, width=120),
                                    encoding="utf-8")
    print(f"wrote {len(gold)} assets to {CONTENT}")


if __name__ == "__main__":
    main()
