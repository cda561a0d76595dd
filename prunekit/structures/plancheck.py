"""The part every structure plan's ``from_dict`` checks the same way: its tag and version.

Structure plans come back from ``steps.json`` files that may come from anywhere, so each
``from_dict`` checks every field for type and range (with the checkers of
:mod:`prunekit.surgery.validate`) and raises :class:`~prunekit.surgery.PlanError` naming
the field; ``apply_*_plan`` then checks the plan against the model before changing it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prunekit.surgery import validate as v
from prunekit.surgery.validate import PlanError


def check_header(data: Any, structure: str, version: int, required: Iterable[str],
                 optional: Iterable[str] = ()) -> dict[str, Any]:
    """``data`` as a ``structure`` plan dict of a version this prunekit reads, with the
    ``required`` fields and no unknown ones (``version`` filled in when absent)."""
    if not isinstance(data, dict) or data.get("structure") != structure:
        raise PlanError(f"not a {structure} plan (structure must be {structure!r})",
                        field="structure")
    d = v.record(data, "", required, (*optional, "structure", "version"))
    if v.integer(d.get("version", version), "version", 1) > version:
        raise PlanError(f"plan version {d['version']} is newer than {version}",
                        field="version")
    return {**d, "version": d.get("version", version)}


def check_surgery(data: Any, at: str) -> dict[str, Any]:
    """An embedded channel plan (a :class:`~prunekit.surgery.Plan` as a dict), checked
    in full; returned as the dict it was."""
    from prunekit.surgery.plan import Plan

    try:
        Plan.from_dict(data)
    except PlanError as err:
        raise err.located(prefix=at) from None
    return dict(data)
