"""The engagement rules as data (taxonomy/engagement.yaml): what each action is worth, how fast each kind of tag
fades, how long a sent piece rests, and the reasons a rep may give for a dismissal."""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from service.settings import PROJECT_ROOT

RULES_PATH = PROJECT_ROOT / "taxonomy" / "engagement.yaml"
ACTIONS = ("sent", "opened", "viewed", "clicked", "downloaded", "shared", "attended", "replied", "dismissed")
# The doctor's own actions that say they wanted the piece (a rep's `sent` and a `dismissed` do not).
POSITIVE = frozenset(ACTIONS) - {"sent", "dismissed"}


class EngagementRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    actions: dict[str, float]
    dwell_bonus: float = Field(1.0, ge=0)
    full_dwell_seconds: float = Field(120, gt=0)
    half_life_days: dict[str, float]
    fresh_days: float = Field(30, gt=0)
    cooldown_days: float = Field(14, ge=0)
    dismiss_reasons: dict[str, dict[str, str]] = Field(min_length=1)

    @model_validator(mode="after")
    def _complete(self) -> EngagementRules:
        missing = [a for a in ACTIONS if a not in self.actions]
        unknown = [a for a in self.actions if a not in ACTIONS]
        if missing or unknown:
            raise ValueError(f"actions must name exactly {', '.join(ACTIONS)} (missing {missing}, unknown {unknown})")
        if "default" not in self.half_life_days or min(self.half_life_days.values()) <= 0:
            raise ValueError("half_life_days needs a positive `default` and positive values")
        if "other" not in self.dismiss_reasons:
            raise ValueError("dismiss_reasons must include `other`")
        return self

    def weight(self, action: str, dwell_seconds: float | None = None) -> float:
        """How much one event says about the doctor's interest in its piece."""
        w = self.actions[action]
        if action == "viewed" and dwell_seconds:
            w += self.dwell_bonus * min(dwell_seconds / self.full_dwell_seconds, 1.0)
        return w

    def half_life(self, dimension: str) -> float:
        return self.half_life_days.get(dimension, self.half_life_days["default"])

    def decay(self, dimension: str, age_days: float) -> float:
        """The share of its weight that evidence `age_days` old still carries for this dimension."""
        return math.pow(0.5, max(age_days, 0.0) / self.half_life(dimension))


def load_rules(path: Path = RULES_PATH) -> EngagementRules:
    return EngagementRules.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


@lru_cache(maxsize=4)
def default_rules(path: Path = RULES_PATH) -> EngagementRules:
    return load_rules(path)
