"""Find dense blocks: a query on one recorded forward pass.

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

from prunekit.graph.oplog import OpLog, record
from prunekit.structures._branch_trace import _callable_children, _input, sums_and_concats
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


def _tensor_out(log: OpLog, module: str) -> torch.Tensor | None:
    """``module``'s first output when it is a plain tensor."""
    call = log.first_call(module)
    out = call.output if call is not None else None
    return out if isinstance(out, torch.Tensor) else None


def _ids(ts: Any) -> list[int] | None:
    if isinstance(ts, (list, tuple)) and all(isinstance(t, torch.Tensor) for t in ts):
        return [id(t) for t in ts]
    return None


def _match(log: OpLog, table: dict, model: nn.Module, name: str) -> DenseBlock | None:
    block = model.get_submodule(name)
    out = _tensor_out(log, name)
    entry = table.get(id(out)) if out is not None else None
    x = _input(log, name)
    if entry is None or entry[0] != "cat" or x is None or log.n_calls(name) != 1:
        return None
    terms = entry[1]
    prefix = f"{name}." if name else ""
    paths = _callable_children(block, name, log)
    kids = sorted((p[len(prefix):] for p in paths if log.n_calls(p) == 1),
                  key=lambda k: log.calls[prefix + k][0].start)
    outs = [_tensor_out(log, prefix + k) for k in kids]
    if len(kids) < 2 or len(kids) != len(paths) or _ids(terms) != \
            [id(x)] + [id(o) for o in outs]:
        return None
    call = None
    for k, key in enumerate(kids):
        want = [id(x)] + [id(o) for o in outs[:k]]
        call_ = log.first_call(prefix + key)
        arg = call_.arg0 if call_ is not None else None
        got, kind = _ids(arg), "list"
        if got is None and isinstance(arg, torch.Tensor) and id(arg) in table:
            got, kind = _ids(table[id(arg)][1]), "tensor"
        if got != want or (call is not None and kind != call):
            return None
        call = kind
    widths = {INPUT: int(x.shape[1]), **{k: int(o.shape[1]) for k, o in zip(kids, outs,
                                                                          strict=True)}}
    sources = [INPUT, *kids]
    inputs = {k: sources[:i + 1] for i, k in enumerate(kids)}
    return DenseBlock(name, kids, inputs, sources, widths, call or "list",
                      log.started_after(name))


def _connected(log: OpLog, name: str, block: ConnectedDenseBlock) -> DenseBlock:
    prefix = f"{name}." if name else ""
    widths = {INPUT: int(_input(log, name).shape[1])}
    for k in block.order:
        if k in block.inputs:
            widths[k] = int(_tensor_out(log, prefix + k).shape[1])
    return DenseBlock(name, list(block.order), {k: list(v) for k, v in block.inputs.items()},
                      list(block.outputs), widths, block.call, log.started_after(name))


def find_dense_blocks(model: nn.Module, example_inputs: Any, log: OpLog | None = None
                      ) -> list[DenseBlock]:
    """Every dense block of ``model`` (torchvision ``_DenseBlock``, user blocks with the
    same pattern, already pruned ``ConnectedDenseBlock``), in module order: a query on
    one recorded pass (``log``, else recorded here). The model is not changed."""
    if log is None:
        log = record(model, example_inputs)
    table = sums_and_concats(log)
    found = []
    for name, mod in model.named_modules():
        if log.n_calls(name) != 1:
            continue
        if isinstance(mod, ConnectedDenseBlock):
            found.append(_connected(log, name, mod))
            continue
        block = _match(log, table, model, name)
        if block is not None:
            found.append(block)
    return found
