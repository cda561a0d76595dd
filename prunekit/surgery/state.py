"""One transaction for every multi-step change; slicing parameters in place.

Parameters are cut with ``param.data = smaller`` so their identity survives (tied
weights stay tied, optimizers keep their references); buffers are replaced in every
module that holds them. The snapshot keeps the *original* tensor objects, so a restore
gives a state_dict that is bit-identical to the one before.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

_INTERNAL = {"_parameters", "_buffers", "_modules"}


def configs(model: nn.Module) -> Iterator[Any]:
    """Distinct Hugging Face-style config objects held by modules (``.config``)."""
    seen = set()
    for m in model.modules():
        cfg = m.__dict__.get("config")
        if cfg is not None and hasattr(cfg, "to_dict") and id(cfg) not in seen:
            seen.add(id(cfg))
            yield cfg


def _is_config(v: Any) -> bool:
    return hasattr(v, "to_dict") and hasattr(v, "to_json_string")


def _all_configs(model: nn.Module) -> list[Any]:
    """Configs held by modules and the sub-configs they hold (``text_config`` ...), each
    once: snapshotted one by one so that a restore keeps them the same objects."""
    out: dict[int, Any] = {}
    stack = list(configs(model))
    while stack:
        cfg = stack.pop()
        if id(cfg) in out:
            continue
        out[id(cfg)] = cfg
        stack.extend(v for v in cfg.__dict__.values() if _is_config(v))
    return list(out.values())


@dataclass
class Snapshot:
    """Everything a multi-step change can touch, to put back exactly: the module tree
    (children, parameter and buffer tables), every parameter's data and grad (the
    Parameter objects themselves survive: optimizers and tied weights keep working),
    buffers, module attributes and Hugging Face configs.

    By default the *original* tensors are kept, which is exact for changes that replace
    tensors (``param.data = smaller``: every cut). A change that writes into tensors in
    place (an optimizer step, ``load_state_dict``) needs ``copy_values=True``: the values
    are copied then, and copied back on restore.
    """

    params: list[tuple[nn.Parameter, torch.Tensor, torch.Tensor | None]] = field(
        default_factory=list)
    buffers: list[tuple[nn.Module, str, torch.Tensor | None]] = field(default_factory=list)
    attrs: dict[nn.Module, dict[str, Any]] = field(default_factory=dict)
    cfgs: list[tuple[Any, dict[str, Any]]] = field(default_factory=list)
    trees: list[tuple[nn.Module, dict, dict, dict]] = field(default_factory=list)
    values: dict[int, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)

    @classmethod
    def take(cls, model: nn.Module, copy_values: bool = False) -> Snapshot:
        snap = cls()
        for p in model.parameters():
            data = p.data.clone() if copy_values else p.data
            grad = p.grad.clone() if copy_values and p.grad is not None else p.grad
            snap.params.append((p, data, grad))
        for m in model.modules():
            snap.trees.append((m, dict(m._modules), dict(m._parameters), dict(m._buffers)))
            for name, b in m._buffers.items():
                snap.buffers.append((m, name, b))
                if copy_values and b is not None and id(b) not in snap.values:
                    snap.values[id(b)] = (b, b.clone())
            snap.attrs[m] = {k: v for k, v in m.__dict__.items() if k not in _INTERNAL}
        snap.cfgs = [(c, {k: v if _is_config(v) else copy.deepcopy(v)
                          for k, v in c.__dict__.items()}) for c in _all_configs(model)]
        return snap

    def restore(self) -> None:
        for m, modules, params, buffers in self.trees:
            for table, saved in ((m._modules, modules), (m._parameters, params),
                                 (m._buffers, buffers)):
                table.clear()
                table.update(saved)
        for p, data, grad in self.params:
            p.data = data
            p.grad = grad
        for buf, saved in self.values.values():
            with torch.no_grad():
                buf.set_(saved)
        for m, name, b in self.buffers:
            m._buffers[name] = b
        for m, attrs in self.attrs.items():
            for k in [k for k in m.__dict__ if k not in _INTERNAL and k not in attrs]:
                del m.__dict__[k]
            m.__dict__.update(attrs)
        for cfg, state in self.cfgs:
            cfg.__dict__.clear()
            cfg.__dict__.update(state)


@contextlib.contextmanager
def transaction(model: nn.Module, copy_values: bool = False) -> Iterator[Snapshot]:
    """All steps inside or none: on any exception the model is put back exactly as it was
    (:class:`Snapshot`; ``copy_values`` for steps that write into tensors in place) and
    the exception propagates. Transactions nest: an inner one that fails restores its own
    start, the outer one its own."""
    snap = Snapshot.take(model, copy_values)
    try:
        yield snap
    except BaseException:
        snap.restore()
        raise


def keep_index(size: int, removed: list[int]) -> torch.Tensor:
    """Indices in ``range(size)`` not in ``removed``."""
    mask = torch.ones(size, dtype=torch.bool)
    mask[torch.as_tensor(removed, dtype=torch.long)] = False
    return mask.nonzero().flatten()


def cut_tensor(t: torch.Tensor, dim: int, removed: list[int]) -> torch.Tensor:
    """``t`` without indices ``removed`` along ``dim`` (a new contiguous tensor)."""
    idx = keep_index(t.shape[dim], removed).to(t.device)
    return t.detach().index_select(dim, idx).contiguous()


def tensor_owners(model: nn.Module) -> dict[str, tuple[str, Any]]:
    """``{name: ("param", Parameter) | ("buffer", [(module, attr), ...])}`` by canonical
    name (the first name ``named_parameters``/``named_buffers`` gives)."""
    out: dict[str, tuple[str, Any]] = {}
    for name, p in model.named_parameters():
        out[name] = ("param", p)
    holders: dict[int, list[tuple[nn.Module, str]]] = {}
    for m in model.modules():
        for attr, b in m._buffers.items():
            if b is not None:
                holders.setdefault(id(b), []).append((m, attr))
    for name, b in model.named_buffers():
        out[name] = ("buffer", holders[id(b)])
    return out


def apply_cut(owners: dict[str, tuple[str, Any]], name: str, dim: int,
              removed: list[int]) -> None:
    """Cut tensor ``name`` in place (see module docstring)."""
    kind, obj = owners[name]
    if kind == "param":
        p = obj
        grad = p.grad
        p.data = cut_tensor(p.data, dim, removed)
        if grad is not None:
            p.grad = cut_tensor(grad, dim, removed)
        return
    m0, a0 = obj[0]
    new = cut_tensor(m0._buffers[a0], dim, removed)
    for m, attr in obj:
        m._buffers[attr] = new
