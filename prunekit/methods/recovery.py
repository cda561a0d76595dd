"""Recovery: a fine-tuning loop with checkpoints and exact resume, distillation, int8.

:func:`fit` trains on in-memory tensors. The batch order of epoch ``e`` is a permutation
drawn from a generator seeded with ``(seed, e)``, so a run interrupted at any step and
resumed from its checkpoint (model, optimizer, RNG state, position in the epoch) ends
bit-identical to an uninterrupted one. Under ``torchrun`` with DistributedDataParallel
each rank takes a disjoint, equal-sized shard of the same permutation; only rank 0
writes checkpoints.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "sgd": lambda params, lr, wd: torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=wd),
    "adam": lambda params, lr, wd: torch.optim.Adam(params, lr=lr, weight_decay=wd),
    "adamw": lambda params, lr, wd: torch.optim.AdamW(params, lr=lr, weight_decay=wd),
}


@dataclass
class FitConfig:
    """Settings of :func:`fit`.

    ``checkpoint`` is a file path; with ``resume=True`` an existing checkpoint is
    continued. ``checkpoint_every`` steps (0: only at the end of each epoch).
    ``distill_alpha`` > 0 mixes in distillation from ``teacher`` at ``temperature``.
    """

    epochs: int = 1
    batch_size: int = 128
    lr: float = 1e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    seed: int = 0
    checkpoint: str | os.PathLike | None = None
    checkpoint_every: int = 0
    resume: bool = True
    distill_alpha: float = 0.0
    temperature: float = 4.0
    progress: bool = True

    def __post_init__(self) -> None:
        if self.epochs < 0 or self.batch_size < 1:
            raise ValueError("FitConfig.epochs must be >= 0 and batch_size >= 1")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"FitConfig.optimizer must be one of {tuple(OPTIMIZERS)}")
        if not 0.0 <= self.distill_alpha <= 1.0 or self.temperature <= 0:
            raise ValueError("FitConfig.distill_alpha must be in [0, 1], temperature > 0")


@dataclass
class FitResult:
    """What :func:`fit` did: optimizer steps taken (in total) and the mean loss per epoch."""

    steps: int
    epoch_losses: list[float] = field(default_factory=list)
    resumed_from: int | None = None


def make_optimizer(model: nn.Module, config: FitConfig) -> torch.optim.Optimizer:
    """The optimizer named in ``config`` over ``model.parameters()``."""
    return OPTIMIZERS[config.optimizer](model.parameters(), config.lr, config.weight_decay)


def distill_loss(student: torch.Tensor, teacher: torch.Tensor, target: torch.Tensor,
                 temperature: float, alpha: float) -> torch.Tensor:
    """``α·T²·KL(softmax(t/T) ‖ softmax(s/T)) + (1 − α)·CE(s, y)`` (Hinton et al. 2015)."""
    ce = F.cross_entropy(student, target)
    if alpha == 0.0:
        return ce
    kl = F.kl_div(F.log_softmax(student / temperature, dim=1),
                  F.log_softmax(teacher / temperature, dim=1), log_target=True,
                  reduction="batchmean")
    return alpha * temperature**2 * kl + (1.0 - alpha) * ce


def _rank_world() -> tuple[int, int]:
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[torch.Tensor]:
    """This rank's batches of epoch ``epoch``: a seeded permutation, sharded across ranks."""
    gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
    perm = torch.randperm(n, generator=gen)
    rank, world = _rank_world()
    per_rank = n // world
    mine = perm[rank * per_rank:(rank + 1) * per_rank]
    return list(torch.split(mine, batch_size))


@dataclass
class _Position:
    """Where training stands: the next batch to run is ``batch`` of ``epoch``."""

    step: int = 0
    epoch: int = 0
    batch: int = 0
    running: float = 0.0
    losses: list[float] = field(default_factory=list)
    resumed_from: int | None = None


def _save(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def _checkpoint(path, model, optimizer, pos: _Position) -> None:
    if path is None or _rank_world()[0] != 0:
        return
    _save(Path(path), {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                       "step": pos.step, "epoch": pos.epoch, "batch": pos.batch,
                       "running": pos.running, "losses": pos.losses,
                       "rng": torch.get_rng_state()})


def _progress(enabled: bool, total: int, start: int):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=start, disable=not enabled or _rank_world()[0] != 0,
                desc="fit", leave=False)




def _restore_masks(model: nn.Module, state: dict) -> None:
    """Re-create the masks a checkpoint was saved with (keys ``….parametrizations.w.0.mask``)."""
    from prunekit.methods.masks import apply_masks

    masks = {}
    for key, value in state.items():
        head, sep, tail = key.partition(".parametrizations.")
        if sep and tail.endswith(".0.mask"):
            masks[f"{head}.{tail.split('.')[0]}" if head else tail.split(".")[0]] = value
        elif key.startswith("parametrizations.") and key.endswith(".0.mask"):
            masks[key.split(".")[1]] = value
    if masks:
        apply_masks(model, masks)


def _resume(config: FitConfig, model: nn.Module, optimizer: Any) -> _Position:
    path = Path(config.checkpoint) if config.checkpoint is not None else None
    if path is None or not config.resume or not path.is_file():
        return _Position()
    state = torch.load(path, map_location="cpu", weights_only=True)
    _restore_masks(model, state["model"])
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["rng"])
    return _Position(state["step"], state["epoch"], state["batch"], float(state["running"]),
                     list(state["losses"]), state["step"])


LossFn = Callable[[nn.Module, Any, Any, "nn.Module | None"], torch.Tensor]


def fit(model: nn.Module, data: tuple[Any, Any], config: FitConfig,
        optimizer: Any = None, teacher: nn.Module | None = None,
        on_step: Callable[[int, nn.Module], None] | None = None,
        loss_fn: LossFn | None = None) -> FitResult:
    """Train ``model`` on ``data = (X, y)`` (cross-entropy, or distillation with a teacher).

    ``optimizer`` may be any object with ``step``/``zero_grad``/``state_dict`` (e.g. a
    :class:`~prunekit.methods.ProximalGroupLasso`); default: ``make_optimizer``.
    ``on_step(step, model)`` runs after every optimizer step (schedules, lottery rewind
    points); an exception there interrupts training and the last checkpoint resumes it.

    ``loss_fn(model, xb, yb, teacher) -> loss`` replaces the built-in loss (transformers,
    embedding distillation, any task): ``X`` may then be a tensor or a dict of tensors
    batched along dim 0 (e.g. a tokenizer's output) and ``y`` a tensor or None.
    """
    x, y = data
    n = _length(x)
    if loss_fn is None and (y is None or isinstance(x, dict)):
        raise ValueError("data: the built-in loss needs (X tensor, y tensor); pass loss_fn= "
                         "for dict inputs or unlabeled data")
    if y is not None and len(y) != n:
        raise ValueError(f"data: {n} inputs but {len(y)} targets")
    optimizer = optimizer if optimizer is not None else make_optimizer(model, config)
    alpha = config.distill_alpha if teacher is not None else 0.0
    pos = _resume(config, model, optimizer)
    steps_per_epoch = len(epoch_batches(n, config.batch_size, config.seed, 0))
    bar = _progress(config.progress, steps_per_epoch * config.epochs, pos.step)
    try:
        while pos.epoch < config.epochs:
            model.train()
            batches = epoch_batches(n, config.batch_size, config.seed, pos.epoch)
            while pos.batch < len(batches):
                idx = batches[pos.batch]
                yb = None if y is None else y[idx]
                if loss_fn is not None:
                    pos.running += _custom_step(model, optimizer, teacher, _take(x, idx), yb,
                                                loss_fn)
                else:
                    pos.running += _train_step(model, optimizer, teacher, x[idx], yb,
                                               config.temperature, alpha)
                pos.step += 1
                pos.batch += 1
                bar.update(1)
                if on_step is not None:
                    on_step(pos.step, model)
                if config.checkpoint_every and pos.step % config.checkpoint_every == 0:
                    _checkpoint(config.checkpoint, model, optimizer, pos)
            pos.losses.append(pos.running / max(len(batches), 1))
            pos.epoch, pos.batch, pos.running = pos.epoch + 1, 0, 0.0
            _checkpoint(config.checkpoint, model, optimizer, pos)
    finally:
        bar.close()
    return FitResult(pos.step, pos.losses, pos.resumed_from)


def _length(x: Any) -> int:
    """Number of samples in a tensor or a dict of tensors (all the same length)."""
    if isinstance(x, dict):
        sizes = {k: len(v) for k, v in x.items()}
        if not sizes or len(set(sizes.values())) != 1:
            raise ValueError(f"data: dict inputs must be non-empty tensors of one length, "
                             f"got lengths {sizes}")
        return next(iter(sizes.values()))
    return len(x)


def _take(x: Any, idx: torch.Tensor) -> Any:
    return {k: v[idx] for k, v in x.items()} if isinstance(x, dict) else x[idx]


def _custom_step(model, optimizer, teacher, xb, yb, loss_fn) -> float:
    optimizer.zero_grad()
    loss = loss_fn(model, xb, yb, teacher)
    if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
        raise TypeError("loss_fn must return a scalar tensor")
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def _train_step(model, optimizer, teacher, xb, yb, temperature, alpha) -> float:
    optimizer.zero_grad()
    out = model(xb)
    if teacher is not None and alpha > 0:
        with torch.no_grad():
            t_out = teacher(xb)
        loss = distill_loss(out, t_out, yb, temperature, alpha)
    else:
        loss = F.cross_entropy(out, yb)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


@torch.no_grad()
def evaluate(model: nn.Module, data: tuple[torch.Tensor, torch.Tensor],
             batch_size: int = 1024) -> float:
    """Top-1 accuracy of ``model`` on ``data = (X, y)``, in ``[0, 1]``."""
    x, y = data
    was = model.training
    model.eval()
    correct = 0
    for xb, yb in zip(torch.split(x, batch_size), torch.split(y, batch_size)):
        correct += int((model(xb).argmax(dim=1) == yb).sum())
    model.train(was)
    return correct / max(len(y), 1)


def quantize_int8(model: nn.Module) -> nn.Module:
    """Post-training dynamic int8 quantization of every ``nn.Linear`` (a new model; CPU).

    Uses ``torch.ao.quantization.quantize_dynamic``, which torch marks deprecated in favor
    of torchao; its deprecation warning is silenced here (it still works on torch 2.11–2.14).
    """
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
        from torch.ao.quantization import quantize_dynamic

        return quantize_dynamic(copy.deepcopy(model).cpu().eval(), {nn.Linear},
                                dtype=torch.qint8)
