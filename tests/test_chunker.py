from itertools import pairwise

from indexers.chunker import chunk_blocks
from indexers.document import ParsedDocument, TextBlock
from service.core.tokens import count_tokens


def parsed(*blocks: TextBlock) -> ParsedDocument:
    return ParsedDocument(format="txt", blocks=list(blocks)).finalise()


def test_chunks_never_cross_pages_slides_or_sections_and_offsets_point_at_their_text():
    d = parsed(TextBlock("第一页第一句。第一页第二句。", page=1), TextBlock("Page two only.", page=2),
               TextBlock("Slide text.", slide=3, section="Results"),
               TextBlock("Other section.", slide=3, section="Safety"))
    chunks = chunk_blocks(d.text, d.blocks, max_tokens=200, overlap_tokens=10)
    assert [(c.page, c.slide, c.section) for c in chunks] == [(1, None, None), (2, None, None), (None, 3, "Results"),
                                                              (None, 3, "Safety")]
    for c in chunks:
        assert d.text[c.char_start:c.char_end] == c.text


def test_chinese_sentence_ends_split_chunks_within_the_token_budget_with_overlap():
    sentences = [f"第{i}句：卡迪维降低卒中风险并减少大出血事件；" for i in range(40)]
    d = parsed(TextBlock("".join(sentences), page=1))
    chunks = chunk_blocks(d.text, d.blocks, max_tokens=100, overlap_tokens=40)
    assert len(chunks) > 3
    for c in chunks:
        assert c.token_count <= 100 and count_tokens(c.text) == c.token_count
        assert c.text.endswith(("；", "。")), "a chunk ends at a sentence end"
    for a, b in pairwise(chunks):
        assert b.char_start < a.char_end, "consecutive chunks overlap"
    covered = "".join(c.text for c in chunks)
    assert all(s in covered for s in sentences)


def test_english_sentences_and_an_over_long_sentence_are_cut_on_tokens():
    long_sentence = "word " * 500
    d = parsed(TextBlock("Short one. Another short one! " + long_sentence.strip() + ". End."))
    chunks = chunk_blocks(d.text, d.blocks, max_tokens=64, overlap_tokens=8)
    assert max(c.token_count for c in chunks) <= 64
    assert chunks[0].text.startswith("Short one.")
    assert chunks[-1].text.endswith("End.")
    assert sum(1 for c in chunks if "word word" in c.text) >= 8
