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

from prunekit.surgery import validate as v
from prunekit.surgery.validate import PlanError

__all__ = ["PLAN_FORMAT", "PLAN_VERSION", "Cut", "Plan", "PlanError", "check_cut"]

PLAN_FORMAT = "prunekit.plan"
PLAN_VERSION = 1


@dataclass
class Cut:
    """Remove indices ``removed`` along ``dim`` of ``param`` (size ``size`` before)."""

    param: str
    dim: int
    size: int
    removed: list[int]


MAX_DIM, MAX_SIZE = 64, 2**62


def check_cut(cut: Cut, field: str) -> None:
    """``cut`` is well formed on its own: a name, a dim, a size and indices inside it, each
    once, leaving one index at least (PlanError naming ``field`` otherwise)."""
    v.string(cut.param, f"{field}.param")
    v.integer(cut.dim, f"{field}.dim", 0, MAX_DIM)
    v.integer(cut.size, f"{field}.size", 1, MAX_SIZE)
    removed = v.items(cut.removed, f"{field}.removed", v.integer)
    where = f"for {cut.param!r} dim {cut.dim} of size {cut.size}"
    bad = next((i for i in removed if not 0 <= i < cut.size), None)
    if bad is not None:
        raise PlanError(f"index {v.short(bad)} out of range {where}", field=f"{field}.removed")
    if len(set(removed)) != len(removed):
        v.indices(removed, f"{field}.removed")  # names the repeated index
    if len(removed) >= cut.size:
        raise PlanError(f"removes all {cut.size} indices {where}", field=f"{field}.removed")


def _cut(data: Any, field: str) -> Cut:
    d = v.record(data, field, ("param", "dim", "size", "removed"))
    cut = Cut(d["param"], d["dim"], d["size"], d["removed"])
    check_cut(cut, field)
    return cut


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
    def from_dict(cls, data: Any) -> Plan:
        """Inverse of :meth:`to_dict`; :class:`PlanError` (a ValueError) naming the field
        on anything else: every value is checked for type and range (indices inside the
        recorded size, no index twice, one index left at least)."""
        if not isinstance(data, dict) or data.get("format") != PLAN_FORMAT:
            raise PlanError(f"not a prunekit plan (format must be {PLAN_FORMAT!r})",
                            field="format")
        if data.get("version") != PLAN_VERSION or isinstance(data.get("version"), bool):
            raise PlanError(f"unsupported plan version {str(data.get('version'))[:20]!r}; "
                            f"this prunekit reads version {PLAN_VERSION}", field="version")
        v.record(data, "", ("format", "version"), ("groups", "cuts", "attrs", "config",
                                                  "notes"))
        return cls(v.mapping(data.get("groups", {}), "groups", v.indices),
                   v.items(data.get("cuts", []), "cuts", _cut),
                   v.mapping(data.get("attrs", {}), "attrs",
                             lambda a, f: v.mapping(a, f, v.plain_size, dotted=True)),
                   v.mapping(data.get("config", {}), "config", v.plain_size),
                   v.strings(data.get("notes", []), "notes"))

    def to_json(self, indent: int | None = 1) -> str:
        """JSON text (see :meth:`to_dict`)."""
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_json(cls, text: str | bytes) -> Plan:
        """Parse JSON text written by :meth:`to_json` (:class:`PlanError` otherwise)."""
        return cls.from_dict(v.parse_json(text))

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
