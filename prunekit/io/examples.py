"""Example inputs saved beside a model, and the check that ends a load.

``save(..., example_inputs=x)`` stores ``x`` (a tensor, a tuple/list of tensors, or a
dict of tensors for keyword inputs) and the model's outputs on it in
``inputs.safetensors`` (``input.<name>``, ``output.<i>``). ``load`` runs the rebuilt
model on the same inputs and requires the same output shapes and values within
:data:`RTOL` of the largest output magnitude (float rounding differs between machines,
thread counts and devices; a wrong plan or weight differs by far more).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from prunekit.graph.trace import call_model, iter_tensors
from prunekit.surgery.validate import PlanError

INPUTS = "inputs.safetensors"
RTOL = {torch.float16: 2e-2, torch.bfloat16: 2e-2}
DEFAULT_RTOL = 1e-3


@contextmanager
def evaluating(model: nn.Module) -> Iterator[None]:
    """Eval mode under ``no_grad``; every module's mode restored afterwards."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for m, mode in modes:
            m.training = mode


def pack(model: nn.Module, example_inputs: Any) -> tuple[dict[str, torch.Tensor], dict]:
    """The tensors to store and the manifest entry (without ``file``) for
    ``example_inputs``; the model's outputs on them are computed here (eval, no_grad)."""
    kind, named = _named(example_inputs)
    with evaluating(model):
        outputs = list(iter_tensors(call_model(model, example_inputs)))
    tensors = {f"input.{k}": _plain(t) for k, t in named.items()}
    tensors.update({f"output.{i}": _plain(t) for i, t in enumerate(outputs)})
    return tensors, {"kind": kind, "names": list(named), "outputs": len(outputs)}


def _named(example_inputs: Any) -> tuple[str, dict[str, torch.Tensor]]:
    if isinstance(example_inputs, torch.Tensor):
        return "tensor", {"0": example_inputs}
    if isinstance(example_inputs, tuple | list) and all(
            isinstance(t, torch.Tensor) for t in example_inputs):
        return "args", {str(i): t for i, t in enumerate(example_inputs)}
    if isinstance(example_inputs, dict) and all(
            isinstance(k, str) and isinstance(t, torch.Tensor)
            for k, t in example_inputs.items()):
        return "kwargs", dict(example_inputs)
    raise TypeError("example_inputs must be a tensor, a tuple/list of tensors or a dict of "
                    f"tensors (keyword inputs), got {type(example_inputs).__name__}")


def _plain(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu").contiguous().clone()


def unpack(data: bytes, entry: dict[str, Any]) -> tuple[Any, list[torch.Tensor]]:
    """The inputs (in the structure they were given) and the saved outputs."""
    from safetensors.torch import load

    try:
        tensors = load(data)
    except Exception as err:  # SafetensorError and friends: a damaged file
        raise PlanError(f"not a valid safetensors file ({str(err)[:200]})", file=INPUTS
                        ) from None
    names, n_out = entry["names"], entry["outputs"]
    wanted = {f"input.{k}" for k in names} | {f"output.{i}" for i in range(n_out)}
    if set(tensors) != wanted:
        odd = sorted(set(tensors) ^ wanted)[:5]
        raise PlanError(f"tensors do not match manifest.json's example_inputs: {odd}",
                        file=INPUTS)
    inputs = [tensors[f"input.{k}"] for k in names]
    structured: Any = {"tensor": lambda: inputs[0], "args": lambda: tuple(inputs),
                       "kwargs": lambda: dict(zip(names, inputs, strict=True))}[entry["kind"]]()
    return structured, [tensors[f"output.{i}"] for i in range(n_out)]


def _device(model: nn.Module) -> torch.device:
    for t in (*model.parameters(), *model.buffers()):
        return t.device
    return torch.device("cpu")


def check_outputs(model: nn.Module, inputs: Any, expected: list[torch.Tensor],
                  where: str) -> None:
    """Run ``model`` on ``inputs``: PlanError (naming ``where``) if it fails or its
    outputs differ from ``expected`` in number, shape or value."""
    dev = _device(model)
    if isinstance(inputs, dict):
        inputs = {k: t.to(dev) for k, t in inputs.items()}
    elif isinstance(inputs, tuple):
        inputs = tuple(t.to(dev) for t in inputs)
    else:
        inputs = inputs.to(dev)
    try:
        with evaluating(model):
            got = list(iter_tensors(call_model(model, inputs)))
    except Exception as err:
        raise PlanError(f"the loaded model fails on the saved example inputs "
                        f"({type(err).__name__}: {str(err)[:300]})", file=where) from None
    if [tuple(t.shape) for t in got] != [tuple(t.shape) for t in expected]:
        raise PlanError(f"output shapes {[tuple(t.shape) for t in got]} differ from the saved "
                        f"{[tuple(t.shape) for t in expected]}", file=where)
    for i, (a, b) in enumerate(zip(got, expected, strict=True)):
        _close(i, a.detach().to("cpu"), b, where)


def _close(i: int, got: torch.Tensor, want: torch.Tensor, where: str) -> None:
    if not (got.is_floating_point() or got.is_complex()):
        if not torch.equal(got, want.to(got.dtype)):
            raise PlanError(f"output {i} differs from the saved one", file=where)
        return
    wide = torch.complex128 if got.is_complex() else torch.float64
    g, w = got.to(wide), want.to(wide)
    finite = torch.isfinite(w)
    if not torch.equal(torch.isfinite(g), finite):
        raise PlanError(f"output {i} is not finite where the saved one is (or the reverse)",
                        file=where)
    scale = float(w[finite].abs().max()) if finite.any() else 0.0
    diff = float((g[finite] - w[finite]).abs().max()) if finite.any() else 0.0
    tol = RTOL.get(want.dtype, DEFAULT_RTOL) * max(scale, 1e-6)
    if diff > tol:
        raise PlanError(f"output {i} differs from the saved one by {diff:.3g} (tolerance "
                        f"{tol:.3g}): the plan or weights do not rebuild the saved model",
                        file=where)
