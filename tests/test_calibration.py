"""Calibration learns from labelled examples: how signals map to probabilities, and how far to trust the LLM."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from service.core.taxonomy import load_taxonomy
from service.tagging.calibration import Calibrator, Example

ROOT = Path(__file__).resolve().parent.parent


def _examples(llm_accuracy: float, n: int = 120, seed: int = 3) -> tuple[list[Example], str, list[str]]:
    """Items of the HoC taxonomy whose weak embedding signal is a little informative and whose LLM choice is
    right with probability ``llm_accuracy``."""
    taxonomy = load_taxonomy(ROOT / "taxonomy" / "hoc.yaml")
    dim = taxonomy.dimensions[0]
    values = dim.value_ids
    rng = np.random.default_rng(seed)
    examples = []
    for _ in range(n):
        truth = {v for v in values if rng.random() < 0.2}
        signals = {dim.id: {v: (float(rng.normal(0.6 if v in truth else 0.0, 1.0)), 0, None) for v in values}}
        llm = {dim.id: {}}
        for v in values:
            says_yes = (v in truth) if rng.random() < llm_accuracy else (rng.random() < 0.5)
            llm[dim.id][v] = (True, 0.9 if says_yes else 0.0, says_yes)
        examples.append(Example(signals, {dim.id: truth}, llm))
    return examples, dim.id, values


def _prior(cal: Calibrator, dim: str, values: list[str], z: float) -> float | None:
    """The calibrated probability of the first value when its embedding z-score is ``z`` and its rivals' 0."""
    return cal.probability(dim, values[0], {v: (z if i == 0 else 0.0, 0, None) for i, v in enumerate(values)})


def test_the_calibrator_learns_to_trust_an_llm_that_is_right():
    examples, dim, values = _examples(llm_accuracy=0.95)
    cal = Calibrator.fit(load_taxonomy(ROOT / "taxonomy" / "hoc.yaml"), examples)
    assert dim in cal.models and dim in cal.thresholds and cal.llm_model is not None
    prior = _prior(cal, dim, values, 0.0)
    assert prior is not None
    chosen = cal.with_llm(dim, prior, (True, 0.9, True))
    passed_over = cal.with_llm(dim, prior, (True, 0.0, False))
    assert chosen is not None and passed_over is not None
    assert chosen > 0.8 and passed_over < 0.2


def test_the_calibrator_barely_moves_for_an_llm_that_guesses():
    examples, dim, values = _examples(llm_accuracy=0.0)
    cal = Calibrator.fit(load_taxonomy(ROOT / "taxonomy" / "hoc.yaml"), examples)
    prior = _prior(cal, dim, values, 0.0)
    assert prior is not None and cal.llm_model is not None
    chosen = cal.with_llm(dim, prior, (True, 0.9, True))
    passed_over = cal.with_llm(dim, prior, (True, 0.0, False))
    assert chosen is not None and passed_over is not None
    assert abs(chosen - passed_over) < 0.15


def test_without_llm_examples_there_is_no_llm_stage_and_the_prior_weights_apply():
    examples, dim, values = _examples(llm_accuracy=0.95)
    for e in examples:
        e.llm = None
    cal = Calibrator.fit(load_taxonomy(ROOT / "taxonomy" / "hoc.yaml"), examples)
    assert cal.llm_model is None and cal.with_llm(dim, 0.5, (True, 0.9, True)) is None
    # the prior still ranks a strong embedding signal above a weak one
    high, low = _prior(cal, dim, values, 2.0), _prior(cal, dim, values, -1.0)
    assert high is not None and low is not None and high > low


def test_a_saved_calibrator_loads_back_and_one_fitted_on_other_signals_is_refused(tmp_path):
    taxonomy = load_taxonomy(ROOT / "taxonomy" / "hoc.yaml")
    examples, dim, values = _examples(llm_accuracy=0.95)
    cal = Calibrator.fit(taxonomy, examples)
    path = tmp_path / "calibrator.joblib"
    cal.save(path)
    loaded = Calibrator.load(taxonomy, path)
    assert loaded is not None and _prior(loaded, dim, values, 1.0) == _prior(cal, dim, values, 1.0)
    cal.features = cal.features[:-1]  # as a release before the last signal wrote it: its columns would not line up
    cal.save(path)
    assert Calibrator.load(taxonomy, path) is None, "a stale calibrator means recalibrating, not wrong probabilities"
    assert Calibrator.load(load_taxonomy(ROOT / "taxonomy" / "chip-ctc.yaml"), path) is None
