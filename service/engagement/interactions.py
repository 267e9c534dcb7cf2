"""The arrays rankers learn from: a catalogue (items × dimension:value tags), the doctors (their static
attributes) and the interactions (who, what, how much it says, when). Built the same way from the service's tables
and from an evaluation folder, so the ranker the service runs is the ranker the evaluation measured."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

from service.engagement.rules import EngagementRules


@dataclass
class Catalogue:
    """Items and their tags. `tags` is items × vocabulary, each row's values of one dimension summing to 1 (a
    piece about two diseases says half as much about each), so no dimension outweighs another by its cardinality."""

    ids: list[str]
    vocabulary: list[tuple[str, str]]
    tags: sparse.csr_matrix
    published: np.ndarray  # days since the epoch; NaN where unknown
    index: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.index = {item: n for n, item in enumerate(self.ids)}

    @classmethod
    def build(cls, items: Sequence[tuple[str, Mapping[str, Sequence[str]], float | None]]) -> Catalogue:
        vocab: dict[tuple[str, str], int] = {}
        rows, cols, vals = [], [], []
        for n, (_, tags, _) in enumerate(items):
            for dim, values in tags.items():
                values = sorted(set(values))
                for value in values:
                    col = vocab.setdefault((dim, value), len(vocab))
                    rows.append(n)
                    cols.append(col)
                    vals.append(1.0 / len(values))
        matrix = sparse.csr_matrix((vals, (rows, cols)), shape=(len(items), len(vocab)), dtype=np.float32)
        published = np.array([np.nan if p is None else p for _, _, p in items], dtype=np.float64)
        return cls([i for i, _, _ in items], list(vocab), matrix, published)

    def dimensions(self) -> list[str]:
        return sorted({d for d, _ in self.vocabulary})

    def dimension_columns(self, dimension: str) -> np.ndarray:
        return np.array([n for n, (d, _) in enumerate(self.vocabulary) if d == dimension], dtype=np.int64)


@dataclass
class Doctors:
    ids: list[str]
    attributes: list[dict[str, str]]
    index: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.index = {d: n for n, d in enumerate(self.ids)}

    def groups(self) -> dict[tuple[str, str], np.ndarray]:
        """Each attribute value (department=cardiology, …) and the doctors who have it: the segments."""
        members: dict[tuple[str, str], list[int]] = {}
        for n, attrs in enumerate(self.attributes):
            for key, value in attrs.items():
                members.setdefault((key, value), []).append(n)
        return {k: np.array(v, dtype=np.int64) for k, v in members.items()}


@dataclass
class Interactions:
    """One row per event: doctor index, item index, its interest weight (negative for a dismissal, 0 for a rep's
    send), its time in days since the epoch, and whether it was a send or a dismissal."""

    user: np.ndarray
    item: np.ndarray
    weight: np.ndarray
    t: np.ndarray
    sent: np.ndarray
    dismissed: np.ndarray

    @classmethod
    def build(cls, rows: Iterable[tuple[int, int, str, float, float | None, float | None]],
              rules: EngagementRules) -> Interactions:
        """rows: (doctor index, item index, action, time in days, dwell seconds or None, explicit weight or None)."""
        u, i, w, t, s, d = [], [], [], [], [], []
        for user, item, action, when, dwell, weight in rows:
            u.append(user)
            i.append(item)
            w.append(rules.weight(action, dwell) if weight is None else weight)
            t.append(when)
            s.append(action == "sent")
            d.append(action == "dismissed")
        return cls(np.array(u, dtype=np.int64), np.array(i, dtype=np.int64), np.array(w, dtype=np.float64),
                   np.array(t, dtype=np.float64), np.array(s, dtype=bool), np.array(d, dtype=bool))

    def __len__(self) -> int:
        return len(self.user)

    def where(self, mask: np.ndarray) -> Interactions:
        return Interactions(self.user[mask], self.item[mask], self.weight[mask], self.t[mask], self.sent[mask],
                            self.dismissed[mask])

    def before(self, t: float) -> Interactions:
        return self.where(self.t < t)

    def positive(self) -> Interactions:
        return self.where(self.weight > 0)

    def matrix(self, n_users: int, n_items: int, weights: np.ndarray | None = None) -> sparse.csr_matrix:
        """users × items, summing each pair's weights (the given ones, or the positive interest weights)."""
        w = np.clip(self.weight, 0, None) if weights is None else weights
        return sparse.csr_matrix((w, (self.user, self.item)), shape=(n_users, n_items), dtype=np.float64)
