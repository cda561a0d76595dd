"""Incumbents configured as their own documentation says.

Torch-Pruning (``tp.pruner.MetaPruner`` and its README): the layers that produce the model's
outputs are ignored *whatever their type* (a conv classifier such as SqueezeNet's, an LM
head), attention layers get ``num_heads``, ``round_to`` is passed when we round, its
iterative mode (``iterative_steps``) is used when asked, and a data-driven criterion
(Taylor, gradients from a loss on calibration data) when ours is data-driven.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from prunekit.graph.trace import call_model, iter_tensors

Heads = dict[nn.Module, int]


def final_layers(model: nn.Module, inputs: Any) -> list[nn.Module]:
    """Every module with parameters whose output reaches a model output without passing
    through another module with parameters (found on the autograd graph of one forward
    pass): the layers whose output channels a pruner must leave alone."""
    owner: dict[Any, nn.Module] = {}

    def hook(module: nn.Module, _args: Any, out: Any) -> None:
        for t in iter_tensors(out):
            if t.grad_fn is not None:
                owner.setdefault(t.grad_fn, module)

    leaves = [m for m in model.modules() if any(True for _ in m.parameters(recurse=False))]
    handles = [m.register_forward_hook(hook) for m in leaves]
    was = model.training
    try:
        model.eval()
        with torch.enable_grad():
            outs = [t for t in iter_tensors(call_model(model, inputs)) if t.grad_fn is not None]
    finally:
        model.train(was)
        for h in handles:
            h.remove()
    return _first_owners([t.grad_fn for t in outs], owner)


def _first_owners(starts: list[Any], owner: dict[Any, nn.Module]) -> list[nn.Module]:
    found: dict[int, nn.Module] = {}
    seen, stack = set(), list(starts)
    while stack:
        fn = stack.pop()
        if fn is None or id(fn) in seen:
            continue
        seen.add(id(fn))
        if fn in owner:
            found.setdefault(id(owner[fn]), owner[fn])
            continue
        stack.extend(nxt for nxt, _ in fn.next_functions)
    return list(found.values())


# ------------------------------------------------------------------ attention heads
def attention_heads(model: nn.Module) -> Heads:
    """``{projection layer: heads}`` for Torch-Pruning's ``num_heads`` (its examples:
    ``nn.MultiheadAttention``, timm ``qkv``, Hugging Face query/key/value and
    q/k/v projections with grouped KV heads, GPT-2 ``c_attn``)."""
    heads: Heads = {}
    for m in model.modules():
        for rule in HEAD_RULES:
            found = rule(m)
            if found:
                heads.update(found)
                break
    return heads


def _mha(m: nn.Module) -> Heads:
    return {m: m.num_heads} if isinstance(m, nn.MultiheadAttention) else {}


def _timm(m: nn.Module) -> Heads:
    qkv = getattr(m, "qkv", None)
    n = getattr(m, "num_heads", None)
    return {qkv: n} if isinstance(qkv, nn.Linear) and isinstance(n, int) else {}


def _hf_bert(m: nn.Module) -> Heads:
    n = getattr(m, "num_attention_heads", None)
    layers = [getattr(m, k, None) for k in ("query", "key", "value")]
    if isinstance(n, int) and all(isinstance(x, nn.Linear) for x in layers):
        return dict.fromkeys(layers, n)
    return {}


def _hf_qkv(m: nn.Module) -> Heads:
    cfg = getattr(m, "config", None)
    q, k, v = (getattr(m, f"{p}_proj", None) for p in "qkv")
    if cfg is None or not all(isinstance(x, nn.Linear) for x in (q, k, v)):
        return {}
    n = getattr(cfg, "num_attention_heads", None)
    kv = getattr(cfg, "num_key_value_heads", None) or n
    return {q: n, k: kv, v: kv} if isinstance(n, int) else {}


def _gpt2(m: nn.Module) -> Heads:
    c_attn, n = getattr(m, "c_attn", None), getattr(m, "num_heads", None)
    return {c_attn: n} if c_attn is not None and isinstance(n, int) else {}


HEAD_RULES: tuple[Callable[[nn.Module], Heads], ...] = (_mha, _timm, _hf_bert, _hf_qkv, _gpt2)


# ------------------------------------------------------------------ the pruner
def torch_pruning(model: nn.Module, inputs: Any, ratio: float, importance: str = "l2",
                  round_to: int | None = None, iterative_steps: int = 1,
                  loss_fn: Callable[[nn.Module], torch.Tensor] | None = None,
                  output_transform: Callable[[Any], Any] | None = None,
                  prune_heads: bool = False,
                  ratio_dict: dict[nn.Module, float] | None = None) -> dict[str, Any]:
    """Prune ``model`` in place with Torch-Pruning's ``MetaPruner`` configured as its docs
    say; returns the configuration used (JSON-ready).

    ``importance``: ``"l2"`` (group magnitude) or ``"taylor"`` (data-driven: ``loss_fn``
    (model) -> loss is back-propagated before each of the ``iterative_steps`` steps).
    ``ratio_dict``: per-layer ratios (Torch-Pruning's ``pruning_ratio_dict``), e.g. to
    prune to another method's widths with Torch-Pruning's own channel choice.
    """
    import torch_pruning as tp

    if importance == "taylor" and loss_fn is None:
        raise ValueError("importance='taylor' needs loss_fn (a data-driven criterion)")
    imp = {"l2": lambda: tp.importance.GroupMagnitudeImportance(p=2),
           "taylor": lambda: tp.importance.GroupTaylorImportance()}[importance]()
    ignored = final_layers(model, inputs)
    heads = attention_heads(model)
    pruner = tp.pruner.MetaPruner(
        model, inputs, importance=imp, pruning_ratio=ratio, ignored_layers=ignored,
        num_heads=heads, round_to=round_to, iterative_steps=iterative_steps,
        prune_num_heads=prune_heads, output_transform=output_transform,
        pruning_ratio_dict=ratio_dict)
    for _ in range(iterative_steps):
        if loss_fn is not None:
            model.zero_grad()
            loss_fn(model).backward()
        pruner.step()
    return {"library": "torch-pruning", "pruner": "MetaPruner", "importance": importance,
            "ratio": ratio, "round_to": round_to, "iterative_steps": iterative_steps,
            "ignored_layers": [type(m).__name__ for m in ignored],
            "num_heads_layers": len(heads), "prune_num_heads": prune_heads,
            "per_layer_ratios": None if ratio_dict is None else list(ratio_dict.values())}


def pruned_copy(model: nn.Module, inputs: Any, ratio: float, **kwargs: Any
                ) -> tuple[nn.Module, dict[str, Any]]:
    """:func:`torch_pruning` on a deep copy (the model is left as it was)."""
    twin = copy.deepcopy(model)
    return twin, torch_pruning(twin, inputs, ratio, **kwargs)


def matched(model: nn.Module, inputs: Any, target_macs: int, steps: int = 14,
            tolerance: float = 0.01, **kwargs: Any) -> list[dict[str, Any]]:
    """Torch-Pruning copies standing for ``target_macs``: the run nearest to it if within
    ``tolerance``, else the two runs bracketing it (for interpolation), from a bisection
    of the channel ratio over ``steps`` runs (``kwargs`` go to :func:`torch_pruning`)."""
    from prunekit.measure import count_macs

    runs, lo, hi = [], 0.0, 0.99
    for _ in range(steps):
        mid = (lo + hi) / 2
        twin, config = pruned_copy(model, inputs, mid, **kwargs)
        macs = count_macs(twin, inputs)
        runs.append({"ratio": mid, "model": twin, "macs": macs, "config": config})
        lo, hi = (mid, hi) if macs > target_macs else (lo, mid)
    best = min(runs, key=lambda r: abs(r["macs"] - target_macs))
    if abs(best["macs"] / target_macs - 1) <= tolerance:
        return [best]
    below = max((r for r in runs if r["macs"] <= target_macs), key=lambda r: r["macs"],
                default=None)
    above = min((r for r in runs if r["macs"] > target_macs), key=lambda r: r["macs"],
                default=None)
    return [r for r in (below, above) if r is not None]


def named(model: nn.Module, modules: list[nn.Module]) -> Iterator[str]:
    """The qualified names of ``modules`` in ``model`` (for reports)."""
    wanted = {id(m) for m in modules}
    return (n for n, m in model.named_modules() if id(m) in wanted)
