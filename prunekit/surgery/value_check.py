"""The value check after a cut: the cut model against the zeroed original.

A cut is right when the cut model computes what the original computes with the removed
slices set to zero (zero-group invariance). Where an op counts the channels it reduces
over (a mean, LayerNorm, a softmax over them, attention's ``1/√d``) the zeroed original
is run with that op computed on the kept channels only (:mod:`prunekit.graph.width_ops`),
so the reference is exactly what the cut should give. A shape check alone misses a cut
that changes the layout a later op reads: a width baked into ``view(B, 32, -1)`` followed
by a reduction keeps every shape and doubles the output. This check sees it.

Cost: one extra forward pass of the model on the example inputs per cut (the reference),
plus a copy of the removed slices (zeroed in place, written back after); the cut model's
own pass is the forward check's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from prunekit.graph.oplog import iter_tensors, run
from prunekit.graph.rules.registry import op_name
from prunekit.graph.types import GroupSet
from prunekit.graph.width_ops import EmulationError, WidthOp, emulate
from prunekit.surgery.plan import Cut
from prunekit.surgery.state import tensor_owners

RTOL = {torch.float16: 2e-2, torch.bfloat16: 5e-2}
DEFAULT_RTOL = 1e-3


class _Emulate:
    """Dispatch of the reference pass: recorded width ops run on kept channels (calls are
    counted exactly as the trace counted them, see :mod:`prunekit.graph.oplog`)."""

    def __init__(self, ops: dict[int, WidthOp], gone: np.ndarray) -> None:
        self.ops, self.gone = ops, gone

    def __call__(self, index: int, func: Any, args: tuple, kwargs: dict) -> Any:
        op = self.ops.get(index)
        if op is None:
            return func(*args, **kwargs)
        if op_name(func) != op.op:
            raise EmulationError(f"the forward pass took another path (call {index} is "
                                 f"{op_name(func)}, the trace saw {op.op})")
        return emulate(op, func, args, kwargs, self.gone)


def removed_units(gs: GroupSet, removal: Mapping[str, Sequence[int]]) -> np.ndarray:
    """Bool array over unit ids (see :meth:`GroupSet.unit_offsets`): True = removed."""
    offsets = gs.unit_offsets()
    gone = np.zeros(sum(g.size for g in gs.groups), bool)
    for gid, chans in removal.items():
        gone[[offsets[gid] + int(c) for c in chans]] = True
    return gone


@contextlib.contextmanager
def _zeroed(model: nn.Module, cuts: list[Cut]) -> Iterator[None]:
    """The cut slices set to zero in place for the duration, then written back from
    copies of those slices only (a cut removes a fraction of a tensor: copying the
    removed slices is a fraction of copying every cut tensor). Bit-exact afterwards."""
    owners = tensor_owners(model)
    saved: list[tuple[torch.Tensor, int, torch.Tensor, torch.Tensor]] = []
    try:
        with torch.no_grad():
            for cut in cuts:
                kind, obj = owners[cut.param]
                t = obj.data if kind == "param" else obj[0][0]._buffers[obj[0][1]]
                idx = torch.as_tensor(cut.removed, dtype=torch.long, device=t.device)
                values = t.index_select(cut.dim, idx)
                saved.append((t, cut.dim, idx, values))
                if t.is_floating_point() and bool(torch.isfinite(values).all()):
                    keep = torch.ones(t.shape[cut.dim], dtype=t.dtype, device=t.device)
                    shape = [1] * t.dim()
                    shape[cut.dim] = -1
                    t.mul_(keep.index_fill_(0, idx, 0).view(shape))  # one contiguous pass
                else:
                    t.index_fill_(cut.dim, idx, 0)
        yield
    finally:
        with torch.no_grad():
            for t, dim, idx, values in reversed(saved):
                t.index_copy_(dim, idx, values)


def reference_outputs(model: nn.Module, gs: GroupSet, removal: Mapping[str, Sequence[int]],
                      cuts: list[Cut], example_inputs: Any) -> list[torch.Tensor]:
    """Outputs of ``model`` with the cut slices zeroed and width ops on kept channels.

    The model is left exactly as it was. Raises :class:`EmulationError` when a width op
    cannot be computed on the kept channels alone.
    """
    gone = removed_units(gs, removal)
    ops = {op.index: op for op in gs.width_ops if op.keep_mask(gone) is not None}
    with _zeroed(model, cuts):
        out = run(model, example_inputs, dispatch=_Emulate(ops, gone))
        return [t.detach().clone() for t in iter_tensors(out)]


def _mismatch(ref: torch.Tensor, got: torch.Tensor) -> float:
    """Largest difference relative to the reference's largest finite magnitude (inf
    where non-finite values disagree); 0.0 for equal non-float tensors."""
    if not ref.is_floating_point() and not ref.is_complex():
        return 0.0 if torch.equal(ref, got.to(ref.dtype)) else float("inf")
    if ref.is_complex():
        ref, got = torch.view_as_real(ref), torch.view_as_real(got.to(ref.dtype))
    ref, got = ref.double(), got.to(ref.device).double()
    finite = torch.isfinite(ref)
    if not torch.equal(finite, torch.isfinite(got)) or \
            not torch.equal(ref[~finite].nan_to_num(), got[~finite].nan_to_num()):
        return float("inf")
    if not finite.any():
        return 0.0
    scale = ref[finite].abs().max().clamp_min(1e-12)
    return float((ref[finite] - got[finite]).abs().max() / scale)


def compare(reference: list[torch.Tensor], outputs: Any) -> str | None:
    """``None`` when ``outputs`` equal ``reference`` within float tolerance, else what
    differs (output index, relative error, tolerance)."""
    got = list(iter_tensors(outputs))
    if len(got) != len(reference):
        return f"{len(got)} output tensors, the reference has {len(reference)}"
    for i, (r, g) in enumerate(zip(reference, got)):
        rtol = RTOL.get(r.dtype, DEFAULT_RTOL)
        err = _mismatch(r, g)
        if err > rtol:
            return (f"output {i} differs from the original with the removed channels "
                    f"zeroed: relative error {err:.3g} > {rtol:g}")
    return None
