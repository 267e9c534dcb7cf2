"""Decision policies: how the proposer's signals (and the LLM's answer, where it was asked) become tags.

A policy is chosen once per tagging mode, never per branch inside the decision:

- ``HandSetPolicy``: the prior before any reviewed examples exist (``Weights``, set on the sample set's scale).
- ``CalibratedPolicy``: the calibrator's stacked probability where a dimension has a fitted model, the
  hand-set prior where it has none.
- ``AskingPolicy``: one of those, plus which dimensions go to the LLM: every open one (``band=None``), or
  only those whose calibrated probability lies in the uncertain band (the cascade). Confident dimensions are
  decided without the LLM; dimensions read from metadata never reach it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from service.core.taxonomy import Dimension
from service.tagging.calibration import Calibrator, LLMSignal
from service.tagging.proposer import Signal

Probabilities = dict[str, float]  # value id -> probability


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def logit(p: float) -> float:
    p = min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


@dataclass
class Weights:
    """The prior before any reviewed examples calibrate it (hand-set on the sample set's scale)."""

    bias: float = -2.2
    embedding_z: float = 1.1
    keyword: float = 1.2  # per hit, up to three
    learned_share: float = 0.7  # weight of the embedding head's probability against the rest, when one exists
    llm_chosen: float = 3.0  # added to the logit, scaled by the LLM's confidence
    llm_not_chosen: float = -1.5
    unverified_quote: float = 0.4  # share of the LLM boost kept when its quote is not in the source


class HandSetPolicy:
    name = "hand-set"

    def __init__(self, weights: Weights | None = None, use_heads: bool = False) -> None:
        self.weights = weights or Weights()
        self.use_heads = use_heads

    def prior(self, dim: Dimension, signals: Mapping[str, Signal]) -> Probabilities:
        w = self.weights
        out: Probabilities = {}
        for value, s in signals.items():
            p = sigmoid(w.bias + w.embedding_z * s.embedding_z + w.keyword * min(s.keyword_hits, 3))
            if self.use_heads and s.embedding_head is not None:
                p = w.learned_share * s.embedding_head + (1 - w.learned_share) * p
            out[value] = p
        return out

    def threshold(self, dim: Dimension, llm_answered: bool) -> float:
        return 0.35 if dim.cardinality == "single" else 0.5

    def with_llm(self, dim: Dimension, prior: Probabilities, llm: Mapping[str, LLMSignal]) -> Probabilities:
        """The LLM's choice moves the prior's logit: up by its confidence when it chose the value (less when
        its quote was not found), down when it was offered the value and passed it over."""
        w = self.weights
        out: Probabilities = {}
        for value, p in prior.items():
            offered, conf, verified = llm.get(value, (False, 0.0, False))
            shift = 0.0
            if conf > 0:
                shift = w.llm_chosen * conf * (1.0 if verified else w.unverified_quote)
            elif offered:
                shift = w.llm_not_chosen
            out[value] = sigmoid(logit(p) + shift)
        return out

    def wants_llm(self, dim: Dimension, prior: Probabilities) -> bool:
        return False

    def calibrated(self, dim: Dimension) -> bool:
        """Whether ``dim``'s probabilities mean what they say (fitted on labelled examples): a hand-set prior's
        low probability is only the absence of evidence for a value, not evidence against it."""
        return False


class CalibratedPolicy(HandSetPolicy):
    name = "calibrated"

    def __init__(self, calibrator: Calibrator, weights: Weights | None = None) -> None:
        super().__init__(weights, use_heads=True)
        self.calibrator = calibrator

    def prior(self, dim: Dimension, signals: Mapping[str, Signal]) -> Probabilities:
        fitted = self.calibrator.probabilities(dim.id, signals)
        return fitted if fitted is not None else super().prior(dim, signals)

    def calibrated(self, dim: Dimension) -> bool:
        return dim.id in self.calibrator.models

    def threshold(self, dim: Dimension, llm_answered: bool) -> float:
        fitted = self.calibrator.llm_thresholds.get(dim.id) if llm_answered else None
        fitted = fitted if fitted is not None else self.calibrator.thresholds.get(dim.id)
        return fitted if fitted is not None else super().threshold(dim, llm_answered)

    def with_llm(self, dim: Dimension, prior: Probabilities, llm: Mapping[str, LLMSignal]) -> Probabilities:
        if self.calibrator.llm_model is None or dim.id not in self.calibrator.llm_thresholds:
            return super().with_llm(dim, prior, llm)
        out: Probabilities = {}
        for value, p in prior.items():
            q = self.calibrator.with_llm(dim.id, p, llm.get(value, (False, 0.0, False)))
            out[value] = p if q is None else q
        return out


class AskingPolicy:
    """A prior policy plus the LLM: every open dimension (``band`` None), or only the uncertain ones."""

    def __init__(self, base: HandSetPolicy, band: tuple[float, float] | None) -> None:
        self.base, self.band = base, band
        self.name = f"{base.name}+llm" if band is None else f"{base.name}+cascade[{band[0]:g},{band[1]:g}]"

    def prior(self, dim: Dimension, signals: Mapping[str, Signal]) -> Probabilities:
        return self.base.prior(dim, signals)

    def threshold(self, dim: Dimension, llm_answered: bool) -> float:
        return self.base.threshold(dim, llm_answered)

    def with_llm(self, dim: Dimension, prior: Probabilities, llm: Mapping[str, LLMSignal]) -> Probabilities:
        return self.base.with_llm(dim, prior, llm)

    def calibrated(self, dim: Dimension) -> bool:
        return self.base.calibrated(dim)

    def wants_llm(self, dim: Dimension, prior: Probabilities) -> bool:
        """Uncertain: a single-valued dimension whose best value, or a multi-valued one with any value, has a
        probability inside the band (outside it the calibrated prior is confident either way)."""
        if self.band is None:
            return True
        lo, hi = self.band
        if not prior:
            return False
        if dim.cardinality == "single":
            return lo <= max(prior.values()) < hi
        return any(lo <= p < hi for p in prior.values())


Policy = HandSetPolicy | AskingPolicy
