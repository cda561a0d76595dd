"""Save and load pruned models without pickle.

A saved model is a directory::

    path/
      manifest.json       {"format": "prunekit", "version": 1, ...}  (identifies our files)
      model.safetensors   the weights (tied weights stored once)
      plan.json           the pruning plan (plain JSON), replayed on load
      steps.json          (only when structures other than channels were pruned) every
                          plan in the order it was applied: channel plans and structure
                          plans (``{"structure": "depth", ...}``), replayed in that order

:func:`load` builds the *original* architecture with ``model_factory()``, replays the plan
(cuts and attribute values; no tracing, no example inputs) and loads the weights. Nothing
is unpickled, ever: weights come from safetensors and the plan is JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from prunekit.surgery.plan import Plan

FORMAT = "prunekit"
VERSION = 1
MANIFEST, WEIGHTS, PLAN = "manifest.json", "model.safetensors", "plan.json"


STEPS = "steps.json"


def _is_structure_plan(p: Any) -> bool:
    """A structure plan (depth, branch, ...): ``to_dict()`` with a ``"structure"`` tag."""
    return not isinstance(p, Plan) and callable(getattr(p, "to_dict", None)) \
        and isinstance(getattr(p, "structure", None), str)


def _steps(plan: Any) -> list[Any]:
    """``plan`` as an ordered list of Plans and structure plans (TypeError otherwise)."""
    if plan is None:
        return []
    items = list(plan) if isinstance(plan, Sequence) else [plan]
    for p in items:
        if not isinstance(p, Plan) and not _is_structure_plan(p):
            raise TypeError("plan must be a Plan, a structure plan (e.g. a DepthPlan), a "
                            f"sequence of those (applied in order) or None; got "
                            f"{type(p).__name__}")
    return items


def _combined(plan: Any) -> Plan:
    """The channel plans of ``plan`` merged into one (structure plans left out)."""
    out = Plan()
    for p in _steps(plan):
        if isinstance(p, Plan):
            out = out.then(p)
    return out


def _step_records(plan: Any) -> list[dict[str, Any]]:
    """JSON records of every step, consecutive channel plans merged."""
    records: list[dict[str, Any]] = []
    for p in _steps(plan):
        if isinstance(p, Plan):
            if records and records[-1]["structure"] == "channels":
                merged = Plan.from_dict(records[-1]["plan"]).then(p)
                records[-1]["plan"] = merged.to_dict()
            else:
                records.append({"structure": "channels", "plan": p.to_dict()})
        else:
            records.append({"structure": p.structure, "plan": p.to_dict()})
    return records


def save(model: nn.Module, path: str | Path, plan: Any = None) -> Path:
    """Write ``model``'s weights, ``plan`` and a manifest into directory ``path``.

    ``plan`` is what :func:`prunekit.prune` returned (``result.plans`` for a model cut
    in several structures, or several plans for a model pruned several times, in order):
    channel :class:`~prunekit.surgery.Plan` objects and structure plans (a
    :class:`~prunekit.structures.DepthPlan`, ...). Returns the directory path.
    """
    import torch
    from safetensors.torch import save_model

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    records = _step_records(plan)
    channels = _combined(plan)
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    save_model(model, str(out / WEIGHTS))
    (out / PLAN).write_text(channels.to_json())
    manifest = {"format": FORMAT, "version": VERSION, "weights": WEIGHTS, "plan": PLAN,
                "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
                "torch": torch.__version__, "channels_removed": channels.n_removed}
    if any(r["structure"] != "channels" for r in records):
        (out / STEPS).write_text(json.dumps(records, indent=1))
        manifest["steps"] = STEPS
        manifest["structures"] = [r["structure"] for r in records]
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return out


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest of a saved model; ValueError if ``path`` is not one of ours."""
    root = Path(path)
    file = root / MANIFEST
    if not root.is_dir() or not file.is_file():
        raise ValueError(f"{str(root)!r} is not a prunekit model directory (no {MANIFEST})")
    try:
        manifest = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{str(file)!r} is not a prunekit manifest: {err}") from err
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{str(file)!r} is not a prunekit manifest (format tag missing)")
    if manifest.get("version") != VERSION:
        raise ValueError(f"unsupported prunekit format version {manifest.get('version')!r}")
    return manifest


def load(path: str | Path, model_factory: Callable[[], nn.Module], strict: bool = True
         ) -> nn.Module:
    """Rebuild a model saved with :func:`save`.

    ``model_factory()`` must build the original (unpruned) architecture; its initial
    weights are discarded. Raises ValueError for directories that are not ours or plans
    that do not fit the model, TypeError when the factory returns no module.
    """
    from safetensors.torch import load_model

    from prunekit.surgery import apply_plan

    root = Path(path)
    manifest = read_manifest(root)
    model = model_factory()
    if not isinstance(model, nn.Module):
        raise TypeError(f"model_factory must return an nn.Module, got {type(model).__name__}")
    if "steps" in manifest:
        _replay(model, json.loads((root / manifest["steps"]).read_text()))
    else:
        apply_plan(model, Plan.from_json((root / manifest["plan"]).read_text()))
    missing, unexpected = load_model(model, str(root / manifest["weights"]), strict=False)
    if strict and (missing or unexpected):
        raise ValueError(f"weights do not match the model: missing {sorted(missing)[:5]}, "
                         f"unexpected {sorted(unexpected)[:5]}")
    return model


def _replay(model: nn.Module, records: list[dict[str, Any]]) -> None:
    """Apply saved steps in order: channel plans by surgery, the others by their
    registered structure's ``apply_plan`` (no example inputs: no tracing)."""
    from prunekit import structures
    from prunekit.surgery import apply_plan

    for i, rec in enumerate(records):
        if not isinstance(rec, dict) or "structure" not in rec or "plan" not in rec:
            raise ValueError(f"steps.json: step {i} is not a prunekit step record")
        if rec["structure"] == "channels":
            apply_plan(model, Plan.from_dict(rec["plan"]))
        else:
            structures.get(rec["structure"]).apply_plan(model, rec["plan"])
