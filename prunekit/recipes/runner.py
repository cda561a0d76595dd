"""Run a recipe: (train) → check → prune → fine-tune → check → measure → report, then save.

The dense model is never modified: it is deep-copied and the copy is pruned (with a
``train:`` section a copy is trained first and becomes the dense baseline). Methods are a
registry (``PRUNE_METHODS``) of ``fn(model, example, job, log) -> (plan, curves)``.

Both models go through the collapse checks of :mod:`prunekit.measure.guards` (chance
accuracy, constant outputs, all-zero layers). A dense baseline that fails stops the run
*before* any pruning time is spent (:class:`~prunekit.measure.guards.QualityError`); a
pruned model that fails is measured and reported like any other, with
``JobResult.ok`` False and the one-line reasons in ``JobResult.failures`` and in the
report's ``"checks"`` entry. ``checks.allow_collapse`` turns both into recorded
warnings (status ``"allowed"``).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from prunekit.measure.guards import Checks, ModelCheck, QualityError, check_model
from prunekit.recipes.schema import Recipe, RecipeError
from prunekit.recipes.specs import Dataset, ModelSpec, example_inputs

CHECK_BATCH = 8  # inputs the constant-output check compares (two would do; cheap)

Log = Callable[[str], None]


@dataclass
class Job:
    """Everything a run needs; ``config`` is saved as ``config.json``."""

    model: ModelSpec
    data: Dataset
    recipe: Recipe
    title: str = "prunekit run"
    config: dict[str, Any] = field(default_factory=dict)
    progress: bool = True


@dataclass
class JobResult:
    """The dense and pruned models, the plan, the comparison, the report data and the
    collapse checks (``ok`` False: the pruned model collapsed; ``failures`` say how)."""

    dense: nn.Module
    pruned: nn.Module
    plan: Any
    comparison: Any
    report: dict[str, Any]
    checks: Checks = field(default_factory=Checks)

    @property
    def ok(self) -> bool:
        return self.checks.ok

    @property
    def failures(self) -> list[str]:
        return self.checks.failures


def _fit_config(job: Job, epochs: int, lr: float, batch_size: int, optimizer: str) -> Any:
    from prunekit.methods import FitConfig

    return FitConfig(epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer,
                     seed=job.recipe.seed, progress=job.progress)


def _one_shot(model: nn.Module, example: Any, job: Job, log: Log) -> tuple[Any, dict]:
    """``prunekit.prune`` with the recipe's importance, target and rounding."""
    import prunekit

    r = job.recipe
    log(f"pruning ({r.importance} importance, target {r.target.model_dump(exclude_none=True)})")
    if r.target.speedup is not None:
        result = _to_speedup(model, example, job, log)
    else:
        channels = r.structures is None or "channels" in r.structures
        options = ({"ratio": r.target.ratio, "target_macs": r.target.macs,
                    "importance": r.importance, "round_to": r.round_to,
                    "ignore": r.ignore or None, **_reconstruct_args(job, log)}
                   if channels else {"ratio": r.target.ratio})  # a lone structure's fraction
        result = prunekit.prune(model, example, structures=r.structures, **options)
    for skipped in result.skipped:
        log(f"left whole: {skipped.get('module') or skipped.get('op')}: {skipped.get('reason')}")
    for name, res in result.structures.items():
        log(f"{name}: removed {getattr(getattr(res, 'plan', res), 'removed', '?')}")
    from prunekit.surgery import Plan

    plans = result.plans or [result.plan]  # what was applied, in order; a lone channel
    return (plans[0] if len(plans) == 1 and isinstance(plans[0], Plan) else plans), {}


def _reconstruct_args(job: Job, log: Log) -> dict[str, Any]:
    """``calibration`` and ``reconstruct`` for ``prune`` from the recipe's ``reconstruct``
    (calibration: the first ``samples`` training inputs, in batches)."""
    rec = job.recipe.reconstruct
    if rec is None:
        return {}
    if job.data.train is None:
        raise RecipeError(f"reconstruct: needs calibration inputs, but dataset "
                          f"{job.data.spec!r} has no training split (use digits or "
                          f"fashion-mnist)")
    from prunekit.importance import ImportanceContext
    from prunekit.reconstruct import ReconstructConfig

    x = job.data.train[0][:rec.samples]
    batches = list(x.split(rec.batch_size))
    log(f"reconstruct ({rec.mode}) on {len(x)} training inputs")
    return {"calibration": ImportanceContext(batches=batches, n_batches=len(batches)),
            "reconstruct": ReconstructConfig(mode=rec.mode, damping=rec.damping)}


def _to_speedup(model: nn.Module, example: Any, job: Job, log: Log) -> Any:
    """``prunekit.prune(target_speedup=...)`` timed as the recipe's ``measure`` says (device,
    threads, batch size); with ``structures: {depth, channels}`` width or depth is chosen
    by measurement."""
    import prunekit

    r, m = job.recipe, job.recipe.measure
    result = prunekit.prune(model, example, target_speedup=r.target.speedup, device=m.device,
                            threads=m.threads, batch_size=m.batch_size,
                            importance=r.importance, round_to=r.round_to, ignore=r.ignore,
                            structures=list(r.structures) if r.structures else None,
                            prefer=r.target.prefer)
    log(f"measured {result.speedup.measured_speedup:.2f}x faster than dense on {m.device} "
        f"(target {r.target.speedup:g}x, {'met' if result.speedup.met else 'not met'})")
    for note in result.notes:
        log(note)
    return result


class _PathRecorder:
    """``on_step`` callback of proximal training: λ, MAC fraction and channels kept."""

    def __init__(self, opt: Any, every: int) -> None:
        self.opt, self.every = opt, every
        self.total = sum(g.size for g in opt.groups)
        self.steps: list[int] = []
        self.series: dict[str, list[float]] = {"MACs kept (fraction)": [],
                                               "channels kept (fraction)": [], "λ": []}

    def __call__(self, step: int, model: nn.Module) -> None:
        if step % self.every:
            return
        zeros = self.opt.zero_groups()
        zero = sum(len(c) for c in zeros.values())
        self.steps.append(step)
        self.series["MACs kept (fraction)"].append(self.opt.current_cost(zeros) /
                                                   self.opt.dense_cost)
        self.series["channels kept (fraction)"].append(1 - zero / self.total)
        self.series["λ"].append(self.opt.lam)

    def curve(self) -> dict[str, Any]:
        lam = self.series.pop("λ")
        top = max(lam, default=1.0) or 1.0
        self.series["λ / max λ"] = [v / top for v in lam]
        return {"x": self.steps, "xlabel": "optimizer step", "log_x": False,
                "series": self.series, "lambda": lam}


def _proximal(model: nn.Module, example: Any, job: Job, log: Log) -> tuple[Any, dict]:
    """Proximal group-lasso training to a MAC budget, then removal of the zero groups."""
    from prunekit.graph import build_groups
    from prunekit.methods import Budget, ProximalGroupLasso, fit

    r, s = job.recipe, job.recipe.schedule
    groups = build_groups(model, example, ignore=r.ignore)
    inner = torch.optim.SGD(model.parameters(), lr=s.lr, momentum=0.9)
    opt = ProximalGroupLasso(inner, model, groups, lam=s.lam, weights=s.weights,
                             budget=Budget(fraction=r.target.macs, dual_lr=s.dual_lr),
                             example_inputs=example)
    steps = s.epochs * -(-len(job.data.train[0]) // s.batch_size)
    recorder = _PathRecorder(opt, max(1, steps // 25))
    log(f"proximal group lasso: {len(opt.groups)} groups, λ₀={s.lam:g}, budget "
        f"{r.target.macs:.0%} of MACs, {s.epochs} epochs")
    fit(model, job.data.train, _fit_config(job, s.epochs, s.lr, s.batch_size, "sgd"),
        optimizer=opt, on_step=recorder)
    plan = opt.finalize(example)
    for note in plan.notes:  # e.g. non-zero channels cut to meet the budget, and the cost
        log(note)
    return plan, {"regularization_path": recorder.curve()}


PRUNE_METHODS: dict[str, Callable[[nn.Module, Any, Job, Log], tuple[Any, dict]]] = {
    "prune": _one_shot,
    "proximal_group_lasso": _proximal,
}


def _accuracy(data: Dataset) -> Callable[[nn.Module], float] | None:
    if not data.labeled:
        return None
    from prunekit.methods import evaluate

    return lambda model: evaluate(model, data.test)


def _compression_point(label: str, macs_dense: int, model: nn.Module, example: Any,
                       accuracy: float) -> dict[str, Any]:
    from prunekit.measure import count_macs

    return {"compression": macs_dense / max(count_macs(model, example), 1), "accuracy": accuracy,
            "label": label, "series": "this run"}


def check_inputs(job: Job) -> None:
    """What the recipe needs from the data and the machine, before any time is spent."""
    from prunekit.measure.devices import validate_device

    r = job.recipe
    validate_device(r.measure.device)  # ValueError: a typo, or cuda without a GPU
    if job.data.labeled:
        return
    no_labels = f"dataset {job.data.spec!r} has no labels: use digits or fashion-mnist"
    if r.train.epochs:
        raise RecipeError(f"train.epochs trains the dense model, but {no_labels}")
    if r.method == "proximal_group_lasso":
        raise RecipeError(f"method proximal_group_lasso trains the model, but {no_labels}, "
                          f"or method: prune")


def _dense_baseline(job: Job, log: Log) -> nn.Module:
    """``job.model.model``, or (``train.epochs > 0``) a trained copy of it."""
    from prunekit.methods import fit

    t = job.recipe.train
    if not t.epochs:
        return job.model.model
    dense = copy.deepcopy(job.model.model)
    log(f"training the dense model {t.epochs} epochs ({t.optimizer}, lr {t.lr:g})")
    fit(dense, job.data.train, _fit_config(job, t.epochs, t.lr, t.batch_size, t.optimizer))
    return dense.eval()


def check(spec: ModelSpec, data: Dataset, model: nn.Module, role: str,
          accuracy: float | None, margin: float, seed: int = 0) -> ModelCheck:
    """:func:`~prunekit.measure.guards.check_model` on ``CHECK_BATCH`` inputs of ``data``;
    ``accuracy`` (on ``data.test``) is compared with the chance level of its labels."""
    labels = data.test[1] if data.labeled and accuracy is not None else None
    n_classes = None
    if labels is not None:
        n_classes = int(max(data.train[1].max(), labels.max())) + 1
    inputs = example_inputs(spec, data, CHECK_BATCH, seed)
    return check_model(model, role, inputs, accuracy, labels, n_classes, margin)


def _check(job: Job, model: nn.Module, role: str, accuracy: float | None) -> ModelCheck:
    return check(job.model, job.data, model, role, accuracy, job.recipe.checks.chance_margin,
                 job.recipe.seed)


ALLOW_HINT = "checks.allow_collapse: true in the recipe (or --allow-collapse) runs it anyway"


def _check_dense(job: Job, dense: nn.Module, checks: Checks, accuracy: float | None) -> None:
    """Fail before pruning when the dense baseline itself is not a working model."""
    found = checks.add(_check(job, dense, "dense", accuracy))
    if found.failures and not checks.allow_collapse:
        fix = ("is it trained? give --weights, or add a train: section to the recipe"
               if found.accuracy is not None else "is it the model you meant?")
        raise QualityError(f"{found.failures[0]}; {fix}; {ALLOW_HINT}", checks)


def run_job(job: Job, log: Log = lambda message: None) -> JobResult:
    """(Train,) check, prune a copy of the dense model per the recipe, fine-tune, check,
    measure and report. Raises ValueError (RecipeError) for inputs the recipe cannot use and
    :class:`~prunekit.measure.guards.QualityError` when the dense baseline fails its checks
    (unless ``checks.allow_collapse``); a pruned model that fails is returned with
    ``ok`` False."""
    from prunekit.measure import compare, count_macs
    from prunekit.methods import fit
    from prunekit.report import build_report, layer_stats

    r = job.recipe
    check_inputs(job)
    torch.manual_seed(r.seed)
    dense = _dense_baseline(job, log)
    example = example_inputs(job.model, job.data, 1, r.seed)
    accuracy, points = _accuracy(job.data), []
    checks = Checks(allow_collapse=r.checks.allow_collapse, margin=r.checks.chance_margin)
    acc_dense = accuracy(dense) if accuracy is not None else None
    _check_dense(job, dense, checks, acc_dense)
    pruned = copy.deepcopy(dense)
    plan, curves = PRUNE_METHODS[r.method](pruned, example, job, log)
    if accuracy is not None:
        macs_dense = count_macs(dense, example)
        points = [_compression_point("dense", macs_dense, dense, example, acc_dense),
                  _compression_point("cut", macs_dense, pruned, example, accuracy(pruned))]
    if r.finetune.epochs and job.data.labeled:
        f = r.finetune
        log(f"fine-tuning {f.epochs} epochs ({f.optimizer}, lr {f.lr:g})")
        fit(pruned, job.data.train, _fit_config(job, f.epochs, f.lr, f.batch_size, f.optimizer))
        points.append(_compression_point("fine-tuned", macs_dense, pruned, example,
                                         accuracy(pruned)))
    m = r.measure
    timing = example_inputs(job.model, job.data, m.batch_size, r.seed)
    log(f"measuring dense vs pruned ({m.device}, {m.threads} threads, batch {m.batch_size})")
    comparison = compare(dense, pruned, timing, eval_fn=accuracy, device=m.device,
                         threads=m.threads, repeats=m.repeats, measure_energy=m.energy)
    if points:
        curves["accuracy_vs_compression"] = points
    checks.add(_check(job, pruned, "pruned", comparison.accuracy_pruned))
    for failure in checks.failures:
        log(f"check failed: {failure}")
    report = build_report(job.title, comparison, layer_stats(dense, pruned, example), plan,
                          job.config, curves)
    report["checks"] = checks.to_dict()
    return JobResult(dense, pruned, plan, comparison, report, checks)


def save_job(result: JobResult, job: Job, directory: str | Path) -> dict[str, Path]:
    """Write config, plan, pruned weights (``prunekit.save``) and the report into a run dir."""
    import prunekit
    from prunekit.report import write_report

    directory = Path(directory)
    (directory / "config.json").write_text(json.dumps(job.config, indent=1, default=str))
    plan = result.plan
    if isinstance(plan, list):  # several structures: every plan, in the order applied
        text = json.dumps([p.to_dict() for p in plan], indent=1)
    else:
        text = plan.to_json() if hasattr(plan, "to_json") else json.dumps(plan, indent=1)
    (directory / "plan.json").write_text(text)
    example = example_inputs(job.model, job.data, 1, job.recipe.seed)  # load re-checks it
    prunekit.save(result.pruned, directory / "model", plan=plan, example_inputs=example)
    written = write_report(directory, result.report)
    return {"config": directory / "config.json", "plan": directory / "plan.json",
            "model": directory / "model", **written}


def job_config(model_spec: str, data_spec: str, recipe: Recipe, **extra: Any) -> dict[str, Any]:
    """The JSON saved as ``config.json``: specs, the validated recipe, versions."""
    import prunekit

    return {"model": model_spec, "data": data_spec, "recipe": recipe.model_dump(),
            "prunekit": prunekit.__version__, "torch": torch.__version__, **extra}
