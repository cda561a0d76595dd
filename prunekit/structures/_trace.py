"""Find the residual blocks of a model: a query on one recorded forward pass.

A *candidate* is any child of an ``nn.ModuleList`` or ``nn.Sequential`` (that is how
torchvision, timm and Hugging Face hold their stages and layer lists). A candidate is a
removable *block* when, on the traced forward pass,

1. it was called exactly once (a shared module cannot be deleted from one place only),
2. its main input and output tensors have the same shape, and
3. its output reaches its input through a **skip path**: a path in the autograd graph
   that passes through no feature-mixing op (convolution, matrix product, attention,
   embedding) but does pass through an addition, while some other path from output to
   input does go through a mixing op (the residual branch).

Rule 3 accepts ``y = x + f(x)`` (pre-norm transformers, ResNet and MobileNetV2 blocks
with identity shortcut) and post-norm ``y = LN(x + f(x))`` (BERT), and rejects
shape-preserving layers that are not residual blocks: a 64→64 convolution, a
BatchNorm, an activation, a squeeze-excitation gate ``x · σ(W x)``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from prunekit.graph.oplog import OpLog, first_tensor, record

__all__ = ["Trace", "candidates", "containers", "first_tensor", "main_tensor",
           "replace_first_tensor", "skip_structure", "trace_candidates"]

# autograd node names (``type(node).__name__`` without ``Backward<k>``) that mix features
_MIXING = re.compile(
    r"(Convolution|Conv\d|Addmm|^Mm$|Bmm|Baddbmm|Addbmm|Matmul|Linear|Embedding|^Mv$|Addmv"
    r"|^Dot$|Einsum|ScaledDotProduct|Attention)"
)
_ADD = re.compile(r"^Add$")


@dataclass
class Trace:
    """What one hooked forward pass saw of one candidate module."""

    calls: int = 0
    in_shape: tuple[int, ...] | None = None
    out_shape: tuple[int, ...] | None = None
    skip: bool = False
    mixing: bool = False
    n_params: int = 0


def containers(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """Every ``nn.ModuleList`` / ``nn.Sequential`` in ``model`` with its qualified name."""
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList | nn.Sequential):
            yield name, module


def candidates(model: nn.Module) -> dict[str, tuple[str, str]]:
    """Map qualified child name -> (container name, key in the container)."""
    out: dict[str, tuple[str, str]] = {}
    for cname, container in containers(model):
        for key in container._modules:
            out[f"{cname}.{key}" if cname else key] = (cname, key)
    return out


def main_tensor(args: tuple, kwargs: Mapping[str, Any]) -> torch.Tensor | None:
    """The hidden state a block transforms: first floating positional tensor, else
    ``kwargs['hidden_states']`` (Hugging Face layers may pass it by keyword)."""
    for a in args:
        if isinstance(a, torch.Tensor) and a.is_floating_point():
            return a
    hs = kwargs.get("hidden_states")
    return hs if isinstance(hs, torch.Tensor) else None


def replace_first_tensor(output: Any, new: torch.Tensor) -> Any:
    """``output`` with its first tensor swapped for ``new`` (same container type)."""
    if isinstance(output, torch.Tensor):
        return new
    if isinstance(output, tuple | list):
        items = list(output)
        for i, o in enumerate(items):
            if first_tensor(o) is not None:
                items[i] = replace_first_tensor(o, new)
                return type(output)(items) if isinstance(output, list) else tuple(items)
    raise TypeError(f"cannot replace the hidden state in an output of type {type(output)}")


def _node_kind(node: Any) -> str:
    return re.sub(r"Backward\d*$", "", type(node).__name__)


def skip_structure(out: torch.Tensor, inp: torch.Tensor) -> tuple[bool, bool]:
    """(has a mixing-free path with an addition, has a path through a mixing op).

    Walks the autograd graph from ``out.grad_fn`` down to ``inp``'s node (iterative
    post-order DFS, memoized); every node gets the set of path kinds by which it reaches
    ``inp``: ``pure`` (no add yet), ``add`` (mixing-free, through an addition), ``mix``.
    No reference to the graph survives the call (a kept graph would pin the parameters'
    gradient accumulators with their old shapes and break a later surgery).
    """
    target = inp.grad_fn
    memo: dict[Any, frozenset[str]] = {}
    stack: list[tuple[Any, bool]] = [(out.grad_fn, False)]
    while stack:
        node, expanded = stack.pop()
        if node is None or (node in memo and not expanded):
            continue
        if target is not None and node is target or getattr(node, "variable", None) is inp:
            memo[node] = frozenset({"pure"})
            continue
        children = [c for c, _ in getattr(node, "next_functions", ()) if c is not None]
        if not expanded:
            memo[node] = frozenset()  # placeholder until the children are done
            stack.append((node, True))
            stack.extend((c, False) for c in children if c not in memo)
            continue
        memo[node] = _combine(node, [memo.get(c, frozenset()) for c in children])
    reach = memo.get(out.grad_fn, frozenset())
    memo.clear()
    return "add" in reach, "mix" in reach


def _combine(node: Any, child_reach: list[frozenset[str]]) -> frozenset[str]:
    reach: set[str] = set().union(*child_reach) if child_reach else set()
    kind = _node_kind(node)
    if reach and _MIXING.search(kind):
        return frozenset({"mix"})
    if "pure" in reach and _ADD.search(kind):
        return frozenset((reach - {"pure"}) | {"add"})
    return frozenset(reach)


def trace_candidates(model: nn.Module, example_inputs: Any, log: OpLog | None = None
                     ) -> dict[str, Trace]:
    """What each candidate did on one forward pass with autograd on (``log``, recorded
    with ``grad=True``, or recorded here; see :mod:`prunekit.graph.oplog`). The model is
    not changed; no reference to the autograd graph survives the call."""
    if log is None or not log.grad:
        log = record(model, example_inputs, grad=True)
    modules = dict(model.named_modules())
    traces = {}
    for name in candidates(model):
        tr = Trace(calls=log.n_calls(name),
                   n_params=sum(p.numel() for p in modules[name].parameters()))
        call = log.first_call(name)
        if tr.calls == 1 and call is not None:
            x, y = main_tensor(call.args, call.kwargs), first_tensor(call.output)
            if x is not None and y is not None:
                tr.in_shape, tr.out_shape = tuple(x.shape), tuple(y.shape)
                if tr.in_shape == tr.out_shape and y.grad_fn is not None:
                    tr.skip, tr.mixing = skip_structure(y, x)
        traces[name] = tr
    return traces
