"""Talking points with the local LLM, every delivered point held to the claim checker again.

    python bench/talking_points.py [--requests 50] [--context-sentences 12] [--model PATH] [--out FILE]

Ingests the sample content into a scratch folder, starts the local LLM server (the model `make run` prepares),
and asks for talking points over the sample needs in both languages, one request at a time, waiting for the
LLM (no deadline). For each answer it counts the LLM points delivered, the points dropped and why, and the
extractive points that filled in; then it checks every delivered point again, independently of the writer, with
:class:`ClaimChecker` against its citations' passages. Exit code 1 when any delivered point carries a flagged claim.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.claims.check import ClaimChecker  # noqa: E402
from service.ingest import Ingestor  # noqa: E402
from service.llm.model_files import local_model_path  # noqa: E402
from service.matching.schemas import TalkingPointsRequest  # noqa: E402
from service.runtime import build_components  # noqa: E402
from service.settings import Settings  # noqa: E402
from service.store.models import Chunk  # noqa: E402

NEEDS: list[dict[str, list[str]]] = [
    {"therapy_area": ["cardiovascular"], "value_driver": ["safety"]},
    {"therapy_area": ["cardiovascular"], "value_driver": ["efficacy"]},
    {"disease": ["atrial_fibrillation"], "customer_need": ["dosing_convenience"]},
    {"therapy_area": ["metabolism"], "value_driver": ["efficacy"]},
    {"therapy_area": ["metabolism"], "value_driver": ["onset_speed"]},
    {"disease": ["type2_diabetes"], "value_driver": ["safety"]},
    {"therapy_area": ["oncology"], "value_driver": ["efficacy"]},
    {"disease": ["nsclc"], "value_driver": ["safety"]},
    {"product": ["oncotinib"]},
    {"product": ["glucora"], "value_driver": ["price_access"]},
    {"product": ["cardiovex"], "value_driver": ["safety"]},
    {"therapy_area": ["oncology"], "customer_need": ["side_effect_management"]},
    {"disease": ["venous_thromboembolism"]},
]


def requests(count: int, taxonomy_values: set[tuple[str, str]]) -> list[TalkingPointsRequest]:
    """``count`` requests over the sample needs (values the taxonomy lacks are dropped), zh and en in turn."""
    needs = [{d: [v for v in vs if (d, v) in taxonomy_values] for d, vs in need.items()} for need in NEEDS]
    needs = [{d: vs for d, vs in need.items() if vs} for need in needs]
    needs = [need for need in needs if need]
    return [TalkingPointsRequest(need_tags=needs[i % len(needs)], language="zh" if (i // len(needs)) % 2 == 0
                                 else "en", n=3) for i in range(count)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--context-sentences", type=int, default=12)
    parser.add_argument("--model", type=Path, default=None, help="GGUF file (default: the one make run prepares)")
    parser.add_argument("--out", type=Path, default=None, help="write every answer and the counts as JSON here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hcp-bench-tp-") as tmp:
        settings = Settings(data_dir=Path(tmp) / "data", llm_mode="local", worker_enabled=False,
                            tagging_mode="learned", llm_local_threads=1,
                            llm_model_path=args.model or local_model_path(Settings()),
                            talking_points_context_sentences=args.context_sentences,
                            talking_points_deadline_s=300, llm_timeout_s=300, llm_interactive_deadline_s=300)
        c = build_components(settings)
        try:
            ingest = Ingestor.from_settings(c.db, c.vectors, c.embedder, settings, tagger=c.tagger)
            ingest.ingest_path(ROOT / "samples" / "content")
            taxonomy = c.tagger.taxonomy
            values = {(d.id, v.id) for d in taxonomy.dimensions for v in d.values}
            checker = ClaimChecker(taxonomy)
            writer = c.talking_points
            dropped: Counter[str] = Counter()
            methods: Counter[str] = Counter()
            flagged: list[dict[str, Any]] = []
            answers: list[dict[str, Any]] = []
            took: list[float] = []
            asked = requests(args.requests, values)
            for i, request in enumerate(asked, start=1):
                started = time.monotonic()
                out = writer.write(request, taxonomy)
                took.append(time.monotonic() - started)
                dropped.update(out.dropped)
                methods.update(p.method for p in out.points)
                with c.db.session() as s:
                    for point in out.points:
                        passages = [s.get(Chunk, cite.chunk_id).text for cite in point.citations]  # type: ignore[union-attr]
                        result = checker.check(point.text, passages)
                        if result.flags:
                            flagged.append({"request": i, "point": point.text, "method": point.method,
                                            "flags": [f.__dict__ for f in result.flags]})
                answers.append(out.model_dump(mode="json"))
                print(f"{i}/{len(asked)} {request.language} {request.need_tags}: {len(out.points)} points "
                      f"({Counter(p.method for p in out.points)}), dropped {dict(out.dropped)}, "
                      f"llm_error {out.llm_error}, {took[-1]:.1f}s", flush=True)
        finally:
            c.close()
    print(f"\n{len(asked)} requests, model {settings.llm_model}, {args.context_sentences} context sentences")
    print(f"points delivered: {dict(methods)}")
    print(f"LLM points dropped, by reason: {dict(dropped) or 'none'}")
    print(f"seconds per request: median {sorted(took)[len(took) // 2]:.1f}, max {max(took):.1f}")
    print(f"delivered points the checker flags: {len(flagged)}")
    for item in flagged:
        print("  ", item)
    if args.out is not None:
        args.out.write_text(json.dumps({"answers": answers, "dropped": dropped, "methods": methods,
                                        "flagged": flagged}, ensure_ascii=False, indent=1), encoding="utf-8")
    return 1 if flagged else 0


if __name__ == "__main__":
    sys.exit(main())
