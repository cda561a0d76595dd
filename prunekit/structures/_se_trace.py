"""Find squeeze-and-excitation gates in a forward pass and record their values.

A gate is the output of a ``sigmoid`` / ``hardsigmoid`` (functional or module), possibly
reshaped, that multiplies a feature map ``x`` of shape ``(N, C, *S)`` with shape
``(N, C, 1, ...)``: ``y = x · σ(W_e · δ(W_s · pool(x)))``. The *excite* layer is the
``nn.Linear`` / ``nn.Conv*`` whose output (through unary ops only) entered the gate; the
*squeeze* layer is the one whose output (through unary ops, e.g. the activation δ)
entered the excite layer. Tensors are followed by an observer of the one forward pass
(:mod:`prunekit.graph.oplog`); this finds torchvision ``SqueezeExcitation``
(EfficientNet, MobileNetV3), timm ``SqueezeExcite`` / ``SEModule`` and user blocks
written with ``torch.sigmoid``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from prunekit.graph.oplog import ModuleCall, OpLog, OpRecord, iter_tensors, run

_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_GATES = {"sigmoid", "sigmoid_", "hardsigmoid"}
_MULS = {"mul", "mul_", "__mul__", "__rmul__", "__imul__"}


@dataclass(frozen=True)
class SEBlock:
    """One squeeze-and-excitation gate.

    Attributes
    ----------
    name : str
        The innermost module that runs the multiplication (the SE module itself for
        torchvision / timm blocks).
    excite : str
        Layer whose output is the gate's pre-activation (``C`` outputs, one per channel).
    squeeze : str or None
        Layer that reads the pooled feature map and feeds ``excite``.
    gate : str
        ``"sigmoid"`` or ``"hardsigmoid"``.
    channels : int
        Gated channels ``C``.
    """

    name: str
    excite: str
    squeeze: str | None
    gate: str
    channels: int


@dataclass
class _Tape:
    """Tags of live tensors during one traced pass (tensors are kept alive, so ids are
    unique)."""

    producer: dict[int, str] = field(default_factory=dict)
    gate: dict[int, tuple[str, str]] = field(default_factory=dict)  # id -> (excite, kind)
    keep: list[torch.Tensor] = field(default_factory=list)
    stack: list[str] = field(default_factory=list)
    excite_input: dict[str, int] = field(default_factory=dict)  # excite -> id of its input
    found: dict[str, SEBlock] = field(default_factory=dict)     # excite -> block
    values: dict[str, list[torch.Tensor]] = field(default_factory=dict)  # excite -> (N, C)
    record: bool = False
    layers: dict[str, bool] = field(default_factory=dict)  # module -> is a Linear/Conv

    def tag(self, table: dict, t: Any, value: Any) -> None:
        if isinstance(t, torch.Tensor):
            table[id(t)] = value
            self.keep.append(t)


class _Observer:
    """Follows tensors through one pass (observer of :func:`prunekit.graph.oplog.run`):
    layer outputs, the gates derived from them, gate × feature-map products."""

    def __init__(self, tape: _Tape) -> None:
        self.tape = tape

    def enter(self, call: ModuleCall) -> None:
        tape = self.tape
        tape.stack.append(call.name)
        if tape.layers.get(call.name) and call.args and isinstance(call.args[0], torch.Tensor):
            tape.excite_input[call.name] = id(call.args[0])
            tape.keep.append(call.args[0])

    def exit(self, call: ModuleCall) -> None:
        tape = self.tape
        if tape.stack and tape.stack[-1] == call.name:
            tape.stack.pop()
        if tape.layers.get(call.name):
            tape.tag(tape.producer, call.output, call.name)

    def op(self, rec: OpRecord) -> None:
        name = getattr(rec.func, "__name__", "")
        ins = list(iter_tensors((rec.args, rec.kwargs)))
        out, tape = rec.out, self.tape
        if name in _GATES and ins and id(ins[0]) in tape.producer:
            tape.tag(tape.gate, out, (tape.producer[id(ins[0])], name.rstrip("_")))
        elif name in _MULS and len(ins) == 2:
            self._maybe_se(ins[0], ins[1])
        elif len(ins) == 1 and isinstance(out, torch.Tensor):
            if id(ins[0]) in tape.producer:
                tape.tag(tape.producer, out, tape.producer[id(ins[0])])
            if id(ins[0]) in tape.gate:
                tape.tag(tape.gate, out, tape.gate[id(ins[0])])

    def _maybe_se(self, a: torch.Tensor, b: torch.Tensor) -> None:
        tape = self.tape
        for g, x in ((a, b), (b, a)):
            if id(g) not in tape.gate or g.dim() < 3 or g.dim() != x.dim():
                continue
            if g.shape[:2] != x.shape[:2] or any(s != 1 for s in g.shape[2:]):
                continue
            excite, kind = tape.gate[id(g)]
            if excite not in tape.found:
                squeeze = tape.producer.get(tape.excite_input.get(excite, -1))
                tape.found[excite] = SEBlock(tape.stack[-1] if tape.stack else "", excite,
                                             squeeze, kind, int(g.shape[1]))
            if tape.record:
                tape.values.setdefault(excite, []).append(
                    g.detach().reshape(g.shape[0], g.shape[1]).to("cpu", torch.float64))
            return


def _new_tape(model: nn.Module, record: bool) -> _Tape:
    tape = _Tape(record=record)
    tape.layers = {n: isinstance(m, _LAYERS) for n, m in model.named_modules()}
    return tape


def find_in_log(model: nn.Module, log: OpLog) -> dict[str, SEBlock]:
    """SE gates of a recorded pass, by excite layer (the log replayed to the observer)."""
    tape = _new_tape(model, record=False)
    log.replay(_Observer(tape))
    return tape.found


def run_traced(model: nn.Module, batches: Iterable[Any], record: bool) -> _Tape:
    """Run ``model`` on each batch (eval, no_grad; model unchanged) with the gate observer;
    ``record``: keep every gate's values (streamed, nothing else is stored)."""
    tape = _new_tape(model, record)
    for batch in batches:
        run(model, batch, [_Observer(tape)])
        tape.keep.clear()
        tape.producer.clear()
        tape.gate.clear()
        tape.excite_input.clear()
        tape.stack.clear()
    return tape
