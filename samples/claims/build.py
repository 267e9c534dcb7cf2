"""Write the claim checker's perturbation set from the sample content (seeded: the same files every run).

    .venv/bin/python samples/claims/build.py     # rewrites samples/claims/claims.jsonl and pieces.jsonl

Each claim is a sentence checked against the sample file it came from:
- faithful: a claim-bearing sentence as written (numbers, a comparison or a product), and the hand-written
  translations in translations.yaml (zh <-> en);
- altered_number, flipped_comparison, swapped_indication (the indication or the product), added_superlative: the
  same sentences, changed the way a careless or overreaching writer changes them.
Each piece is a whole approved file with an efficacy claim and a safety statement, as written (faithful) and with
every safety statement dropped (dropped_safety).

The perturbations are made by plain string edits here, independently of the checker's code; only the vocabulary
of comparisons, superlatives and safety words comes from taxonomy/claims.yaml, as any writer's would.
"""

from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from indexers.chunker import sentences  # noqa: E402
from indexers.reader import read_file  # noqa: E402
from indexers.sidecar import is_sidecar  # noqa: E402

CONTENT = ROOT / "samples" / "content"
SEED = 20261207
_CJK = re.compile(r"[\u3400-\u9fff]")
_NUM = re.compile(r"(?<![A-Za-z\d.,\-])\d+(?:\.\d+)?(?![\d.]*[A-Za-z]{1}\d)")
SUPERLATIVES = {
    "en": ["The best option: {s}", "{s} This makes {p} the safest choice.", "As the first and only such option, {s}"],
    "zh": ["{s}，疗效最佳。", "{p}是唯一的选择：{s}", "{s}（首个证实该获益的药物）"],
}


def zh(text: str) -> bool:
    return len(_CJK.findall(text)) > 0.2 * len(text)


def approved_files() -> list[tuple[str, object]]:
    out = []
    for path in sorted(CONTENT.rglob("*")):
        if not path.is_file() or is_sidecar(path) or path.suffix in (".jsonl", ".rss"):
            continue
        doc = read_file(path, CONTENT)
        if doc.meta.approval_status == "approved" and doc.source == "internal":
            out.append((doc.source_key, doc))
    return out


def claim_sentences(doc: object, names: list[str], flips: dict[str, dict[str, str]]) -> list[str]:
    seen, out = set(), []
    for block in doc.blocks:  # type: ignore[attr-defined]
        if block["kind"] == "notes":
            continue
        for s in sentences(block["text"]):
            s = s.strip()
            words = flips["zh" if zh(s) else "en"]
            bearing = _NUM.search(s) or any(w in s for w in words) or any(n in s for n in names)
            if bearing and len(s) >= 8 and s not in seen:
                seen.add(s)
                out.append(s)
    return out


def alter_number(s: str, reference: str, rng: random.Random) -> str | None:
    found = list(_NUM.finditer(s))
    rng.shuffle(found)
    present = set(_NUM.findall(reference))
    for m in found:
        old = m.group(0)
        for _ in range(20):
            if "." in old:
                whole, frac = old.split(".")
                new = f"{whole}.{frac[:-1]}{(int(frac[-1]) + rng.randint(1, 8)) % 10}"
            else:
                value = int(old)
                new = str(max(1, value + rng.choice([-1, 1]) * max(1, round(value * rng.uniform(0.15, 0.45)))))
            if new != old and new not in present:
                return s[:m.start()] + new + s[m.end():]
    return None


def flip(s: str, words: dict[str, str]) -> str | None:
    for old in sorted(words, key=len, reverse=True):
        pattern = re.compile(re.escape(old) if _CJK.search(old) else rf"\b{re.escape(old)}\b", re.IGNORECASE)
        m = pattern.search(s)
        if m:
            new = words[old]
            if m.group(0)[:1].isupper():
                new = new[:1].upper() + new[1:]
            return s[:m.start()] + new + s[m.end():]
    return None


def build() -> None:
    rng = random.Random(SEED)
    lexicon = yaml.safe_load((ROOT / "taxonomy" / "claims.yaml").read_text(encoding="utf-8"))
    taxonomy = yaml.safe_load((ROOT / "taxonomy" / "pharma.yaml").read_text(encoding="utf-8"))
    dims = {d["id"]: d for d in taxonomy["dimensions"]}
    products = [v for v in dims["product"]["values"] if v.get("approved_for")]
    def names(value: dict) -> dict[str, list[str]]:
        return {lang: [value["label"][lang], *value["synonyms"][lang]] for lang in ("en", "zh")}

    disease_names = {v["id"]: names(v) for v in dims["disease"]["values"]}
    product_names = {p["id"]: names(p) for p in products}
    all_names = [n for names in product_names.values() for ns in names.values() for n in ns]
    skip = set(lexicon.get("not_indications", []))
    claims: list[dict] = []
    pieces: list[dict] = []

    def add(kind: str, text: str, file: str, expect: list[str], original: str | None = None) -> None:
        claims.append({"id": f"c{len(claims) + 1:04d}", "kind": kind, "language": "zh" if zh(text) else "en",
                       "text": text, "reference": file, "expect": expect, "original": original})

    for key, doc in approved_files():
        text = doc.text  # type: ignore[attr-defined]
        for s in claim_sentences(doc, all_names, lexicon["flips"]):
            lang = "zh" if zh(s) else "en"
            add("faithful", s, key, [])
            altered = alter_number(s, text, rng)
            if altered:
                add("altered_number", altered, key, ["unsupported_number"], s)
            flipped = flip(s, lexicon["flips"][lang])
            if flipped:
                add("flipped_comparison", flipped, key, ["contradicts_source"], s)
            for pid, names in product_names.items():
                product = next((n for n in sorted(names[lang], key=len, reverse=True) if n in s), None)
                if product is None:
                    continue
                approved = next(p for p in products if p["id"] == pid)["approved_for"]["disease"]
                named = [(d, n) for d in approved for n in sorted(disease_names[d][lang], key=len, reverse=True)
                         if n not in skip and re.search(re.escape(n) if lang == "zh" else rf"\b{re.escape(n)}\b", s)]
                if not named:
                    continue
                _, name = named[0]
                other = rng.choice([d for d in disease_names if d not in approved and d != "obesity"])
                swapped = re.sub(re.escape(name), disease_names[other][lang][0], s, count=1)
                add("swapped_indication", swapped, key, ["off_label"], s)
                other_product = rng.choice([p for p in product_names if p != pid])
                if not set(approved) & {d for d in next(p for p in products if p["id"] == other_product)
                                        ["approved_for"]["disease"]}:
                    add("swapped_indication", s.replace(product, product_names[other_product][lang][0]), key,
                        ["off_label"], s)
            own = next((ns[lang][0] for ns in product_names.values() if any(n in text for n in ns[lang])),
                       "it" if lang == "en" else "本品")
            template = rng.choice(SUPERLATIVES[lang])
            body = s if lang == "en" else s.rstrip("。")
            add("added_superlative", template.format(s=body, p=own), key, ["unsupported_superlative"], s)
        kept = [s for b in doc.blocks if b["kind"] != "notes" for s in sentences(b["text"])]  # type: ignore[attr-defined]
        safety = [s for s in kept if any(re.search(p, s, re.IGNORECASE) for p in lexicon["safety"])]
        efficacy = [s for s in kept if s not in safety
                    and any(re.search(p, s, re.IGNORECASE) for label in ("lower", "higher", "superior")
                            for p in lexicon["directions"][label])]
        if safety and efficacy:
            pieces.append({"id": f"p{len(pieces) + 1:03d}", "kind": "faithful", "reference": key,
                           "sentences": kept, "expect": []})
            pieces.append({"id": f"p{len(pieces) + 1:03d}", "kind": "dropped_safety", "reference": key,
                           "sentences": [s for s in kept if s not in safety], "expect": ["missing_fair_balance"]})
    for item in yaml.safe_load((HERE / "translations.yaml").read_text(encoding="utf-8")):
        add("faithful_translated", item["text"], item["reference"], [])
    (HERE / "claims.jsonl").write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in claims),
                                       encoding="utf-8")
    (HERE / "pieces.jsonl").write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in pieces),
                                       encoding="utf-8")
    kinds: dict[str, int] = {}
    for c in claims:
        kinds[c["kind"]] = kinds.get(c["kind"], 0) + 1
    print(f"{len(claims)} claims {kinds}; {len(pieces)} pieces")


if __name__ == "__main__":
    build()
