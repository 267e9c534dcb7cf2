"""The panel plan's rules as data (taxonomy/panel_rules.yaml): which channel carries which content format, and
how an HCP's priority is weighed. Checked against the active taxonomy before the first plan (and after a taxonomy
change), so a typo or a dropped value is named in the error instead of silently suggesting nothing."""

from __future__ import annotations

import math
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from service.core.taxonomy import Taxonomy
from service.matching.schemas import ChannelBasis


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DimensionDriver(_Strict):
    weight: float = Field(ge=0, le=1)
    values: dict[str, float]
    unknown: float = Field(0.5, ge=0, le=1)

    @model_validator(mode="after")
    def _scores_in_range(self) -> DimensionDriver:
        bad = {v: s for v, s in self.values.items() if not 0 <= s <= 1}
        if bad:
            raise ValueError(f"value scores must be 0–1: {bad}")
        return self


class PriorityRules(_Strict):
    relevance: float = Field(ge=0, le=1)
    dimensions: dict[str, DimensionDriver] = Field(default_factory=dict)
    not_personalised: float = Field(0.0, ge=0, le=1)

    @model_validator(mode="after")
    def _weights_sum_to_one(self) -> PriorityRules:
        total = self.relevance + sum(d.weight for d in self.dimensions.values())
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"the priority weights must sum to 1, not {total:g}")
        return self


class PanelRules(_Strict):
    channel_dimension: str
    channels: dict[str, list[str]] = Field(min_length=1)
    format_default_channel: dict[str, str]
    fallback_channel: str
    priority: PriorityRules

    @model_validator(mode="after")
    def _channels_known(self) -> PanelRules:
        unknown = sorted({*self.format_default_channel.values(), self.fallback_channel} - set(self.channels))
        if unknown:
            raise ValueError(f"format_default_channel / fallback_channel name channels not under channels: {unknown}")
        return self

    def check(self, taxonomy: Taxonomy) -> PanelRules:
        """Every dimension, value and format named here exists in ``taxonomy`` (ValueError naming the first that
        does not)."""
        if not taxonomy.has_dimension(self.channel_dimension):
            raise ValueError(f"channel_dimension {self.channel_dimension!r} is not in taxonomy {taxonomy.key}")
        channel_dim = taxonomy.dimension(self.channel_dimension)
        missing = sorted(set(self.channels) - set(channel_dim.value_ids))
        if missing:
            raise ValueError(f"channels {missing} are not values of {self.channel_dimension!r}")
        format_dim = taxonomy.metadata_dimension("format")
        if format_dim is None:
            raise ValueError(f"taxonomy {taxonomy.key} has no dimension read from the file format")
        formats = set(format_dim.value_ids)
        named = {f for fs in self.channels.values() for f in fs} | set(self.format_default_channel)
        if named - formats:
            raise ValueError(f"formats {sorted(named - formats)} are not values of the taxonomy's format dimension")
        for dim_id, driver in self.priority.dimensions.items():
            if not taxonomy.has_dimension(dim_id) or taxonomy.dimension(dim_id).applies_to == "content":
                raise ValueError(f"priority dimension {dim_id!r} is not a need dimension of {taxonomy.key}")
            unknown = sorted(set(driver.values) - set(taxonomy.dimension(dim_id).value_ids))
            if unknown:
                raise ValueError(f"priority values {unknown} are not values of {dim_id!r}")
        return self

    def channel(self, preferences: dict[str, float], format_value: str | None) -> tuple[str, ChannelBasis]:
        """The channel for an item of ``format_value`` to an HCP with these channel preferences (value →
        weight; empty when none is known or may be used): the most wanted one that carries the format."""
        wanted = sorted(preferences, key=lambda ch: (-preferences[ch], ch))
        for ch in wanted:
            if format_value in self.channels.get(ch, []):
                return ch, "preference"
        if wanted:
            return wanted[0], "preference_only"
        return self.format_default_channel.get(format_value or "", self.fallback_channel), "format"


def load_panel_rules(path: Path, taxonomy: Taxonomy) -> PanelRules:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return PanelRules.model_validate(data).check(taxonomy)

