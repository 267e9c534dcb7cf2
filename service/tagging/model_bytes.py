"""Fitted heads and calibration as bytes that load without running code: skops' format, read with an allow-list.

They were joblib (pickle) bytes in ``model_generations``: whoever could write one row could run code in every
replica that loaded it. skops stores the object tree as JSON plus numpy arrays and rebuilds only the types it is
told to trust: scikit-learn's estimators, numpy and scipy arrays (trusted by skops itself), and the project's own
head and calibrator classes and the one analyzer function the TF-IDF vectorizers call, listed below. Bytes that
name anything else are refused, and so are joblib bytes from before: the tagger then runs without learned heads
until the next retrain, as it does on a new taxonomy. A generation's SHA-256 is still checked before these bytes
are read (``service.store.generations``)."""

from __future__ import annotations

import zipfile
from typing import Any

import skops.io as sio

# the classes the project's fitted objects are made of (their taxonomy is attached again on load, not stored)
TRUSTED = [
    "service.tagging.calibration.Calibrator",
    "service.tagging.context.ContextHead",
    "service.tagging.examples.ExampleBank",
    "service.tagging.learned.LearnedHeads",
    "service.tagging.learned._DimensionHead",
    "service.tagging.lexical.LexicalHeads",
    "service.tagging.lexical._DimensionHead",
    "service.tagging.lexical.analyze",
    "builtins.set",
    "sklearn.svm._classes.LinearSVC",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.feature_extraction.text.TfidfVectorizer",
    "sklearn.feature_extraction.text.TfidfTransformer",
]


class UnreadableModel(ValueError):
    """Bytes that are not a model this release can read safely."""


def dumps(obj: Any) -> bytes:
    # deflated: the vectorizers' vocabularies are JSON text, ten times their pickled size stored as is
    return bytes(sio.dumps(obj, compression=zipfile.ZIP_DEFLATED))


def loads(raw: bytes) -> Any:
    """The object in ``raw``; ``UnreadableModel`` for bytes of another format, or naming a type not trusted."""
    try:
        return sio.loads(raw, trusted=TRUSTED)
    except Exception as exc:  # not a skops file (joblib bytes from before), or an untrusted type: nothing ran
        raise UnreadableModel(f"{type(exc).__name__}: {str(exc)[:300]}") from exc
