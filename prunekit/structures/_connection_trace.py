"""Find dense blocks from one traced forward pass.

A module ``B`` is a *dense block* when, on the traced pass, its output is
``cat([x, o_1, ..., o_n], dim=1)`` where ``x`` is its input and ``o_k`` the outputs of
its children ``L_1 .. L_n`` (each called once, in order, ``n ≥ 2``), and each ``L_k`` is
called with the features seen so far — the list ``[x, o_1, ..., o_{k−1}]``
(torchvision's ``_DenseLayer``) or their concatenation. A
:class:`~prunekit.structures._connection_block.ConnectedDenseBlock` (a block already
pruned) is read from its connection lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from prunekit.measure._inputs import call_model
from prunekit.structures._branch_trace import _callable_children, _first_tensor, _Log, _OpLog
from prunekit.structures._connection_block import INPUT, ConnectedDenseBlock

OUT = "out"


@dataclass
class DenseBlock:
    """A dense block and its surviving connections.

    Attributes
    ----------
    name : str
    order : list of str
        Original layer keys in order (removed layers included).
    inputs : dict
        ``{alive layer: [sources]}``; ``"input"`` is the block input.
    outputs : list of str
        Sources in the block's output concat.
    widths : dict
        Channels per source.
    call : {"list", "tensor"}
    downstream : frozenset of str
        Modules first called after the block returned (its output's consumers).
    """

    name: str
    order: list[str]
    inputs: dict[str, list[str]]
    outputs: list[str]
    widths: dict[str, int]
    call: str
    downstream: frozenset[str]

    @property
    def alive(self) -> list[str]:
        return [k for k in self.order if k in self.inputs]

    def connections(self) -> list[tuple[str, str]]:
        """Surviving ``(source, consumer)`` pairs; consumer ``"out"`` is the block output."""
        pairs = [(s, j) for j in self.alive for s in self.inputs[j]]
        return pairs + [(s, OUT) for s in self.outputs]

    def outgoing(self, source: str) -> list[str]:
        """Consumers still fed by ``source``."""
        return [j for s, j in self.connections() if s == source]


def name_of(block: str, source: str, consumer: str) -> str:
    """``"<block>:<source>-><consumer>"``."""
    return f"{block}:{source}->{consumer}"


class _Args:
    def __init__(self) -> None:
        self.args: dict[str, Any] = {}


def _log(model: nn.Module, example_inputs: Any) -> tuple[_Log, _Args]:
    log, args = _Log(), _Args()
    handles = []
    for name, mod in model.named_modules():
        def pre(_m: nn.Module, a: tuple, name: str = name) -> None:
            log.calls[name] = log.calls.get(name, 0) + 1
            log.clock += 1
            log.start.setdefault(name, log.clock)
            first = a[0] if a else None  # a list may grow later (torchvision appends)
            args.args.setdefault(name, list(first) if isinstance(first, list) else first)
            t = _first_tensor(a)
            if t is not None:
                log.inputs.setdefault(name, t)

        def post(_m: nn.Module, _a: tuple, out: Any, name: str = name) -> None:
            log.clock += 1
            log.end[name] = log.clock
            if isinstance(out, torch.Tensor):
                log.outputs.setdefault(name, []).append(out)

        handles.append(mod.register_forward_pre_hook(pre))
        handles.append(mod.register_forward_hook(post))
    modes = {m: m.training for m in model.modules()}
    try:
        model.eval()
        with torch.no_grad(), _OpLog(log):
            call_model(model, example_inputs)
    finally:
        for h in handles:
            h.remove()
        for m, flag in modes.items():
            m.training = flag
    return log, args


def _ids(ts: Any) -> list[int] | None:
    if isinstance(ts, (list, tuple)) and all(isinstance(t, torch.Tensor) for t in ts):
        return [id(t) for t in ts]
    return None


def _match(log: _Log, args: _Args, model: nn.Module, name: str) -> DenseBlock | None:
    block = model.get_submodule(name)
    out = log.outputs.get(name, [None])[0]
    entry = log.ops.get(id(out)) if out is not None else None
    x = log.inputs.get(name)
    if entry is None or entry[0] != "cat" or x is None or log.calls.get(name) != 1:
        return None
    terms = entry[1]
    prefix = f"{name}." if name else ""
    paths = _callable_children(block, name, log)
    kids = sorted((p[len(prefix):] for p in paths if log.calls.get(p) == 1),
                  key=lambda k: log.start[prefix + k])
    outs = [log.outputs.get(prefix + k, [None])[0] for k in kids]
    if len(kids) < 2 or len(kids) != len(paths) or _ids(terms) != \
            [id(x)] + [id(o) for o in outs]:
        return None
    call = None
    for k, key in enumerate(kids):
        want = [id(x)] + [id(o) for o in outs[:k]]
        arg = args.args.get(prefix + key)
        got, kind = _ids(arg), "list"
        if got is None and isinstance(arg, torch.Tensor) and id(arg) in log.ops:
            got, kind = _ids(log.ops[id(arg)][1]), "tensor"
        if got != want or (call is not None and kind != call):
            return None
        call = kind
    widths = {INPUT: int(x.shape[1]), **{k: int(o.shape[1]) for k, o in zip(kids, outs,
                                                                          strict=True)}}
    sources = [INPUT, *kids]
    inputs = {k: sources[:i + 1] for i, k in enumerate(kids)}
    return DenseBlock(name, kids, inputs, sources, widths, call or "list",
                      _after(log, name))


def _after(log: _Log, name: str) -> frozenset[str]:
    return frozenset(n for n, t in log.start.items() if t > log.end[name])


def _connected(log: _Log, name: str, block: ConnectedDenseBlock) -> DenseBlock:
    prefix = f"{name}." if name else ""
    widths = {INPUT: int(log.inputs[name].shape[1])}
    for k in block.order:
        if k in block.inputs:
            widths[k] = int(log.outputs[prefix + k][0].shape[1])
    return DenseBlock(name, list(block.order), {k: list(v) for k, v in block.inputs.items()},
                      list(block.outputs), widths, block.call, _after(log, name))


def find_dense_blocks(model: nn.Module, example_inputs: Any) -> list[DenseBlock]:
    """Every dense block of ``model`` (torchvision ``_DenseBlock``, user blocks with the
    same pattern, already pruned ``ConnectedDenseBlock``), in module order. The model is
    not changed."""
    log, args = _log(model, example_inputs)
    found = []
    for name, mod in model.named_modules():
        if log.calls.get(name) != 1:
            continue
        if isinstance(mod, ConnectedDenseBlock):
            found.append(_connected(log, name, mod))
            continue
        block = _match(log, args, model, name)
        if block is not None:
            found.append(block)
    return found
