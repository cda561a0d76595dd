"""Calibration passes: gradients and activation statistics, computed once per context.

Both passes leave the user's model exactly as they found it: modules are put in eval
mode (so BatchNorm running statistics are not updated and dropout is off) and their
training flags restored, ``requires_grad`` and ``.grad`` of every parameter are restored,
and every hook is removed in a ``finally`` block.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from prunekit.importance.consumers import InputSpec, input_spec
from prunekit.importance.context import ImportanceContext, batch_loss, call_model


@dataclass
class GradStats:
    """Gradient statistics of one parameter over the calibration batches.

    ``mean = (1/B) Σ_b ∂L_b/∂w`` and ``sq_mean = (1/B) Σ_b (∂L_b/∂w)²`` (the diagonal of
    the empirical Fisher information).
    """

    mean: torch.Tensor
    _sq_mean: torch.Tensor | None = None

    @property
    def sq_mean(self) -> torch.Tensor:
        if self._sq_mean is None:  # a single batch: the mean *is* the batch gradient
            self._sq_mean = self.mean * self.mean
        return self._sq_mean


@dataclass
class ActStats:
    """Activation statistics of one call of a module, per feature along one ``dim``.

    ``abs_sum[f] = Σ |a_f|`` and ``nonpos[f] = #{a_f ≤ 0}`` over ``count`` elements per
    feature (all batches and positions); ``seq`` orders the calls in execution order.
    """

    abs_sum: torch.Tensor
    nonpos: torch.Tensor
    count: int = 0
    seq: int = 0


ActTable = dict[tuple[str, int], dict[tuple[int, int], ActStats]]
"""``{(module_name, dim): {(call_index, width): ActStats}}``."""


@dataclass
class Activations:
    """Statistics of module outputs (every module) and inputs (consuming layers only)."""

    outputs: ActTable
    inputs: ActTable


@contextmanager
def preserved_state(model: nn.Module, need_grad: bool) -> Iterator[list]:
    """Eval mode (and ``requires_grad`` on floating params if ``need_grad``) for the block.

    Yields a list to which the caller appends hook handles; they are removed on exit.
    """
    training = [(m, m.training) for m in model.modules()]
    params = list(model.parameters())
    saved = [(p, p.requires_grad, p.grad) for p in params]
    handles: list = []
    try:
        model.eval()
        if need_grad:
            for p in params:
                p.grad = None
                if p.is_floating_point():
                    p.requires_grad_(True)
        yield handles
    finally:
        for handle in handles:
            handle.remove()
        for p, requires_grad, grad in saved:
            p.requires_grad_(requires_grad)
            p.grad = grad
        for module, flag in training:
            module.training = flag


def gradient_stats(
    model: nn.Module, ctx: ImportanceContext, criterion: str
) -> dict[str, GradStats]:
    """Per-parameter :class:`GradStats` keyed by every (also tied) parameter name."""
    return ctx.cached("gradients", model, lambda: _gradient_pass(model, ctx, criterion))


def activation_stats(model: nn.Module, ctx: ImportanceContext, criterion: str) -> Activations:
    """:class:`Activations`: module outputs and consuming layers' inputs, over the batches.

    ``dim`` is stored both non-negative and negative; the batch dimension 0 is skipped
    for outputs with two or more dimensions. A module called several times per forward
    (a shared ReLU) keeps one entry per call, so its calls are never mixed.
    """
    return ctx.cached("activations", model, lambda: _activation_pass(model, ctx, criterion))


def _gradient_pass(
    model: nn.Module, ctx: ImportanceContext, criterion: str
) -> dict[str, GradStats]:
    batches = ctx.calibration_batches(criterion)
    named = [(n, p) for n, p in model.named_parameters(remove_duplicate=False)]
    unique = {id(p): p for _, p in named if p.is_floating_point()}
    sums: dict[int, torch.Tensor] = {}
    squares: dict[int, torch.Tensor] = {}
    with preserved_state(model, need_grad=True), torch.enable_grad():
        for inputs, target in _progress(batches, ctx, f"{criterion}: gradients"):
            for p in unique.values():
                p.grad = None
            batch_loss(ctx, call_model(model, inputs), target).backward()
            _accumulate_grads(unique, sums, squares, single=len(batches) == 1)
    n = len(batches)
    stats = {}
    for k, p in unique.items():
        mean = sums[k].div_(n) if k in sums else torch.zeros_like(p, dtype=torch.float32)
        sq_mean = squares[k].div_(n) if k in squares else None
        stats[k] = GradStats(mean, sq_mean)
    return {name: stats[id(p)] for name, p in named if id(p) in unique}


def _accumulate_grads(params: dict, sums: dict, squares: dict, single: bool) -> None:
    """Add each ``p.grad`` (now owned by us: ``p.grad`` is reset per batch) to the sums."""
    for k, p in params.items():
        if p.grad is None:
            continue
        grad = p.grad.detach().float()
        if k not in sums:
            sums[k] = grad
            if not single:   # one batch: the square of the mean is computed on demand
                squares[k] = grad * grad
        else:
            sums[k] += grad
            squares[k].addcmul_(grad, grad)


def _activation_pass(model: nn.Module, ctx: ImportanceContext, criterion: str) -> Activations:
    batches = ctx.calibration_batches(criterion)
    recorder = _Recorder()
    names: dict[int, list[str]] = {}
    modules = {}
    for name, module in model.named_modules(remove_duplicate=False):
        names.setdefault(id(module), []).append(name)
        modules[id(module)] = module
    with preserved_state(model, need_grad=False) as handles, torch.no_grad():
        for key, module in modules.items():
            hook = recorder.hook(names[key], input_spec(module))
            handles.append(module.register_forward_hook(hook))
        for inputs, _ in _progress(batches, ctx, f"{criterion}: activations"):
            recorder.new_batch()
            call_model(model, inputs)
    return Activations(recorder.outputs, recorder.inputs)


@dataclass
class _Recorder:
    """Accumulates :class:`ActStats` per (module, dim) and per call of the module.

    Calls are told apart by their index within a batch (the k-th call of a module in
    every batch is the same call site) and ordered by ``seq``, the position of the call's
    end among all module calls of the first batch. Outputs are recorded along every dim
    but the batch; inputs only for consuming layers (see :mod:`.consumers`), along the
    dim that carries their input features.
    """

    outputs: ActTable = field(default_factory=dict)
    inputs: ActTable = field(default_factory=dict)
    calls: dict[int, int] = field(default_factory=dict)
    seq: int = 0

    def new_batch(self) -> None:
        self.calls.clear()
        self.seq = 0

    def hook(self, names: list[str], spec: InputSpec | None):
        def record(module: nn.Module, args: tuple, output: object) -> None:
            call = self.calls.get(id(module), 0)
            self.calls[id(module)] = call + 1
            self.seq += 1
            if _is_activation(output):
                a = output.detach()
                first = 1 if a.dim() >= 2 else 0   # dim 0 is the batch
                self._record(self.outputs, names, call, a, range(first, a.dim()))
            if spec is not None and args and _is_activation(args[0]):
                a = args[0].detach()
                self._record(self.inputs, names, call, a, [spec.input_dim % a.dim()])

        return record

    def _record(self, table: ActTable, names: list[str], call: int, a: torch.Tensor,
                dims: Iterable[int]) -> None:
        absval, nonpos = a.abs(), (a <= 0)
        for d in dims:
            other = [i for i in range(a.dim()) if i != d]
            s_abs = absval.sum(other) if other else absval
            s_np = nonpos.sum(other) if other else nonpos
            for name in names:
                entry = self._entry(table, (name, d), (name, d - a.dim()), call, a.shape[d])
                entry.abs_sum += s_abs.to("cpu", torch.float64)
                entry.nonpos += s_np.to("cpu", torch.float64)
                entry.count += a.numel() // a.shape[d]

    def _entry(self, table: ActTable, pos: tuple, neg: tuple, call: int, width: int) -> ActStats:
        calls = table.get(pos) or table.get(neg) or {}
        table[pos] = table[neg] = calls
        entry = calls.get((call, width))
        if entry is None:
            zeros = torch.zeros(width, dtype=torch.float64)
            entry = calls[(call, width)] = ActStats(zeros, zeros.clone(), seq=self.seq)
        return entry


def _is_activation(x: object) -> bool:
    return isinstance(x, torch.Tensor) and x.is_floating_point() and x.dim() > 0


def _progress(batches: list, ctx: ImportanceContext, desc: str):
    return tqdm(batches, desc=desc, disable=not ctx.progress, leave=False)
