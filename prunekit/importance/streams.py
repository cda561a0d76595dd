"""Read one layer's inputs or outputs during a forward pass, stopping once they are seen.

Second-order scores and layer-wise reconstruction look at one layer at a time, batch by
batch (streaming: nothing bigger than one batch's activations is held). :func:`capture`
runs the model on one batch with a hook on the layer, keeps the tensor(s) the layer
reads or writes, and, once the layer's last call of the forward is seen, stops the
forward by raising an internal exception — the rest of the network is not computed.
:func:`execution_order` runs one forward to learn in which order the layers are called
and how often.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from prunekit.importance.context import call_model


class _Stop(Exception):
    """Raised by a hook to end a forward pass early (never escapes :func:`capture`)."""


def capture(model: nn.Module, module: nn.Module, inputs: Any, *, where: str = "input",
            calls: int = 1, detach: bool = True) -> list[torch.Tensor]:
    """The first tensor argument (``where="input"``) or the output (``"output"``) of each
    of the first ``calls`` calls of ``module`` during ``model(inputs)``.

    The forward stops right after the last wanted call. Gradient mode, train/eval mode and
    the model's weights are the caller's business; with ``detach=False`` the tensors keep
    their autograd graph.

    Raises
    ------
    ValueError
        If ``module`` was called fewer than ``calls`` times, or saw no tensor.
    """
    if where not in ("input", "output"):
        raise ValueError(f"where must be 'input' or 'output', got {where!r}")
    seen: list[torch.Tensor] = []

    def keep(t: Any) -> None:
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{type(module).__name__} got or gave no tensor to capture")
        seen.append(t.detach() if detach else t)
        if len(seen) >= calls:
            raise _Stop

    if where == "input":
        handle = module.register_forward_pre_hook(lambda m, args: keep(args[0] if args else None))
    else:
        handle = module.register_forward_hook(lambda m, args, out: keep(_first_tensor(out)))
    try:
        call_model(model, inputs)
    except _Stop:
        pass
    finally:
        handle.remove()
    if len(seen) < calls:
        raise ValueError(f"{type(module).__name__} was called {len(seen)} time(s) in the "
                         f"forward pass, expected {calls}")
    return seen


def execution_order(model: nn.Module, modules: Iterable[str], inputs: Any
                    ) -> list[tuple[str, int]]:
    """``[(name, number of calls)]`` of the named modules in the order of their first call
    during ``model(inputs)`` (no_grad); modules never called are left out."""
    order: dict[str, int] = {}
    handles = []
    for name in modules:
        def count(m: nn.Module, args: Any, name: str = name) -> None:
            order[name] = order.get(name, 0) + 1
        handles.append(model.get_submodule(name).register_forward_pre_hook(count))
    try:
        with torch.no_grad():
            call_model(model, inputs)
    finally:
        for h in handles:
            h.remove()
    return list(order.items())


def _first_tensor(out: Any) -> torch.Tensor | None:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, tuple | list) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    return None
