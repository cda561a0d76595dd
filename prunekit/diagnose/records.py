"""What :func:`prunekit.diagnose.diagnose` returns: one record per layer and per group.

Plain dataclasses with a JSON round trip (``to_json`` / ``from_json``) and a rich table.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from prunekit.diagnose.similarity import SimilaritySummary

DIAGNOSIS_FORMAT = "prunekit.diagnosis"
DIAGNOSIS_VERSION = 1
_SIMS = ("weight_cosine", "weight_correlation", "act_cosine", "act_correlation")


@dataclass
class LayerRecord:
    """Redundancy measures of one conv/linear layer (``kind`` "conv"/"linear") or one
    graph group (``kind`` "group").

    ``source`` is the module whose output gave the activation measures (the layer itself;
    for a group the most downstream module carrying its channels, normally after the
    activation function), None when no activation was observed. ``erank`` is the
    effective rank of the activations, ``erank_ratio = erank / channels``, ``energy_rank``
    the number of singular values holding ``energy`` of the activation energy.
    ``dead`` / ``never_positive`` count channels with ``max|a| ≤ tol`` / ``max a ≤ tol``.
    """

    name: str
    kind: str
    channels: int
    weight_cosine: SimilaritySummary | None = None
    weight_correlation: SimilaritySummary | None = None
    act_cosine: SimilaritySummary | None = None
    act_correlation: SimilaritySummary | None = None
    erank: float | None = None
    energy_rank: int | None = None
    dead: int | None = None
    never_positive: int | None = None
    source: str | None = None
    rows: int = 0

    @property
    def erank_ratio(self) -> float | None:
        return None if self.erank is None or not self.channels else self.erank / self.channels

    @property
    def dead_fraction(self) -> float | None:
        return None if self.dead is None or not self.channels else self.dead / self.channels

    @property
    def never_positive_fraction(self) -> float | None:
        if self.never_positive is None or not self.channels:
            return None
        return self.never_positive / self.channels

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: getattr(self, k) for k in (
            "name", "kind", "channels", "erank", "energy_rank", "dead", "never_positive",
            "source", "rows")}
        for key in _SIMS:
            value = getattr(self, key)
            out[key] = None if value is None else value.to_dict()
        out["erank_ratio"] = self.erank_ratio
        out["dead_fraction"] = self.dead_fraction
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LayerRecord:
        data = {k: v for k, v in data.items() if k not in ("erank_ratio", "dead_fraction")}
        for key in _SIMS:
            if data.get(key) is not None:
                data[key] = SimilaritySummary.from_dict(data[key])
        return cls(**data)


@dataclass
class Diagnosis:
    """Per-layer and per-group redundancy records, the settings used, and notes."""

    layers: list[LayerRecord]
    groups: list[LayerRecord] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def records(self) -> list[LayerRecord]:
        return [*self.layers, *self.groups]

    def summary(self, kind: str = "layers") -> dict[str, float | None]:
        """Means over the ``"layers"`` or ``"groups"`` records (undefined values skipped):
        similarity (mean |S|), erank ratio and dead fraction; plus total dead channels."""
        recs = self.layers if kind == "layers" else self.groups
        out: dict[str, float | None] = {}
        for key in _SIMS:
            out[f"{key}_mean_abs"] = _mean(getattr(r, key).mean_abs for r in recs
                                           if getattr(r, key) is not None)
        out["erank_ratio"] = _mean(r.erank_ratio for r in recs)
        out["erank"] = _mean(r.erank for r in recs)
        out["dead_fraction"] = _mean(r.dead_fraction for r in recs)
        out["dead"] = float(sum(r.dead or 0 for r in recs))
        out["duplicates_weight"] = float(sum(r.weight_cosine.duplicates for r in recs
                                             if r.weight_cosine is not None))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"format": DIAGNOSIS_FORMAT, "version": DIAGNOSIS_VERSION,
                "config": self.config, "notes": list(self.notes),
                "layers": [r.to_dict() for r in self.layers],
                "groups": [r.to_dict() for r in self.groups]}

    def to_json(self, indent: int | None = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Diagnosis:
        if not isinstance(data, dict) or data.get("format") != DIAGNOSIS_FORMAT:
            raise ValueError("data is not a prunekit diagnosis (format tag missing)")
        return cls([LayerRecord.from_dict(r) for r in data.get("layers", [])],
                   [LayerRecord.from_dict(r) for r in data.get("groups", [])],
                   dict(data.get("config", {})), list(data.get("notes", [])))

    @classmethod
    def from_json(cls, text: str) -> Diagnosis:
        return cls.from_dict(json.loads(text))

    def table(self, kind: str = "all") -> Any:
        """A ``rich.table.Table`` with one row per record (``kind``: all/layers/groups)."""
        from rich.table import Table

        recs = {"all": self.records, "layers": self.layers, "groups": self.groups}.get(kind)
        if recs is None:
            raise ValueError(f"kind must be 'all', 'layers' or 'groups', got {kind!r}")
        table = Table(title="Redundancy diagnosis")
        for col in ("layer", "kind", "ch", "|cos| w", "|corr| w", "|cos| a", "|corr| a",
                    "dup w", "erank", "99% rank", "dead"):
            table.add_column(col, justify="left" if col in ("layer", "kind") else "right")
        for r in recs:
            table.add_row(*table_cells(r))
        return table


def table_cells(r: LayerRecord) -> list[str]:
    """The cells of one record's row (shared by the rich table and the HTML fragment)."""
    def sim(s: SimilaritySummary | None) -> str:
        return "—" if s is None or s.mean_abs is None else f"{s.mean_abs:.3f}"

    erank = "—" if r.erank is None else f"{r.erank:.1f} ({r.erank_ratio:.0%})"
    dead = "—" if r.dead is None else f"{r.dead}/{r.channels}"
    dup = "—" if r.weight_cosine is None else str(r.weight_cosine.duplicates)
    return [r.name, r.kind, str(r.channels), sim(r.weight_cosine), sim(r.weight_correlation),
            sim(r.act_cosine), sim(r.act_correlation), dup, erank,
            "—" if r.energy_rank is None else str(r.energy_rank), dead]


def _mean(values) -> float | None:
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return sum(vals) / len(vals) if vals else None
