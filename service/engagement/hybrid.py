"""The learned ranker: gradient-boosted trees over what every simple ranker knows about a (doctor, item) pair.

Why this shape (measured by `hcp-content eval recommend`, see docs/engagement.md): no single signal wins
everywhere. Recent and segment popularity carry the rep-driven bulk; the decayed tag affinity (per dimension) and
the segment's tag affinity (content tags × doctor attributes) carry doctors with little history and items nobody
has seen yet; ALS carries the collaborative signal for doctors with history. The trees learn when to trust which,
given how much the doctor and the item have been seen (log counts) and how old the item is.

It learns from the outcomes themselves: the signals are fitted on events up to `now - validation_days` and the
labels are what doctors did in the following `validation_days` (a piece they engaged with vs pieces they did not),
so the fit never sees the future it is judged on. Then the signals are refitted on everything up to `now`."""

from __future__ import annotations

import numpy as np
from scipy import sparse
from sklearn.ensemble import HistGradientBoostingClassifier

from service.engagement.interactions import Catalogue, Doctors, Interactions
from service.engagement.rankers import ImplicitALS, popularity, tag_affinity
from service.engagement.rules import EngagementRules

BLOCK = 256  # doctors per feature block: 256 × 5,000 items × ~20 features stays under 200 MB
MIN_PAIRS = 200  # fewer labelled pairs than this (a new install, a tiny test set) and the trees are not fitted


class Signals:
    """Every simple ranker's view of the (doctor, item) pairs, fitted on one history at one moment."""

    def __init__(self, rules: EngagementRules, recent_days: float = 30) -> None:
        self.rules, self.recent_days = rules, recent_days

    def fit(self, history: Interactions, catalogue: Catalogue, doctors: Doctors, now: float) -> Signals:
        n_users, n_items = len(doctors.ids), len(catalogue.ids)
        self.catalogue, self.doctors = catalogue, doctors
        self.dims = [catalogue.dimension_columns(d) for d in catalogue.dimensions()]
        self.affinity = tag_affinity(history, catalogue, n_users, now, self.rules)
        # Each attribute's segments, one feature each (the trees learn that department says more than tier): the
        # segment's taste (the mean profile of its doctors with history: what cardiologists read, for a
        # cardiologist with none) and its recent popularity.
        self.attributes = sorted({k for attrs in doctors.attributes for k in attrs})
        active = np.bincount(history.user, minlength=n_users) > 0
        recent = history.where(history.t >= now - self.recent_days)
        self.segments: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for key in self.attributes:
            values = sorted({a[key] for a in doctors.attributes if key in a})
            group_of = np.array([values.index(a[key]) if key in a else len(values) for a in doctors.attributes])
            taste = np.zeros((len(values) + 1, self.affinity.shape[1]))  # the last row: no value (zeros)
            pop = np.zeros((len(values) + 1, n_items))
            for g in range(len(values)):
                members = np.flatnonzero((group_of == g) & active)
                if len(members):
                    taste[g] = self.affinity[members].mean(axis=0)
                pop[g] = np.log1p(popularity(recent, n_items, now, None, np.flatnonzero(group_of == g)))
            self.segments[key] = (group_of, taste, pop)
        self.pop_all = np.log1p(popularity(history, n_items, now))
        self.pop_recent = np.log1p(popularity(history, n_items, now, self.recent_days))
        self.als = ImplicitALS()
        self.als.fit(history, catalogue, doctors, now)
        self.user_events = np.log1p(np.bincount(history.user, minlength=n_users))
        positive = history.positive()
        self.item_events = np.log1p(np.bincount(positive.item, minlength=n_items))
        # An item not yet published at `now` counts as brand new: a live ranker never sees how far ahead one is.
        self.age = np.clip(now - catalogue.published, 0, 720)
        recent_sent = history.where(history.sent & (history.t >= now - self.rules.cooldown_days))
        self.sent_recently = recent_sent.matrix(n_users, n_items, np.ones(len(recent_sent))).tocsr()
        return self

    def names(self) -> list[str]:
        return ([f"affinity:{d}" for d in self.catalogue.dimensions()] +
                [f"segment_affinity:{k}" for k in self.attributes] +
                [f"segment_popularity:{k}" for k in self.attributes] +
                ["popularity", "recent_popularity", "als", "doctor_events", "item_events", "item_age_days",
                 "sent_recently"])

    def fallback(self, features: np.ndarray) -> np.ndarray:
        """Before there is enough history to learn from: the doctor's and their segment's tag affinity plus the
        segment's recent popularity, each scaled to at most 1 (every weight equal: nothing was fitted)."""
        d, a = len(self.dims), len(self.attributes)
        parts = [features[:, :, :d].sum(axis=2), features[:, :, d:d + a].sum(axis=2),
                 features[:, :, d + a:d + 2 * a].sum(axis=2)]
        return np.sum([p / max(float(np.abs(p).max()), 1e-9) for p in parts], axis=0)

    def pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """pairs × features for (users[i], items[i]): what block() gives, for scattered pairs (a panel's
        suggestions) without the grid between them."""
        tags = self.catalogue.tags[items]
        columns = [np.asarray(tags[:, cols].multiply(self.affinity[users][:, cols]).sum(axis=1)).ravel()
                   for cols in self.dims]
        for key in self.attributes:
            group_of, taste, _ = self.segments[key]
            columns.append(np.asarray(tags.multiply(taste[group_of[users]]).sum(axis=1)).ravel())
        for key in self.attributes:
            group_of, _, pop = self.segments[key]
            columns.append(pop[group_of[users], items])
        columns += [self.pop_all[items], self.pop_recent[items], self.als.pairs(users, items),
                    self.user_events[users], self.item_events[items], self.age[items],
                    np.asarray(self.sent_recently[users, items]).ravel()]
        return np.stack(columns, axis=1).astype(np.float32)

    def block(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """users × items (all, or these item rows) × features."""
        pick = slice(None) if items is None else items
        tags = self.catalogue.tags[pick]
        n_items = tags.shape[0]
        planes = [np.asarray(tags[:, cols] @ self.affinity[users][:, cols].T).T for cols in self.dims]
        for key in self.attributes:
            group_of, taste, _ = self.segments[key]
            planes.append(np.asarray(tags @ taste[group_of[users]].T).T)
        for key in self.attributes:
            group_of, _, pop = self.segments[key]
            planes.append(pop[group_of[users]][:, pick])
        planes += [np.broadcast_to(self.pop_all[pick], (len(users), n_items)),
                   np.broadcast_to(self.pop_recent[pick], (len(users), n_items)),
                   self.als.score(users, items),
                   np.broadcast_to(self.user_events[users][:, None], (len(users), n_items)),
                   np.broadcast_to(self.item_events[pick], (len(users), n_items)),
                   np.broadcast_to(self.age[pick], (len(users), n_items)),
                   self.sent_recently[users][:, pick].toarray()]
        return np.stack(planes, axis=2).astype(np.float32)


class LearnedRanker:
    """The service's ranker (see the module's docstring)."""

    name = "learned"

    def __init__(self, rules: EngagementRules, validation_days: float = 14, negatives: int = 40,
                 max_training_doctors: int = 4000, seed: int = 0) -> None:
        self.rules, self.validation_days, self.negatives = rules, validation_days, negatives
        self.max_training_doctors, self.seed = max_training_doctors, seed
        self.model: HistGradientBoostingClassifier | None = None
        self.signals: Signals | None = None

    def fit(self, history: Interactions, catalogue: Catalogue, doctors: Doctors, now: float) -> None:
        rng = np.random.default_rng(self.seed)
        split = now - self.validation_days
        earlier = history.before(split)
        signals = Signals(self.rules).fit(earlier, catalogue, doctors, split)
        later = history.where((history.t >= split) & (history.weight > 0))
        seen = earlier.positive().matrix(len(doctors.ids), len(catalogue.ids)) > 0
        labelled = np.unique(later.user)
        if len(labelled) > self.max_training_doctors:
            labelled = np.sort(rng.choice(labelled, self.max_training_doctors, replace=False))
        target = sparse.csr_matrix((np.ones(len(later)), (later.user, later.item)),
                                   shape=seen.shape) > 0
        xs, ys = [], []
        for start in range(0, len(labelled), BLOCK):
            users = labelled[start:start + BLOCK]
            features = signals.block(users)
            for row, u in enumerate(users):
                positives = np.setdiff1d(target[u].indices, seen[u].indices)
                if not len(positives):
                    continue
                pool = np.setdiff1d(np.arange(len(catalogue.ids)), np.union1d(positives, seen[u].indices))
                negatives = rng.choice(pool, min(self.negatives, len(pool)), replace=False)
                xs.append(features[row, np.concatenate([positives, negatives])])
                ys.append(np.r_[np.ones(len(positives)), np.zeros(len(negatives))])
        self.signals = Signals(self.rules).fit(history, catalogue, doctors, now)
        labels = np.concatenate(ys) if ys else np.zeros(0)
        if len(labels) < MIN_PAIRS or labels.min() == labels.max():
            self.model = None  # too little history to learn from: the fallback below
            return
        model = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, max_leaf_nodes=31,
                                               l2_regularization=1.0, random_state=self.seed)
        model.fit(np.concatenate(xs), labels)
        self.model = model

    def score_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """The score of each (users[i], items[i])."""
        assert self.signals is not None
        features = self.signals.pairs(users, items)
        if self.model is None:
            return self.signals.fallback(features[None])[0]
        return np.asarray(self.model.decision_function(features))

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """users × items (all, or these item rows)."""
        assert self.signals is not None
        out = []
        for start in range(0, len(users), BLOCK):
            features = self.signals.block(users[start:start + BLOCK], items)
            if self.model is None:
                out.append(self.signals.fallback(features))
                continue
            flat = features.reshape(-1, features.shape[2])
            out.append(self.model.decision_function(flat).reshape(features.shape[:2]))
        width = len(self.signals.catalogue.ids) if items is None else len(items)
        return np.concatenate(out) if out else np.zeros((0, width))
