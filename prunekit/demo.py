"""The embedded demo: ask for a *measured* 2× speedup on this machine, get it, keep accuracy.

No downloads; about a minute on two idle CPU cores.

1. train a small CNN on scikit-learn's 8×8 digits (a few seconds);
2. ``prunekit.prune(target_speedup=2.0)``: channels are cut where a latency model of *this*
   machine says the time goes, and candidates are timed against the dense model until one
   is measured 2× faster (batch 1024, one CPU thread — see :class:`DemoConfig`);
3. fine-tune, then measure dense vs pruned once more (:func:`prunekit.measure.compare`:
   alternating rounds, re-timed while the spread is above 10 %, a 95 % interval on the
   speedup) and report under ``runs/<timestamp>/``;
4. print the target, the measured speedup with its interval, met or missed, and the
   accuracy dense → pruned, with whether it stayed within ``max_accuracy_drop`` of dense.

Every number is measured where it runs: on a busy machine the demo can miss, and then it
says so.
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
    """Knobs of :func:`run_demo` (the CLI exposes them as options).

    ``threads=1``: timing runs on one CPU thread. Profiled on this project's shared 2-core
    machine, two-thread timings of this CNN were bimodal — most passes waited a whole
    scheduler slice for a descheduled OpenMP worker (e.g. ~3 ms vs ~290 ms at batch 64) —
    so they measured the neighbours, not the model; one thread gives a usable interval
    under load and the same kind of speedup on an idle machine (``--threads 2`` to try).
    ``batch_size=1024``: a longer pass averages over more scheduler slices, so its timing
    is steadier on a shared machine (IQR/median of 14–16 % at batch 1024 vs 20–36 % at
    batch 256, load ≈ 16 on 2 cores), and per-pass overhead that pruning cannot remove
    weighs less (width ½ measured 1.7× at batch 64, 2.8× at batch 256, one thread). At
    batch 256 the search accepted a plan it read at 3.0× that measured 1.46× afterwards.
    ``round_to=8``: kept widths are multiples of 8 — finer than the device probe's answer
    for large layers (16, which leaves this 16–64-channel CNN few widths to choose), and no
    layer narrower than 8: plans that cut the second convolution to 4 channels measured
    faster but lost 1.3–3.6 points after fine-tuning. ``finetune_epochs=6``: plans at
    2.2–2.3× measured kept 99.1–99.3 % (dense 99.56 %) after 6 epochs, vs 96–99.1 % after 3.
    ``search_margin=0.15``: the measured search is asked for ``target · 1.15``; the verdict
    is on ``target`` alone, from the independent measurement after fine-tuning. Without
    the margin, a plan the search measured at 2.41× measured 1.85× afterwards at load ≈ 15
    (the search accepts the first plan that reads at or above its target, so noise that
    read high is what it keeps).
    """

    epochs: int = 6
    target_speedup: float = 2.0
    search_margin: float = 0.15
    finetune_epochs: int = 6
    max_accuracy_drop: float = 0.01
    width: int = 16
    threads: int = 1
    train_threads: int = 1
    repeats: int = 30
    batch_size: int = 1024
    round_to: int = 8
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "width", "threads", "train_threads", "batch_size", "round_to"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if isinstance(self.finetune_epochs, bool) or not isinstance(self.finetune_epochs, int) \
                or self.finetune_epochs < 0:
            raise ValueError(f"finetune_epochs must be an integer >= 0, got "
                             f"{self.finetune_epochs!r}")
        if not isinstance(self.target_speedup, int | float) or not 1 < self.target_speedup <= 100:
            raise ValueError(f"target_speedup must be a number in (1, 100], got "
                             f"{self.target_speedup!r}")
        if not isinstance(self.search_margin, int | float) or not 0 <= self.search_margin <= 1:
            raise ValueError(f"search_margin must be in [0, 1], got {self.search_margin!r}")
        if not isinstance(self.max_accuracy_drop, int | float) or \
                not 0 <= self.max_accuracy_drop < 1:
            raise ValueError(f"max_accuracy_drop must be in [0, 1), got "
                             f"{self.max_accuracy_drop!r}")
        if isinstance(self.repeats, bool) or not isinstance(self.repeats, int) or \
                self.repeats < 2:
            raise ValueError(f"repeats must be an integer >= 2, got {self.repeats!r}")


def demo_recipe(config: DemoConfig) -> Recipe:
    """The recipe the demo runs (also written to the run's ``config.json``): the search aims
    at ``target_speedup · (1 + search_margin)``."""
    return parse_recipe({
        "method": "prune",
        "target": {"speedup": round(config.target_speedup * (1 + config.search_margin), 4)},
        "round_to": config.round_to,
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
    title = (f"prunekit demo: digits CNN, {config.target_speedup:g}× faster measured on this "
             f"machine (batch {config.batch_size}, {config.threads} thread"
             f"{'s' * (config.threads != 1)})")
    return Job(spec, data, recipe, title=title,
               config=job_config(DEMO_SPEC, "digits", recipe, demo=vars(config)),
               progress=progress)


def run_demo(config: DemoConfig | None = None, progress: bool = True,
             log: Log = print) -> tuple[Job, JobResult]:
    """Train, prune to the measured target, fine-tune, measure and build the report (not
    yet saved). The report's ``target`` holds the speedup and the accuracy drop allowed, so
    its summary says whether each was met.

    Training runs on ``train_threads`` intra-op threads (default 1): this CNN is too small
    to gain from more, and on a busy machine OpenMP threads waiting for each other made
    training 6× slower (9 s vs 61 s for two epochs at load 11). Timing uses ``threads``,
    pinned by the measurement itself.
    """
    from prunekit.measure.timing import cpu_threads

    config = config or DemoConfig()
    with cpu_threads(config.train_threads):
        job = build_demo_job(config, progress, log)
        result = run_job(job, log)
    result.report["target"] = {"speedup": config.target_speedup,
                               "max_accuracy_drop": config.max_accuracy_drop}
    return job, result
