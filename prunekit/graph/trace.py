"""The channel graph of one eager forward pass, built op by op.

:class:`TraceState` holds the atoms of every tensor seen. It observes the one forward
pass of :func:`prunekit.graph.oplog.run`, which feeds it every torch call (functional
ops, tensor methods, layer functionals) and every module call (the module path for
messages). This works under ``torch.no_grad``, with frozen parameters and on models that
``torch.fx`` cannot trace, because the model simply runs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from prunekit.graph.atoms import Atoms
from prunekit.graph.labels import Label, all_atoms, fixed, fresh
from prunekit.graph.oplog import ModuleCall, OpRecord, call_model, iter_tensors, run
from prunekit.graph.rules import lookup

__all__ = ["TraceState", "call_model", "iter_tensors", "trace"]  # call_model, iter_tensors:
# re-exported for older imports; their home is prunekit.graph.oplog (public: prunekit.graph)


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
        self.current_op = ""
        self.width_ops: list[tuple[Any, ...]] = []

    # -- observer of the one forward pass (prunekit.graph.oplog.run) --------------------
    def enter(self, call: ModuleCall) -> None:
        self.stack.append(call.name)

    def exit(self, call: ModuleCall) -> None:
        if self.stack and self.stack[-1] == call.name:
            self.stack.pop()
        for t in iter_tensors(call.output):
            self.module_outputs.append((call.name, t))

    def op(self, rec: OpRecord) -> None:
        self.calls = rec.index + 1
        self.record(rec.func, rec.args, rec.kwargs, rec.out)

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
            self.width_ops.append((self.calls - 1, self.current_op, kind, self.module(), dims,
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
        self.current_op = name
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


def trace(model: nn.Module, example_inputs: Any) -> tuple[TraceState, Any]:
    """Run the model once (eval, no_grad; :func:`prunekit.graph.oplog.run`) with the
    channel graph as observer; the state and output. Nothing of the model changes."""
    st = TraceState(model)
    out = run(model, example_inputs, [st])
    st.stack.clear()
    st.fix_tensors(list(iter_tensors(out)))
    return st, out
