"""What calling off an LLM request costs the local llama.cpp server: how long a short request waits after a long
one was abandoned, non-streamed (the client times out) or streamed (the client closes the stream), and while the
long one was still evaluating its prompt.

    python bench/llm_cancel.py [--model PATH] [--threads 2]

Baseline, same run: the short request alone. The LLM gateway's design (service/llm/gateway.py) rests on these
figures: background calls are streamed so that preempting one frees the server at its next token.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import openai

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.llm.local_server import LocalLLMServer  # noqa: E402
from service.llm.model_files import local_model_path  # noqa: E402
from service.settings import Settings  # noqa: E402

SHORT = [{"role": "user", "content": "Say OK."}]
LONG_ANSWER = [{"role": "user", "content": "Write a long essay about the history of anticoagulants, "
                "at least 600 words."}]
FILLER = ("Atrial fibrillation raises the risk of stroke, and oral anticoagulants lower it; the trials compared "
          "bleeding, efficacy and dosing across renal function groups. ")


def short_request(client: openai.OpenAI, model: str) -> float:
    started = time.perf_counter()
    client.chat.completions.create(model=model, messages=SHORT, max_tokens=4)  # type: ignore[arg-type]
    return time.perf_counter() - started


def abandoned_then_short(client: openai.OpenAI, model: str, messages: list[dict[str, str]], *, stream: bool,
                         give_up_after_s: float) -> tuple[float, float]:
    """Start ``messages`` (long), abandon it after ``give_up_after_s``, then time a short request; returns
    (seconds the short request took, seconds since the long one was abandoned until the short one finished)."""
    def long_call() -> None:
        try:
            if stream:
                s = client.chat.completions.create(model=model, messages=messages,  # type: ignore[arg-type]
                                                   max_tokens=700, stream=True)
                started = time.perf_counter()
                for _ in s:
                    if time.perf_counter() - started > give_up_after_s:
                        break
                s.close()
            else:
                client.with_options(timeout=give_up_after_s, max_retries=0).chat.completions.create(
                    model=model, messages=messages, max_tokens=700)  # type: ignore[arg-type]
        except openai.APIError:
            pass

    t = threading.Thread(target=long_call)
    t.start()
    t.join()  # the call gives up by itself: its timeout, or its stream closed at the first token past the time
    abandoned = time.perf_counter()
    took = short_request(client, model)
    return took, time.perf_counter() - abandoned


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None, help="GGUF file (default: the service's default).")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    model_path = args.model or local_model_path(Settings())
    with tempfile.TemporaryDirectory() as tmp, LocalLLMServer(model_path, "bench", threads=args.threads,
                                                              log_path=Path(tmp) / "llm.log") as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="x", timeout=600, max_retries=0)
        short_request(client, "bench")  # warm-up
        alone = min(short_request(client, "bench") for _ in range(3))
        long_prompt = [{"role": "user", "content": FILLER * 40 + "\nNow write a long essay about it."}]
        rows = [
            ("short request alone (baseline)", alone, None),
            ("after a non-streamed answer abandoned 3 s into generation",
             *abandoned_then_short(client, "bench", LONG_ANSWER, stream=False, give_up_after_s=3.0)),
            ("after a streamed answer closed 3 s into generation",
             *abandoned_then_short(client, "bench", LONG_ANSWER, stream=True, give_up_after_s=3.0)),
            ("after a streamed request given up 1 s into evaluating a ~1,000-token prompt (closed at its "
             "first token)", *abandoned_then_short(client, "bench", long_prompt, stream=True, give_up_after_s=1.0)),
        ]
    print(f"model {model_path.name}, {args.threads} threads\n")
    print("| case | short request s | x alone |")
    print("|---|---|---|")
    for name, took, _ in rows:
        print(f"| {name} | {took:.2f} | {took / alone:.1f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
