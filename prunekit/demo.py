"""The embedded demo: no downloads, under a minute on two CPU cores.

1. train a small CNN on scikit-learn's 8×8 digits for a few seconds;
2. prune it with proximal group-lasso training to a MAC budget (λ adapted by dual ascent),
   then physically remove the channels that reached exactly zero;
3. fine-tune, measure dense vs pruned (:func:`prunekit.measure.compare`: measured latency,
   ρ, memory, energy when a counter is readable, accuracy retention) and report (terminal
   tables, ``report.html``, PNG plots, ``report.json``) under ``runs/<timestamp>/``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from prunekit.recipes.runner import Job, JobResult, Log, job_config, run_job
from prunekit.recipes.schema import Recipe, parse_recipe
from prunekit.recipes.specs import ModelSpec, load_dataset

DEMO_SPEC = "prunekit:digits-cnn"
# lets `prunekit prune prunekit/demo.py:digits_cnn` default to digits-sized inputs
INPUT_SHAPE = (1, 8, 8)


def digits_cnn(width: int = 16) -> nn.Module:
    """Conv-BN-ReLU ×4 (8×8 → 4×4 → 2×2) and a linear classifier (0.75 M MACs per image at
    width 16)."""

    def block(c_in: int, c_out: int) -> list[nn.Module]:
        return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True)]

    return nn.Sequential(
        *block(1, width), *block(width, 2 * width), nn.MaxPool2d(2),
        *block(2 * width, 4 * width), nn.MaxPool2d(2),
        *block(4 * width, 4 * width), nn.Flatten(), nn.Linear(4 * width * 4, 10),
    )


@dataclass
class DemoConfig:
    """Knobs of :func:`run_demo` (the CLI exposes them as options)."""

    epochs: int = 6
    prox_epochs: int = 4
    finetune_epochs: int = 3
    target_macs: float = 0.4
    width: int = 16
    threads: int = 2
    train_threads: int = 1
    repeats: int = 30
    batch_size: int = 256
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "prox_epochs", "width", "threads", "train_threads",
                     "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.finetune_epochs < 0:
            raise ValueError(f"finetune_epochs must be >= 0, got {self.finetune_epochs}")
        if not 0 < self.target_macs <= 1:
            raise ValueError(f"target_macs must be in (0, 1], got {self.target_macs}")
        if self.repeats < 2:
            raise ValueError(f"repeats must be >= 2, got {self.repeats}")


def demo_recipe(config: DemoConfig) -> Recipe:
    """The recipe the demo runs (also written to the run's ``config.json``)."""
    return parse_recipe({
        "method": "proximal_group_lasso",
        "target": {"macs": config.target_macs},
        "schedule": {"epochs": config.prox_epochs, "lam": 1e-3, "lr": 0.05, "batch_size": 64,
                     "dual_lr": 0.02},  # slow λ growth: a fast one shrank every channel
        "finetune": {"epochs": config.finetune_epochs, "lr": 2e-3, "batch_size": 64},
        "measure": {"batch_size": config.batch_size, "threads": config.threads,
                    "repeats": config.repeats},
        "seed": config.seed,
    })


def train_dense(config: DemoConfig, data: object, progress: bool) -> nn.Module:
    """The dense baseline: ``epochs`` of Adam on the digits training split."""
    from prunekit.methods import FitConfig, fit

    torch.manual_seed(config.seed)
    model = digits_cnn(config.width)
    fit(model, data.train, FitConfig(epochs=config.epochs, batch_size=64, lr=5e-3,
                                     seed=config.seed, progress=progress))
    return model.eval()


def build_demo_job(config: DemoConfig, progress: bool = True, log: Log = print) -> Job:
    """Load digits, train the dense CNN and describe the pruning job."""
    data = load_dataset("digits")
    log(f"training the dense CNN on digits ({len(data.train[0])} images, {config.epochs} epochs)")
    dense = train_dense(config, data, progress)
    recipe = demo_recipe(config)
    spec = ModelSpec(DEMO_SPEC, dense, default_shape=data.sample_shape)
    return Job(spec, data, recipe, title="prunekit demo: digits CNN, proximal group lasso",
               config=job_config(DEMO_SPEC, "digits", recipe, demo=vars(config)),
               progress=progress)


def run_demo(config: DemoConfig | None = None, progress: bool = True,
             log: Log = print) -> tuple[Job, JobResult]:
    """Train, prune, fine-tune, measure and build the report (not yet saved).

    Training runs on ``train_threads`` intra-op threads (default 1): this CNN is too small
    to gain from more, and on a busy machine OpenMP threads waiting for each other made
    training 6× slower (9 s vs 61 s for two epochs at load 11). Timing still uses
    ``threads``, pinned by the measurement itself.
    """
    from prunekit.measure.timing import cpu_threads

    config = config or DemoConfig()
    with cpu_threads(config.train_threads):
        job = build_demo_job(config, progress, log)
        return job, run_job(job, log)
