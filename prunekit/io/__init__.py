"""Save and load pruned models without pickle, from folders that may come from anywhere.

A saved model is a directory::

    path/
      manifest.json       identifies our files, names the others (see prunekit.io.manifest)
      model.safetensors   the weights (tied weights stored once)
      plan.json           the channel plan (plain JSON), replayed on load
      steps.json          (only when structures other than channels were pruned) every
                          plan in the order it was applied, replayed in that order
      inputs.safetensors  (only when save() got example_inputs) the inputs and the
                          model's outputs on them, for the check that ends a load

:func:`load` builds the *original* architecture with ``model_factory()``, replays the
plans and loads the weights. Nothing is unpickled, ever; nothing outside the folder is
opened (file names are plain names, symbolic links are refused); every value read is
checked for type and range before it changes anything; every bad file raises one error
type, :class:`PlanError` (a ValueError) naming the file and the field.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import nn

from prunekit.io import steps as _steps
from prunekit.io.examples import INPUTS
from prunekit.io.folder import MIB, Folder
from prunekit.io.manifest import FORMAT, MANIFEST, VERSION, digest_of, read_manifest
from prunekit.surgery.validate import PlanError, parse_json

WEIGHTS, PLAN, STEPS = "model.safetensors", _steps.PLAN, _steps.STEPS
JSON_CAP = 512 * MIB  # plan.json / steps.json (a 70B model's channel plan is ~50 MB)
INPUTS_CAP = 256 * MIB  # example inputs are meant to be small

__all__ = ["FORMAT", "INPUTS", "MANIFEST", "PLAN", "STEPS", "VERSION", "WEIGHTS", "PlanError",
           "load", "read_manifest", "save"]


def save(model: nn.Module, path: str | Path, plan: Any = None,
         example_inputs: Any = None) -> Path:
    """Write ``model``'s weights, ``plan`` and a manifest into directory ``path``.

    ``plan`` is what :func:`prunekit.prune` returned (``result.plans`` for a model cut
    in several structures, or several plans for a model pruned several times, in order):
    channel :class:`~prunekit.surgery.Plan` objects and structure plans (a
    :class:`~prunekit.structures.DepthPlan`, ...). ``example_inputs`` (a tensor, a
    tuple/list of tensors or a dict of keyword tensors; small) are stored with the
    model's outputs on them, and :func:`load` then checks that the rebuilt model gives
    those outputs. The manifest records each file's SHA-256. Returns the directory path.
    """
    import torch
    from safetensors.torch import save_file, save_model

    from prunekit.io.examples import pack

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    records = _steps.records(plan)
    channels = _steps.combined(plan)
    checks = pack(model, example_inputs) if example_inputs is not None else None
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    folder = Folder(out)
    digests = {WEIGHTS: folder.write(WEIGHTS, lambda p: save_model(model, str(p))),
               PLAN: folder.write_bytes(PLAN, channels.to_json().encode())}
    manifest: dict[str, Any] = {
        "format": FORMAT, "version": VERSION, "weights": WEIGHTS, "plan": PLAN,
        "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
        "torch": torch.__version__, "channels_removed": channels.n_removed}
    if any(r["structure"] != "channels" for r in records):
        digests[STEPS] = folder.write_bytes(STEPS, json.dumps(records, indent=1).encode())
        manifest["steps"] = STEPS
        manifest["structures"] = [r["structure"] for r in records]
    if checks is not None:
        tensors, entry = checks
        digests[INPUTS] = folder.write(INPUTS, lambda p: save_file(tensors, str(p)))
        manifest["example_inputs"] = {"file": INPUTS, **entry}
    manifest["sha256"] = digests
    folder.write_bytes(MANIFEST, json.dumps(manifest, indent=1).encode())
    return out


def load(path: str | Path, model_factory: Callable[[], nn.Module], strict: bool = True,
         check: bool = True) -> nn.Module:
    """Rebuild a model saved with :func:`save`.

    ``model_factory()`` must build the original (unpruned) architecture; its initial
    weights are discarded. Every file is read and checked before the factory is called
    (manifest, plans, example inputs; digests where recorded); then the plans are
    replayed, the weights assigned and, when the folder holds example inputs and
    ``check`` is on, the model is run on them and must reproduce the saved outputs.

    Raises
    ------
    PlanError
        (a ValueError) for anything wrong with the folder or a plan that does not fit the
        model: the message names the file and field. Nothing outside the folder is read.
    TypeError
        When the factory returns something that is not an ``nn.Module``.
    Exception
        Whatever ``model_factory()`` itself raises, unchanged.

    On any failure the model the factory built is put back as it was built (so even a
    factory that returns a shared model finds it unchanged) and nothing is returned.
    """
    from prunekit.io.examples import check_outputs, unpack
    from prunekit.io.weights import load_weights
    from prunekit.surgery.state import transaction

    folder = Folder(path)
    manifest = read_manifest(folder)
    plan_file, steps = _read_steps(folder, manifest)
    listed = "steps" in manifest
    examples = None
    entry = manifest.get("example_inputs")
    if entry is not None and check:
        data = folder.read(entry["file"], INPUTS_CAP, digest_of(manifest, entry["file"]))
        examples = unpack(data, entry)
    weights = manifest["weights"]
    weights_path = folder.verify(weights, digest_of(manifest, weights))
    model = model_factory()
    if not isinstance(model, nn.Module):
        raise TypeError(f"model_factory must return an nn.Module, got {type(model).__name__}")
    with transaction(model):  # weights are assigned, not copied in: no value copies needed
        _steps.replay(model, steps, plan_file, listed)
        load_weights(model, weights_path, weights, strict)
        if examples is not None:
            check_outputs(model, *examples, where=entry["file"])
    return model


def _read_steps(folder: Folder, manifest: dict[str, Any]) -> tuple[str, list[_steps.Step]]:
    """The file the plans come from and its steps, parsed (PlanError naming the file)."""
    name = manifest.get("steps", manifest["plan"])
    try:
        data = parse_json(folder.read(name, JSON_CAP, digest_of(manifest, name)))
        if "steps" in manifest:
            return name, _steps.parse_steps(data)
        return name, [("channels", _steps.parse_plan(data))]
    except PlanError as err:
        raise err.located(name) from None
