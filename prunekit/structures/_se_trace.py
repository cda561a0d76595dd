"""Find squeeze-and-excitation gates in a forward pass and record their values.

A gate is the output of a ``sigmoid`` / ``hardsigmoid`` (functional or module), possibly
reshaped, that multiplies a feature map ``x`` of shape ``(N, C, *S)`` with shape
``(N, C, 1, ...)``: ``y = x · σ(W_e · δ(W_s · pool(x)))``. The *excite* layer is the
``nn.Linear`` / ``nn.Conv*`` whose output (through unary ops only) entered the gate; the
*squeeze* layer is the one whose output (through unary ops, e.g. the activation δ)
entered the excite layer. Tensors are followed with a :class:`TorchFunctionMode` and
module hooks; this finds torchvision ``SqueezeExcitation`` (EfficientNet, MobileNetV3),
timm ``SqueezeExcite`` / ``SEModule`` and user blocks written with ``torch.sigmoid``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from prunekit.measure._inputs import call_model, inference_mode_of

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

    def tag(self, table: dict, t: Any, value: Any) -> None:
        if isinstance(t, torch.Tensor):
            table[id(t)] = value
            self.keep.append(t)


def _tensors(args: Iterable[Any]) -> list[torch.Tensor]:
    out = []
    for a in args:
        if isinstance(a, torch.Tensor):
            out.append(a)
        elif isinstance(a, list | tuple):
            out += [b for b in a if isinstance(b, torch.Tensor)]
    return out


class _Mode(TorchFunctionMode):
    def __init__(self, tape: _Tape) -> None:
        super().__init__()
        self.tape = tape

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        out = func(*args, **(kwargs or {}))
        name = getattr(func, "__name__", "")
        ins = _tensors(args) + _tensors((kwargs or {}).values())
        tape = self.tape
        if name in _GATES and ins and id(ins[0]) in tape.producer:
            tape.tag(tape.gate, out, (tape.producer[id(ins[0])], name.rstrip("_")))
        elif name in _MULS and len(ins) == 2:
            self._maybe_se(ins[0], ins[1])
        elif len(ins) == 1 and isinstance(out, torch.Tensor):
            if id(ins[0]) in tape.producer:
                tape.tag(tape.producer, out, tape.producer[id(ins[0])])
            if id(ins[0]) in tape.gate:
                tape.tag(tape.gate, out, tape.gate[id(ins[0])])
        return out

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


def run_traced(model: nn.Module, batches: Iterable[Any], record: bool) -> _Tape:
    """Run ``model`` on each batch under the tape (eval, no_grad; model unchanged)."""
    tape = _Tape(record=record)
    names = {id(m): n for n, m in model.named_modules()}
    handles = []

    def pre(m: nn.Module, args: tuple) -> None:
        tape.stack.append(names[id(m)])
        if isinstance(m, _LAYERS) and args and isinstance(args[0], torch.Tensor):
            tape.excite_input[names[id(m)]] = id(args[0])
            tape.keep.append(args[0])

    def post(m: nn.Module, _args: tuple, out: Any) -> None:
        tape.stack.pop()
        if isinstance(m, _LAYERS):
            tape.tag(tape.producer, out, names[id(m)])

    for m in model.modules():
        handles.append(m.register_forward_pre_hook(pre))
        handles.append(m.register_forward_hook(post))
    try:
        with inference_mode_of(model):
            for batch in batches:
                with _Mode(tape):
                    call_model(model, batch)
                tape.keep.clear()
                tape.producer.clear()
                tape.gate.clear()
                tape.excite_input.clear()
                tape.stack.clear()
    finally:
        for h in handles:
            h.remove()
    return tape
