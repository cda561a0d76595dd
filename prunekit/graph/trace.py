"""One eager forward pass, recorded op by op.

:class:`TraceState` holds the atoms of every tensor seen; a
:class:`~torch.overrides.TorchFunctionMode` feeds it every torch call (functional ops,
tensor methods, layer functionals) and module hooks keep the module path for messages.
This works under ``torch.no_grad``, with frozen parameters and on models that
``torch.fx`` cannot trace, because the model simply runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from prunekit.graph.atoms import Atoms
from prunekit.graph.labels import Label, all_atoms, fixed, fresh
from prunekit.graph.rules import lookup


def iter_tensors(obj: Any) -> Iterator[torch.Tensor]:
    """Tensors inside nested tuples, lists and mappings (HF ModelOutput included)."""
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (tuple, list)):
        for item in obj:
            yield from iter_tensors(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from iter_tensors(item)


class TraceState:
    """Atoms and labels of one traced forward pass."""

    def __init__(self, model: nn.Module) -> None:
        self.uf = Atoms()
        self.labels: dict[int, Label] = {}
        self._keep: list[torch.Tensor] = []
        self.param_names = {id(p): n for n, p in model.named_parameters()}
        self.buffer_names = {id(b): n for n, b in model.named_buffers()}
        self.param_labels: dict[str, Label] = {}
        self.stack: list[str] = []
        self.skipped: dict[tuple[str, str], dict[str, Any]] = {}
        self.module_outputs: list[tuple[str, torch.Tensor]] = []
        self.shape_attrs: dict[str, dict[str, list[np.ndarray]]] = {}
        self.calls = 0  # torch calls seen so far: a recorded op's index in the pass
        self.op = ""
        self.width_ops: list[tuple[Any, ...]] = []

    # -- labels -------------------------------------------------------------------------
    def label(self, t: torch.Tensor) -> Label:
        """The label of ``t``; parameters get fresh atoms on first sight."""
        found = self.labels.get(id(t))
        if found is not None:
            return found
        name = self.param_names.get(id(t))
        if name is None:
            return fixed(tuple(t.shape))
        return self._register(t, name)

    def claim(self, t: torch.Tensor | None) -> Label | None:
        """Like :meth:`label`, but a registered buffer (BN running stats) gets atoms too."""
        if t is None:
            return None
        name = self.buffer_names.get(id(t))
        if id(t) not in self.labels and name is not None:
            return self._register(t, name)
        return self.label(t)

    def _register(self, t: torch.Tensor, name: str) -> Label:
        lab = fresh(self.uf, tuple(t.shape))
        self.labels[id(t)] = lab
        self.param_labels[name] = lab
        self._keep.append(t)
        return lab

    def set(self, t: Any, lab: Label) -> None:
        """Attach ``lab`` to output tensor ``t`` (ignored for non-tensors)."""
        if isinstance(t, torch.Tensor) and id(t) not in self.param_names:
            self.labels[id(t)] = lab
            self._keep.append(t)

    def module(self) -> str:
        """Path of the module currently running ('' at top level)."""
        return self.stack[-1] if self.stack else ""

    def is_param(self, t: torch.Tensor) -> bool:
        return id(t) in self.param_names or id(t) in self.buffer_names

    def width_op(self, kind: str, x: torch.Tensor | None, dims: Any,
                 label: Label | None = None) -> None:
        """Record that the current op's value depends on the width of ``dims`` of ``x``
        (a mean, a norm, a softmax over them; see :mod:`prunekit.graph.width_ops`)."""
        lab = label if label is not None else self.label(x)
        nd = max(len(lab.shape), 1)
        dims = tuple(sorted({d % nd for d in dims}))
        blocks = [b for b in lab.blocks if set(b.dims) & set(dims)]
        if blocks:
            self.width_ops.append((self.calls - 1, self.op, kind, self.module(), dims,
                                   tuple(lab.shape), blocks))

    # -- barriers -----------------------------------------------------------------------
    def fix_tensors(self, tensors: list[torch.Tensor]) -> bool:
        """Fix every atom the tensors carry; True if any was prunable before."""
        touched = False
        for t in tensors:
            atoms = all_atoms(self.label(t))
            if atoms.size and np.any(self.uf.find(atoms) != 0):
                touched = True
            self.uf.fix(atoms)
        return touched

    def skip(self, op: str, reason: str) -> None:
        """Record a barrier or a kept dimension (once per op and module)."""
        key = (op, self.module())
        entry = self.skipped.setdefault(key, {"op": op, "module": key[1], "reason": reason,
                                              "count": 0})
        entry["count"] += 1

    def barrier(self, op: str, args: tuple, kwargs: dict, reason: str) -> None:
        """An op without a (working) rule: its tensors' channels are not pruned."""
        tensors = list(iter_tensors((args, kwargs)))
        if self.fix_tensors(tensors):
            self.skip(op, reason)

    def record(self, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
        """Propagate atoms through one op."""
        name, fn = lookup(func)
        self.op = name
        if fn is None:
            if next(iter_tensors(out), None) is not None:
                self.barrier(name, args, kwargs, "no propagation rule for this op")
            return
        try:
            fn(self, func, args, kwargs, out)
        except Exception as err:  # noqa: BLE001 - a failing rule must never break tracing
            self.barrier(name, args, kwargs, f"propagation rule failed: {err}")
            for t in iter_tensors(out):
                self.fix_tensors([t])


class _Mode(TorchFunctionMode):
    def __init__(self, st: TraceState) -> None:
        super().__init__()
        self.st = st

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        self.st.calls += 1
        out = func(*args, **kwargs)
        self.st.record(func, args, kwargs, out)
        return out


def _hooks(model: nn.Module, st: TraceState) -> list[Any]:
    handles = []
    for name, mod in model.named_modules():
        def push(_m: nn.Module, _a: Any, name: str = name) -> None:
            st.stack.append(name)

        def pop(_m: nn.Module, _a: Any, out: Any, name: str = name) -> None:
            if st.stack and st.stack[-1] == name:
                st.stack.pop()
            for t in iter_tensors(out):
                st.module_outputs.append((name, t))

        handles.append(mod.register_forward_pre_hook(push))
        handles.append(mod.register_forward_hook(pop, always_call=True))
    return handles


def call_model(model: nn.Module, example_inputs: Any) -> Any:
    """Run ``model`` on a tensor (``model(x)``), tuple/list (``model(*x)``) or dict."""
    if isinstance(example_inputs, dict):
        return model(**example_inputs)
    if isinstance(example_inputs, (tuple, list)):
        return model(*example_inputs)
    return model(example_inputs)


def trace(model: nn.Module, example_inputs: Any) -> tuple[TraceState, Any]:
    """Run the model once in eval mode under the recording mode; the state and output.

    The model's train/eval flags are restored afterwards; nothing else is changed.
    """
    st = TraceState(model)
    modes = {m: m.training for m in model.modules()}
    handles = _hooks(model, st)
    try:
        model.eval()
        with torch.no_grad(), _Mode(st):
            out = call_model(model, example_inputs)
    finally:
        for h in handles:
            h.remove()
        for m, flag in modes.items():
            m.training = flag
    st.stack.clear()
    st.fix_tensors(list(iter_tensors(out)))
    return st, out
