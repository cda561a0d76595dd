"""A pruning plan: plain, versioned, JSON-serializable data.

A plan records which channels of which group were removed *and* what that did to the
model (the index cuts per parameter and the attribute values that changed), so that
:func:`prunekit.surgery.apply_plan` can replay it on a freshly built model without
example inputs or tracing.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

PLAN_FORMAT = "prunekit.plan"
PLAN_VERSION = 1


@dataclass
class Cut:
    """Remove indices ``removed`` along ``dim`` of ``param`` (size ``size`` before)."""

    param: str
    dim: int
    size: int
    removed: list[int]


@dataclass
class Plan:
    """What one or more surgeries removed.

    Attributes
    ----------
    groups : dict
        ``{group_id: removed channel indices}``.
    cuts : list of Cut
        Index cuts in application order (later cuts index the already-cut tensor).
    attrs : dict
        ``{module_name: {attribute: new value}}`` (in/out channels, num_heads, ...).
    config : dict
        Hugging Face config fields set on the model's config object(s).
    notes : list of str
        What surgery decided on the user's behalf (e.g. a config field left unchanged
        because layers differ).
    """

    groups: dict[str, list[int]] = field(default_factory=dict)
    cuts: list[Cut] = field(default_factory=list)
    attrs: dict[str, dict[str, Any]] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain data with a format tag and version."""
        data = asdict(self)
        return {"format": PLAN_FORMAT, "version": PLAN_VERSION, **data}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        """Inverse of :meth:`to_dict`; raises ValueError on anything else."""
        if not isinstance(data, dict) or data.get("format") != PLAN_FORMAT:
            raise ValueError("not a prunekit plan (missing format tag 'prunekit.plan')")
        if data.get("version") != PLAN_VERSION:
            raise ValueError(f"unsupported plan version {data.get('version')!r}; "
                             f"this prunekit reads version {PLAN_VERSION}")
        try:
            cuts = [Cut(str(c["param"]), int(c["dim"]), int(c["size"]),
                        [int(i) for i in c["removed"]]) for c in data.get("cuts", [])]
            groups = {str(k): [int(i) for i in v] for k, v in data.get("groups", {}).items()}
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"malformed plan: {err}") from err
        return cls(groups, cuts, dict(data.get("attrs", {})), dict(data.get("config", {})),
                   list(data.get("notes", [])))

    def to_json(self, indent: int | None = 1) -> str:
        """JSON text (see :meth:`to_dict`)."""
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_json(cls, text: str) -> Plan:
        """Parse JSON text written by :meth:`to_json`."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"plan is not valid JSON: {err}") from err
        return cls.from_dict(data)

    def then(self, other: Plan) -> Plan:
        """This plan followed by ``other`` (for models pruned more than once)."""
        groups = dict(self.groups)
        for gid, removed in other.groups.items():
            key, k = gid, 1
            while key in groups:
                k += 1
                key = f"{gid}@{k}"
            groups[key] = removed
        attrs = {m: dict(a) for m, a in self.attrs.items()}
        for m, a in other.attrs.items():
            attrs.setdefault(m, {}).update(a)
        return Plan(groups, self.cuts + other.cuts, attrs, {**self.config, **other.config},
                    self.notes + other.notes)

    @property
    def n_removed(self) -> int:
        """Total number of channels removed over all groups."""
        return sum(len(v) for v in self.groups.values())

    def __repr__(self) -> str:
        """Short summary (the full plan is data: ``to_json()``; thousands of indices
        would flood a terminal)."""
        cut = sum(bool(v) for v in self.groups.values())
        return (f"Plan({self.n_removed} channels removed in {cut} groups, "
                f"{len(self.cuts)} tensor cuts, {len(self.attrs)} modules changed"
                + (f", {len(self.notes)} notes" if self.notes else "") + ")")
