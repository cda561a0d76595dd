"""Save and load pruned models without pickle.

A saved model is a directory::

    path/
      manifest.json       {"format": "prunekit", "version": 1, ...}  (identifies our files)
      model.safetensors   the weights (tied weights stored once)
      plan.json           the pruning plan (plain JSON), replayed on load

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


def _combined(plan: Plan | Sequence[Plan] | None) -> Plan:
    if plan is None:
        return Plan()
    if isinstance(plan, Plan):
        return plan
    if not isinstance(plan, Sequence) or not all(isinstance(p, Plan) for p in plan):
        raise TypeError("plan must be a Plan, a sequence of Plans (applied in order) or None")
    out = Plan()
    for p in plan:
        out = out.then(p)
    return out


def save(model: nn.Module, path: str | Path, plan: Plan | Sequence[Plan] | None = None) -> Path:
    """Write ``model``'s weights, ``plan`` and a manifest into directory ``path``.

    ``plan`` is what :func:`prunekit.prune` returned (several plans for a model pruned
    several times, in order). Returns the directory path.
    """
    import torch
    from safetensors.torch import save_model

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    plan = _combined(plan)
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    save_model(model, str(out / WEIGHTS))
    (out / PLAN).write_text(plan.to_json())
    manifest = {"format": FORMAT, "version": VERSION, "weights": WEIGHTS, "plan": PLAN,
                "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
                "torch": torch.__version__, "channels_removed": plan.n_removed}
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
    plan = Plan.from_json((root / manifest["plan"]).read_text())
    model = model_factory()
    if not isinstance(model, nn.Module):
        raise TypeError(f"model_factory must return an nn.Module, got {type(model).__name__}")
    apply_plan(model, plan)
    missing, unexpected = load_model(model, str(root / manifest["weights"]), strict=False)
    if strict and (missing or unexpected):
        raise ValueError(f"weights do not match the model: missing {sorted(missing)[:5]}, "
                         f"unexpected {sorted(unexpected)[:5]}")
    return model
