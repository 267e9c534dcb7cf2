import subprocess
import sys

from service.core.tokens import count_tokens, get_encoding, truncate_to_tokens


def test_cl100k_counts_tokens_from_the_bundled_file_in_a_process_with_an_empty_tiktoken_cache(tmp_path):
    # A fresh interpreter with an empty cache folder: a download attempt would fail offline.
    code = ("from service.core.tokens import count_tokens; "
            "print(count_tokens('hello world'), count_tokens('阿托伐他汀'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"TIKTOKEN_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin",
                              "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"})
    english, chinese = map(int, out.stdout.split())
    assert english == 2  # "hello", " world" in cl100k_base
    assert chinese > 2


def test_encoding_is_the_real_cl100k_and_truncation_respects_the_budget():
    enc = get_encoding("cl100k_base")
    assert enc.encode("hello world") == [15339, 1917]
    text = "心血管安全性数据显示，主要不良心血管事件发生率与安慰剂相当。" * 20
    cut = truncate_to_tokens(text, 50)
    assert count_tokens(cut) <= 50
    assert text.startswith(cut[:10])
    assert count_tokens("<|endoftext|> is plain text in a document") > 3
