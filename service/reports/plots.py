"""The report's charts as inline SVG (matplotlib, drawn on the server from the report's JSON): the page needs
no script and no network to show them, and text stays text (searchable, any font the browser has)."""

from __future__ import annotations

import io
import re
import threading
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from service.reports.schema import Comparison, Confusion, EvalReport, LearningCurve

BLUE, ORANGE, GREEN, RED, GREY = "#2f6db5", "#e8833a", "#3a9a5b", "#c8453c", "#8a8f98"
STYLE: dict[str, Any] = {"svg.fonttype": "none", "font.size": 9, "axes.spines.top": False, "axes.spines.right": False,
         "svg.hashsalt": "hcp-content"}  # hashsalt: the same report gives the same SVG ids
# pyplot's figure registry is global; one chart at a time keeps concurrent requests apart
_LOCK = threading.Lock()


def _svg(fig: Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    text = re.sub(r"^.*?(<svg\b)", r"\1", text, flags=re.S)  # drop the XML prolog and doctype
    return re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)


def _bars_by_dimension(report: EvalReport) -> str:
    dims = list(report.dimensions)
    fig, ax = plt.subplots(figsize=(9, 3.2))
    width = 0.27
    for k, (metric, colour) in enumerate((("precision", BLUE), ("recall", ORANGE), ("f1", GREEN))):
        values = [getattr(report.dimensions[d], metric) for d in dims]
        ax.bar([i + (k - 1) * width for i in range(len(dims))], values, width, label=metric, color=colour)
    ax.set_xticks(range(len(dims)), dims, rotation=30, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score")
    ax.legend(ncols=3, loc="lower right", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return _svg(fig)


def _confusion(dim: str, c: Confusion) -> str:
    n = len(c.labels)
    fig, ax = plt.subplots(figsize=(1.2 + 0.55 * n, 1.0 + 0.45 * n))
    ax.imshow(c.matrix, cmap="Blues")
    peak = max(max(row) for row in c.matrix) or 1
    for i, row in enumerate(c.matrix):
        for j, v in enumerate(row):
            ax.text(j, i, str(v), ha="center", va="center", color="white" if v > peak / 2 else "black")
    ax.set_xticks(range(n), c.labels, rotation=40, ha="right")
    ax.set_yticks(range(n), c.labels)
    ax.set_xlabel("proposed (most confident)")
    ax.set_ylabel("gold")
    ax.set_title(f"{dim} (accuracy {c.accuracy:.3f})")
    return _svg(fig)


def _reliability(report: EvalReport) -> str:
    bins = [b for b in report.reliability.bins if b.count]
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    ax.plot([0, 1], [0, 1], linestyle="--", color=GREY, label="perfectly calibrated")
    ax.bar([(b.lower + b.upper) / 2 for b in bins], [b.accuracy or 0.0 for b in bins], width=0.09,
           color=BLUE, alpha=0.8, label="accuracy per bin")
    ax.plot([b.confidence or 0.0 for b in bins], [b.accuracy or 0.0 for b in bins], marker="o", color=ORANGE,
            label="mean confidence → accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title(f"ECE {report.reliability.ece:.3f}")
    ax.legend(loc="upper left", frameon=False, fontsize=8)
    return _svg(fig)


def _precision_coverage(report: EvalReport) -> str:
    pts = report.thresholds
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    ax.plot([p.threshold for p in pts if p.precision is not None],
            [p.precision for p in pts if p.precision is not None], marker=".", color=BLUE, label="precision")
    ax.plot([p.threshold for p in pts], [p.coverage for p in pts], marker=".", color=ORANGE, label="coverage")
    ax.plot([p.threshold for p in pts], [p.recall for p in pts], marker=".", color=GREEN, label="recall")
    t = report.auto_accept.threshold
    ax.axvline(t, color=RED, linestyle=":", label=f"auto-accept at {t:g}")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("confidence threshold")
    ax.legend(loc="lower left", frameon=False, fontsize=8)
    return _svg(fig)


def _methods(report: EvalReport) -> str:
    methods = list(report.methods)
    fig, ax = plt.subplots(figsize=(4.6, 2.6))
    correct = [report.methods[m].correct for m in methods]
    wrong = [report.methods[m].count - report.methods[m].correct for m in methods]
    ax.barh(methods, correct, color=GREEN, label="right")
    ax.barh(methods, wrong, left=correct, color=RED, label="wrong")
    ax.invert_yaxis()
    ax.set_xlabel("proposed tags")
    ax.legend(loc="lower right", frameon=False)
    return _svg(fig)


def _acceptance(report: EvalReport) -> str:
    days = report.acceptance
    fig, ax = plt.subplots(figsize=(5.2, 2.8))
    ax.plot([d.day.isoformat() for d in days], [d.rate for d in days], marker="o", color=BLUE)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("accepted share")
    ax.tick_params(axis="x", rotation=30)
    return _svg(fig)


def _comparison(c: Comparison) -> str:
    dims = [d for d, v in c.dimensions.items() if v.f1_a is not None or v.f1_b is not None]
    fig, ax = plt.subplots(figsize=(9, 3.2))
    width = 0.4
    a = [c.dimensions[d].f1_a or 0.0 for d in dims]
    b = [c.dimensions[d].f1_b or 0.0 for d in dims]
    ax.bar([i - width / 2 for i in range(len(dims))], a, width, color=GREY, label=f"A: {c.a.label}")
    bars = ax.bar([i + width / 2 for i in range(len(dims))], b, width, color=BLUE, label=f"B: {c.b.label}")
    for bar, d in zip(bars, dims, strict=True):
        change = c.dimensions[d].change
        if change in ("better", "worse"):
            bar.set_color(GREEN if change == "better" else RED)
    ax.set_xticks(range(len(dims)), dims, rotation=30, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("F1")
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=8)
    return _svg(fig)


def charts(report: EvalReport) -> dict[str, str]:
    """Every chart of the report, by name, as an ``<svg>`` element's source."""
    with _LOCK, plt.rc_context(STYLE):  # type: ignore[arg-type]
        out = {"dimensions": _bars_by_dimension(report), "reliability": _reliability(report),
               "precision_coverage": _precision_coverage(report), "methods": _methods(report)}
        for dim, c in report.confusion.items():
            out[f"confusion:{dim}"] = _confusion(dim, c)
        if report.acceptance:
            out["acceptance"] = _acceptance(report)
        if report.comparison is not None:
            out["comparison"] = _comparison(report.comparison)
    if report.learning_curve is not None:
        out["learning_curve"] = learning_curve(report.learning_curve)
    return out


def learning_curve(curve: LearningCurve) -> str:
    """Macro-F1 (with the baseline's), ECE and auto-accept precision against the number of labelled examples."""
    pts = curve.points
    sizes = [p.size for p in pts]
    with _LOCK, plt.rc_context(STYLE):  # type: ignore[arg-type]
        fig, ax = plt.subplots(figsize=(6.4, 3.8))
        f1 = [p.macro_f1 for p in pts]
        sd = [p.macro_f1_sd for p in pts]
        ax.errorbar(sizes, f1, yerr=sd, marker="o", color=BLUE, capsize=3, label="macro-F1 (engine)")
        if any(p.baseline_macro_f1 is not None for p in pts):
            ax.plot([p.size for p in pts if p.baseline_macro_f1 is not None],
                    [p.baseline_macro_f1 for p in pts if p.baseline_macro_f1 is not None], marker="s",
                    linestyle="--", color=GREY, label="macro-F1 (TF-IDF + SVM)")
        ax.plot(sizes, [p.ece for p in pts], marker=".", color=ORANGE, label="ECE")
        prec = [(p.size, p.precision_at_threshold) for p in pts if p.precision_at_threshold is not None]
        if prec:
            ax.plot([s for s, _ in prec], [v for _, v in prec], marker="^", color=GREEN,
                    label=f"precision at {curve.threshold:g}")
        ax.set_xscale("log")
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("labelled examples (log scale)")
        ax.legend(loc="lower right", frameon=False, fontsize=8)
        return _svg(fig)
