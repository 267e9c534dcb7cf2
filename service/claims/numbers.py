"""Numbers in a claim or a source, read the same way in both languages: value, unit and the statistic they belong to.

"3.1%", "3.1 %" and "3.1 per cent" are one number; "14,200例" and "14,200 patients" are one value; the 1 of
"GLP-1", the 2 of "CHA2DS2" and the 790 of "T790M" belong to names, not claims, and are not read. A ratio with
its interval ("HR 0.81; 95% CI 0.71-0.93") is read as one statistic, so a check can ask whether the interval
excludes 1.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# a number: thousands separators, decimals; not the tail of a name (letters or "letter-" before it) nor of another
# number ("14,200"; a full-width comma between Chinese words is a comma after NFKC, and is no separator)
_NUMBER = re.compile(r"(?<![A-Za-z\d.])(?<!\d,)(?<![A-Za-z]-)(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?![\d])")
_UNITS: list[tuple[str, str]] = [
    (r"\s*(?:%|per ?cent|个百分点|percentage points?)", "percent"),
    (r"\s*(?:mg|毫克|g\b|克|μg|mcg)", "mass"),
    (r"\s*(?:kg|公斤|千克)", "weight"),
    (r"\s*(?:ml/min|mmol/l|mg/dl)", "lab"),
    (r"\s*(?:years?|年)", "years"),
    (r"\s*(?:months?|个月|月)", "months"),
    (r"\s*(?:weeks?|周)", "weeks"),
    (r"\s*(?:days?|天|日)", "days"),
    (r"\s*(?:hours?|小时|h\b)", "hours"),
    (r"\s*(?:例|patients|participants|adults|subjects|名)", "count"),
    (r"\s*(?:元|yuan|rmb)", "money"),
]
_UNIT = [(re.compile(p, re.IGNORECASE), unit) for p, unit in _UNITS]
_LETTER_AFTER = re.compile(r"[A-Za-z]")
_CI = re.compile(r"(?:95\s*%\s*)?(?:CI|置信区间|可信区间)[\s:：,，]*(\d+(?:\.\d+)?)\s*(?:-|–|—|~|to|至|,|，)\s*"
                 r"(\d+(?:\.\d+)?)", re.IGNORECASE)
_P = re.compile(r"\bp\s*(<|=|≤|>|≥)\s*(0?\.\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class Number:
    value: float
    unit: str | None  # a unit class ("percent", "mass", "months"...) or None
    text: str
    start: int
    end: int

    def matches(self, other: Number) -> bool:
        """The same value, and units that agree where both have one."""
        return abs(self.value - other.value) < 1e-9 and (self.unit is None or other.unit is None
                                                          or self.unit == other.unit)


@dataclass(frozen=True)
class Ratio:
    """A ratio statistic (HR, OR, RR) with its interval when one is given."""

    name: str
    value: float
    low: float | None = None
    high: float | None = None

    @property
    def direction(self) -> str | None:
        """lower or higher when the interval excludes 1, similar when it holds 1, None without an interval."""
        if self.low is None or self.high is None:
            return None
        if self.high < 1:
            return "lower"
        if self.low > 1:
            return "higher"
        return "similar"


def normalise(text: str) -> str:
    """Full-width digits and signs to ASCII (NFKC), so "３．１％" reads as "3.1%"."""
    return unicodedata.normalize("NFKC", text)


def numbers(text: str) -> list[Number]:
    text = normalise(text)
    out = []
    for m in _NUMBER.finditer(text):
        end = m.end()
        rest = text[end:end + 24]
        unit = None
        for pattern, name in _UNIT:
            u = pattern.match(rest)
            if u:
                unit, end = name, end + u.end()
                break
        if unit is None and _LETTER_AFTER.match(rest[:1]):
            continue  # "3A4", "19del": part of a name
        value = float(m.group(1).replace(",", "") + (m.group(2) or ""))
        out.append(Number(value, unit, text[m.start():end], m.start(), end))
    return out


def ratios(text: str, names: list[str]) -> list[Ratio]:
    """Each named ratio with the interval that follows it in the same sentence, if any."""
    text = normalise(text)
    alternation = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    pattern = re.compile(rf"(?<![A-Za-z])({alternation})(?![A-Za-z])\s*[=:：]?\s*(\d+(?:\.\d+)?)", re.IGNORECASE)
    out = []
    for m in pattern.finditer(text):
        ci = _CI.search(text, m.end(), m.end() + 60)
        low, high = (float(ci.group(1)), float(ci.group(2))) if ci else (None, None)
        out.append(Ratio(m.group(1), float(m.group(2)), low, high))
    return out


def p_significant(text: str) -> bool | None:
    """True for p < 0.05 (or ≤), False for p ≥ 0.05, None without a p value."""
    m = _P.search(normalise(text))
    if not m:
        return None
    op, value = m.group(1), float(m.group(2))
    if op in ("<", "≤", "="):
        return value < 0.05 or (op != "=" and value <= 0.05)
    return False
