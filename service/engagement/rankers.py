"""Rankers over a catalogue for doctors, fitted on interactions up to a moment. Each one is a small class with
`fit(history, catalogue, doctors, now)` and `score(users) -> users × items`; the evaluation runs them side by
side on one temporal split, and the service runs the one the evaluation chose (service/engagement/hybrid.py).

The simple ones are here because they are the baselines every learned ranker must beat: popularity (all time,
recent, within the doctor's segment), the matcher's tag channel fed the profile's top tags, a decayed
tag-affinity profile, and implicit-feedback ALS."""

from __future__ import annotations

from typing import Protocol

import numpy as np
from scipy import sparse

from service.engagement.interactions import Catalogue, Doctors, Interactions
from service.engagement.rules import EngagementRules


class Ranker(Protocol):
    name: str

    def fit(self, history: Interactions, catalogue: Catalogue, doctors: Doctors, now: float) -> None: ...

    def score(self, users: np.ndarray) -> np.ndarray: ...


def popularity(history: Interactions, n_items: int, now: float, window_days: float | None = None,
               users: np.ndarray | None = None) -> np.ndarray:
    """Each item's summed interest weight (within the window before `now`, among `users` when given)."""
    mask = history.weight > 0
    if window_days is not None:
        mask &= history.t >= now - window_days
    if users is not None:
        mask &= np.isin(history.user, users)
    return np.bincount(history.item[mask], weights=history.weight[mask], minlength=n_items)


def tag_affinity(history: Interactions, catalogue: Catalogue, n_users: int, now: float,
                 rules: EngagementRules) -> np.ndarray:
    """users × vocabulary: each doctor's decayed interest in each tag value, each dimension scaled to sum to 1 in
    absolute value (the profile: dismissals count against, old evidence fades at its dimension's half-life)."""
    affinity = np.zeros((n_users, len(catalogue.vocabulary)))
    age = now - history.t
    by_half_life: dict[float, list[int]] = {}
    for dim in catalogue.dimensions():
        by_half_life.setdefault(rules.half_life(dim), []).extend(catalogue.dimension_columns(dim).tolist())
    for half_life, cols in by_half_life.items():
        decayed = history.weight * np.power(0.5, np.clip(age, 0, None) / half_life)
        per_item = sparse.csr_matrix((decayed, (history.user, history.item)),
                                     shape=(n_users, len(catalogue.ids)))
        affinity[:, cols] = (per_item @ catalogue.tags[:, cols]).toarray()
    for dim in catalogue.dimensions():
        dim_cols = catalogue.dimension_columns(dim)
        norm = np.abs(affinity[:, dim_cols]).sum(axis=1, keepdims=True)
        affinity[:, dim_cols] /= np.where(norm > 0, norm, 1.0)
    return affinity


class GlobalPopularity:
    name = "popularity"

    def __init__(self, window_days: float | None = None, name: str | None = None) -> None:
        self.window_days = window_days
        self.name = name or self.name
        self._scores = np.zeros(0)

    def fit(self, history: Interactions, catalogue: Catalogue, doctors: Doctors, now: float) -> None:
        self._scores = popularity(history, len(catalogue.ids), now, self.window_days)

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.tile(self._scores, (len(users), 1))


def recent_popularity(days: float = 30) -> GlobalPopularity:
    return GlobalPopularity(days, "recent_popularity")


class SegmentPopularity:
    """Popularity among the doctors who share each of this doctor's attributes (department, title, tier…), each
    segment's list scaled to sum to 1 and the doctor's segments added; all-time popularity breaks ties."""

    name = "segment_popularity"

    def __init__(self, window_days: float | None = 30) -> None:
        self.window_days = window_days
        self._segments: dict[tuple[str, str], np.ndarray] = {}
        self._doctors: Doctors | None = None
        self._fallback = np.zeros(0)

    def fit(self, history: Interactions, catalogue: Catalogue, doctors: Doctors, now: float) -> None:
        n_items = len(catalogue.ids)
        self._doctors = doctors
        self._fallback = popularity(history, n_items, now, self.window_days)
        self._fallback = self._fallback / max(self._fallback.sum(), 1e-9)
        self._segments = {}
        for key, members in doctors.groups().items():
            pop = popularity(history, n_items, now, self.window_days, members)
            self._segments[key] = pop / max(pop.sum(), 1e-9)

    def score(self, users: np.ndarray) -> np.ndarray:
        assert self._doctors is not None
        out = np.tile(1e-3 * self._fallback, (len(users), 1))
        for row, u in enumerate(users):
            for key in self._doctors.attributes[u].items():
                if key in self._segments:
                    out[row] += self._segments[key]
        return out


class TagAffinity:
    """The decayed tag-affinity profile: an item scores the doctor's affinity for each of its tag values."""

    name = "tag_affinity"

    def __init__(self, rules: EngagementRules) -> None:
        self.rules = rules
        self._affinity = np.zeros((0, 0))
        self._tags: sparse.csr_matrix | None = None

    def fit(self, history: Interactions, catalogue: Catalogue, doctors: Doctors, now: float) -> None:
        self._affinity = tag_affinity(history, catalogue, len(doctors.ids), now, self.rules)
        self._tags = catalogue.tags

    def score(self, users: np.ndarray) -> np.ndarray:
        assert self._tags is not None
        return np.asarray(self._tags @ self._affinity[users].T).T


class ProfileMatcher:
    """Today's matcher fed the profile: the doctor's strongest value of each dimension (as a rep would type the
    need-tags) and items ranked by how many of those need-tags they carry, newer first among equals (the matcher's
    tag channel; it has no popularity)."""

    name = "matcher_profile"

    def __init__(self, rules: EngagementRules, min_share: float = 0.34, max_tags: int = 6) -> None:
        self.rules, self.min_share, self.max_tags = rules, min_share, max_tags
        self._need = np.zeros((0, 0))
        self._tags: sparse.csr_matrix | None = None
        self._newer = np.zeros(0)

    def fit(self, history: Interactions, catalogue: Catalogue, doctors: Doctors, now: float) -> None:
        affinity = tag_affinity(history, catalogue, len(doctors.ids), now, self.rules)
        need = np.zeros_like(affinity)
        for dim in catalogue.dimensions():
            cols = catalogue.dimension_columns(dim)
            best = affinity[:, cols].argmax(axis=1)
            strength = affinity[np.arange(len(affinity)), cols[best]]
            keep = strength >= self.min_share
            need[np.flatnonzero(keep), cols[best[keep]]] = strength[keep]
        # A rep names a handful of needs: the strongest `max_tags`.
        if need.shape[1] > self.max_tags:
            cut = -np.sort(-need, axis=1)[:, self.max_tags - 1:self.max_tags]
            need[need < cut] = 0
        self._need = (need > 0).astype(np.float64)
        self._tags = (catalogue.tags > 0).astype(np.float64).tocsr()
        published = np.nan_to_num(catalogue.published, nan=np.nanmin(catalogue.published)
                                  if np.isfinite(catalogue.published).any() else 0.0)
        span = max(float(published.max() - published.min()), 1.0)
        self._newer = 1e-3 * (published - published.min()) / span

    def score(self, users: np.ndarray) -> np.ndarray:
        assert self._tags is not None
        need = self._need[users]
        covered = np.asarray(self._tags @ need.T).T / np.maximum(need.sum(axis=1, keepdims=True), 1)
        return covered + self._newer


class ImplicitALS:
    """Implicit-feedback matrix factorisation (the `implicit` package), on BM25-weighted interest; a doctor or an
    item it never saw scores 0 everywhere."""

    name = "als"

    def __init__(self, factors: int = 48, regularization: float = 0.05, iterations: int = 20, seed: int = 0) -> None:
        self.params = {"factors": factors, "regularization": regularization, "iterations": iterations,
                       "random_state": seed}
        self._users = np.zeros((0, 0), dtype=np.float32)
        self._items = np.zeros((0, 0), dtype=np.float32)

    def fit(self, history: Interactions, catalogue: Catalogue, doctors: Doctors, now: float) -> None:
        from implicit.als import AlternatingLeastSquares
        from implicit.nearest_neighbours import bm25_weight
        from threadpoolctl import threadpool_limits

        matrix = history.positive().matrix(len(doctors.ids), len(catalogue.ids))
        weighted = bm25_weight(matrix, K1=100, B=0.8).tocsr().astype(np.float32)
        with threadpool_limits(1, "blas"):  # implicit's own threads do the work; BLAS threads only fight them
            model = AlternatingLeastSquares(**self.params, use_gpu=False)
            model.fit(weighted, show_progress=False)
        self._users = np.asarray(model.user_factors)
        self._items = np.asarray(model.item_factors)
        seen = np.asarray(matrix.sum(axis=1)).ravel() > 0
        self._users[~seen] = 0

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        factors = self._items if items is None else self._items[items]
        return self._users[users] @ factors.T

    def pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return np.einsum("ij,ij->i", self._users[users], self._items[items])
