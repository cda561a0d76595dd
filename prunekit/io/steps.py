"""The plans of a saved model: written in order, parsed and replayed in that order.

``plan.json`` holds the channel plans merged into one; ``steps.json`` (only when
structures other than channels were cut) every plan in the order it was applied::

    [{"structure": "depth", "plan": {...}}, {"structure": "channels", "plan": {...}}]

Channel plans are parsed (and fully checked) before the model is built; a structure
plan is checked by its structure's ``from_dict`` when its turn comes, before it changes
anything. Every failure is a :class:`PlanError` naming the file and the step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from prunekit.surgery.plan import Plan
from prunekit.surgery.validate import PlanError, join, kind_of, record, string

PLAN, STEPS = "plan.json", "steps.json"
MAX_STEPS = 10_000
Step = tuple[str, Any]  # ("channels", Plan) or (structure name, its plan as a dict)


def is_structure_plan(p: Any) -> bool:
    """A structure plan (depth, branch, ...): ``to_dict()`` with a ``"structure"`` tag."""
    return not isinstance(p, Plan) and callable(getattr(p, "to_dict", None)) \
        and isinstance(getattr(p, "structure", None), str)


def as_list(plan: Any) -> list[Any]:
    """``plan`` as an ordered list of Plans and structure plans (TypeError otherwise)."""
    if plan is None:
        return []
    items = list(plan) if isinstance(plan, Sequence) else [plan]
    for p in items:
        if not isinstance(p, Plan) and not is_structure_plan(p):
            raise TypeError("plan must be a Plan, a structure plan (e.g. a DepthPlan), a "
                            f"sequence of those (applied in order) or None; got "
                            f"{type(p).__name__}")
    return items


def combined(plan: Any) -> Plan:
    """The channel plans of ``plan`` merged into one (structure plans left out)."""
    out = Plan()
    for p in as_list(plan):
        if isinstance(p, Plan):
            out = out.then(p)
    return out


def records(plan: Any) -> list[dict[str, Any]]:
    """JSON records of every step, consecutive channel plans merged."""
    out: list[dict[str, Any]] = []
    merged: Plan | None = None
    for p in as_list(plan):
        if isinstance(p, Plan):
            merged = p if merged is None else merged.then(p)
            if out and out[-1]["structure"] == "channels":
                out[-1]["plan"] = merged.to_dict()
            else:
                out.append({"structure": "channels", "plan": p.to_dict()})
        else:
            merged = None
            out.append({"structure": p.structure, "plan": p.to_dict()})
    return out


def parse_steps(data: Any) -> list[Step]:
    """``steps.json`` content as steps (channel plans parsed; PlanError naming the step)."""
    from prunekit import structures

    known = structures.available()
    if not isinstance(data, list):
        raise PlanError(f"expected a list of steps, got {kind_of(data)}")
    if len(data) > MAX_STEPS:
        raise PlanError(f"more than {MAX_STEPS} steps")
    steps = []
    for i, rec in enumerate(data):
        field = f"[{i}]"
        record(rec, field, ("structure", "plan"))
        name = string(rec["structure"], f"{field}.structure", max_len=100)
        if name not in known:
            raise PlanError(f"unknown structure {name[:60]!r}; known: {', '.join(known)}",
                            field=f"{field}.structure")
        if name == "channels":
            steps.append((name, parse_plan(rec["plan"], f"{field}.plan")))
        elif not isinstance(rec["plan"], dict):
            raise PlanError(f"expected an object, got {kind_of(rec['plan'])}",
                            field=f"{field}.plan")
        else:
            steps.append((name, rec["plan"]))
    return steps


def parse_plan(data: Any, field: str = "") -> Plan:
    try:
        return Plan.from_dict(data)
    except PlanError as err:
        raise err.located(prefix=field) from None


def replay(model: nn.Module, steps: list[Step], file: str, listed: bool) -> None:
    """Apply ``steps`` in order (no example inputs: no tracing). Any failure is a
    PlanError naming ``file`` and, when ``listed`` (a steps file), the step; the caller
    undoes what earlier steps did."""
    from prunekit import structures
    from prunekit.surgery import apply_plan

    for i, (name, plan) in enumerate(steps):
        step = f"[{i}]" if listed else ""
        try:
            if name == "channels":
                apply_plan(model, plan)
            else:
                structures.get(name).apply_plan(model, plan)
        except PlanError as err:
            raise err.located(file, join(step, "plan") if step else "") from None
        except Exception as err:
            raise PlanError(f"the {name} step does not fit this model ({type(err).__name__}: "
                            f"{str(err)[:300]})", file=file, field=step) from err
