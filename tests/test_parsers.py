"""Every format in Chinese and English, from the shipped sample repository, with provenance."""

from pathlib import Path

import pytest

from indexers.document import detect_language
from indexers.news import read_feed
from indexers.parsers.text import parse_text
from indexers.reader import read_file

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "content"


def doc(rel: str):
    return read_file(SAMPLES / rel, SAMPLES)


@pytest.mark.parametrize(("rel", "fmt", "lang", "needle"), [
    ("cardiovex/cardiovex_bleeding_safety_en.pdf", "pdf", "en", "Intracranial haemorrhage was reduced by 46%"),
    ("cardiovex/af_guideline_2026_zh.pdf", "pdf", "zh", "HAS-BLED评分识别可纠正的出血危险因素"),
    ("cardiovex/cardiovex_dosing_guide_en.docx", "docx", "en", "15-49 mL/min | 15 mg once daily"),
    ("glucora/glucora_injection_guide_zh.docx", "docx", "zh", "注射后保持按压6秒"),
    ("oncotinib/oncotinib_detail_aid_en.pptx", "pptx", "en", "CNS objective response rate 77%"),
    ("glucora/glucora_detail_aid_zh.pptx", "pptx", "zh", "52周平均体重下降5.6 kg"),
    ("oncotinib/oncotinib_dosing_en.html", "html", "en", "Avoid strong CYP3A4 inducers"),
    ("glucora/t2d_disease_education_zh.html", "html", "zh", "我国成人糖尿病患病率约为12.4%"),
    ("cardiovex/cardiovex_real_world_en.md", "markdown", "en", "Persistence on therapy at 12 months was 81%"),
    ("glucora/glucora_onset_zh.md", "markdown", "zh", "空腹血糖即下降2.1 mmol/L"),
    ("glucora/glucora_price_access_en.txt", "txt", "en", "about 160 yuan"),
    ("oncotinib/oncotinib_old_leaflet_zh.txt", "txt", "zh", "中位PFS为9.6个月"),
])
def test_each_format_in_each_language_yields_its_text_language_and_metadata(rel, fmt, lang, needle):
    d = doc(rel)
    assert d.format == fmt
    assert d.language == lang
    assert needle in d.text
    assert (d.meta.approval_code and d.meta.valid_until and d.meta.product is not None) or "disease" in rel
    assert d.source == "internal" and d.source_key == rel
    for block in d.blocks:  # offsets point at the block's own text in the document text
        assert d.text[block["char_start"]:block["char_end"]] == block["text"]


def test_pdf_keeps_page_numbers_and_its_title():
    d = doc("cardiovex/cardiovex_bleeding_safety_en.pdf")
    pages = {b["page"] for b in d.blocks}
    assert pages == {1, 2, 3} and d.pages == 3
    page3 = next(b for b in d.blocks if b["page"] == 3)
    assert "reversal agent" in page3["text"]
    assert d.title.startswith("VIVA-AF safety analysis")


def test_pptx_keeps_slides_titles_and_speaker_notes():
    d = doc("cardiovex/cardiovex_detail_aid_zh.pptx")
    notes = [b for b in d.blocks if b["kind"] == "notes"]
    assert {b["slide"] for b in notes} == {1, 2, 4}
    assert any("依从性差的老年患者" in b["text"] for b in notes)
    slide3 = [b for b in d.blocks if b["slide"] == 3]
    assert slide3[0]["kind"] == "title" and slide3[0]["text"] == "大出血和颅内出血更少"
    assert all(b["section"] == "大出血和颅内出血更少" for b in slide3)


def test_docx_headings_become_sections_and_tables_are_kept_in_order():
    d = doc("cardiovex/cardiovex_dosing_guide_en.docx")
    table = next(b for b in d.blocks if b["kind"] == "table")
    assert table["section"] == "Dose adjustment"
    assert "Below 15 mL/min | Not recommended" in table["text"]
    assert d.text.index("Reduce the dose") < d.text.index("Creatinine clearance | Dose") < d.text.index("Stop warfarin")


def test_html_drops_navigation_and_footer_boilerplate():
    d = doc("cardiovex/cardiovex_mechanism_en.html")
    assert "selective and reversible inhibitor of factor Xa" in d.text
    for boilerplate in ("Log in", "Privacy policy", "Cookie settings", "All rights reserved"):
        assert boilerplate not in d.text
    assert any(b["section"] and b["section"].endswith("Pharmacokinetics") for b in d.blocks)


def test_markdown_front_matter_is_the_metadata_and_headings_are_sections():
    d = doc("cardiovex/cardiovex_reimbursement_zh.md")
    assert d.meta.approval_code == "CV-CN-2026-060" and d.meta.owner == "市场准入部"
    assert d.title == "卡迪维纳入国家医保目录：报销政策与患者费用"
    assert "---" not in d.text.split("\n")[0]
    table = next(b for b in d.blocks if b["kind"] == "table")
    assert "约120元" in table["text"] and table["section"].endswith("患者费用")


def test_news_feeds_rss_and_jsonl_give_external_items_with_dates_and_feed_metadata():
    rss = list(read_feed(SAMPLES / "news" / "medical_news.rss", "news/medical_news.rss"))
    jsonl = list(read_feed(SAMPLES / "news" / "industry_news.jsonl", "news/industry_news.jsonl"))
    assert len(rss) == 3 and len(jsonl) == 3
    for item in rss + jsonl:
        assert item.source == "external" and item.format == "news"
        assert item.meta.approval_status == "approved" and item.published is not None
        assert "#" in item.source_key
    assert {i.language for i in rss} == {"en", "zh"}
    wclc = next(i for i in rss if "wclc" in i.source_key)
    assert str(wclc.published) == "2025-11-02" and "three years" in wclc.text


def test_legacy_chinese_text_files_in_gb18030_are_decoded():
    text = "格卢可每周一次注射。\n\n漏打超过5天应跳过。"
    parsed = parse_text(text.encode("gb18030"), "legacy.txt").finalise()
    assert parsed.text == "格卢可每周一次注射。\n\n漏打超过5天应跳过。"


@pytest.mark.parametrize(("text", "expected"), [
    ("卡迪维每日一次口服，无需常规凝血监测。", "zh"),
    ("Cardiovex is taken once daily with no routine monitoring.", "en"),
    ("GLOW-1研究 showed HbA1c reduction of 1.8% 降糖 with weekly dosing 每周一次 injection pen 注射笔", "mixed"),
    ("", "en"),
])
def test_language_detection(text, expected):
    assert detect_language(text) == expected


def test_a_json_sidecar_carries_the_compliance_metadata(tmp_path):
    (tmp_path / "note.txt").write_text("Glucora is injected once weekly with a prefilled pen.", encoding="utf-8")
    (tmp_path / "note.meta.json").write_text(
        '{"product": "glucora", "approval_code": "GL-X-1", "approval_status": "Approved", '
        '"valid_until": "2027-01-31", "owner": "Metabolism", "source": "external"}', encoding="utf-8")
    d = read_file(tmp_path / "note.txt", tmp_path)
    assert (d.meta.product, d.meta.approval_code, d.meta.approval_status) == ("glucora", "GL-X-1", "approved")
    assert str(d.meta.valid_until) == "2027-01-31" and d.source == "external" and d.meta.owner == "Metabolism"
