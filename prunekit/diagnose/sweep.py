"""λ sweep: where proximal group lasso removes redundancy and where capacity collapses.

For each λ a fresh model is trained with :class:`prunekit.methods.ProximalGroupLasso`
(the penalty ``λ·Σ_g w_g‖w_g‖₂`` over the channels of every coupled group), the channels
driven to exactly zero are removed by surgery, and the result is evaluated and
diagnosed. Read the curves together: while accuracy holds, a rising λ removes channels
and the survivors' mean similarity falls (redundancy removed); the *collapse point* is
the smallest λ whose accuracy falls more than ``collapse_drop`` below the smallest λ's.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from prunekit.diagnose.records import Diagnosis

SWEEP_FORMAT = "prunekit.lambda_sweep"


@dataclass
class SweepRecord:
    """One λ: accuracy, channel groups kept (nonzero ``‖w_{g,c}‖₂``) of the total, the
    parameter count after removal, and the diagnosis of the trained (pruned) model."""

    lam: float
    accuracy: float
    groups_kept: int
    groups_total: int
    params: int
    diagnosis: Diagnosis

    @property
    def kept_fraction(self) -> float:
        return self.groups_kept / self.groups_total if self.groups_total else 1.0

    def measures(self, kind: str = "groups") -> dict[str, float | None]:
        """Flat numbers for tables and plots: the ``kind`` summary of the diagnosis
        ("groups": the prunable channels, activations after their nonlinearity;
        "layers": every conv/linear output, the classifier included)."""
        return {"lam": self.lam, "accuracy": self.accuracy, "groups_kept": self.groups_kept,
                "kept_fraction": self.kept_fraction, "params": self.params,
                **self.diagnosis.summary(kind)}

    def to_dict(self) -> dict[str, Any]:
        return {"lam": self.lam, "accuracy": self.accuracy, "groups_kept": self.groups_kept,
                "groups_total": self.groups_total, "params": self.params,
                "summary_groups": self.diagnosis.summary("groups"),
                "summary_layers": self.diagnosis.summary("layers"),
                "diagnosis": self.diagnosis.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SweepRecord:
        return cls(float(data["lam"]), float(data["accuracy"]), int(data["groups_kept"]),
                   int(data["groups_total"]), int(data["params"]),
                   Diagnosis.from_dict(data["diagnosis"]))


@dataclass
class SweepResult:
    """Records in increasing λ, the reference accuracy (smallest λ) and the collapse λ."""

    records: list[SweepRecord]
    collapse_drop: float = 0.02
    notes: list[str] = field(default_factory=list)

    @property
    def reference_accuracy(self) -> float:
        return self.records[0].accuracy

    @property
    def collapse_lam(self) -> float | None:
        """Smallest λ with accuracy < reference − ``collapse_drop`` (None: no collapse)."""
        floor = self.reference_accuracy - self.collapse_drop
        return next((r.lam for r in self.records if r.accuracy < floor), None)

    @property
    def safe_lam(self) -> float:
        """Largest λ below the collapse point (the most pruning before collapse)."""
        collapse = self.collapse_lam
        safe = [r.lam for r in self.records if collapse is None or r.lam < collapse]
        return safe[-1]

    def series(self, key: str, kind: str = "groups") -> list[float | None]:
        """One measure (a key of :meth:`SweepRecord.measures`) across λ."""
        return [r.measures(kind).get(key) for r in self.records]

    def to_dict(self) -> dict[str, Any]:
        return {"format": SWEEP_FORMAT, "collapse_drop": self.collapse_drop,
                "reference_accuracy": self.reference_accuracy,
                "collapse_lam": self.collapse_lam, "safe_lam": self.safe_lam,
                "notes": list(self.notes), "records": [r.to_dict() for r in self.records]}

    def to_json(self, indent: int | None = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SweepResult:
        if not isinstance(data, dict) or data.get("format") != SWEEP_FORMAT:
            raise ValueError("data is not a prunekit λ sweep (format tag missing)")
        return cls([SweepRecord.from_dict(r) for r in data["records"]],
                   float(data["collapse_drop"]), list(data.get("notes", [])))

    def plot(self, path: str | Path) -> Path:
        """The sweep curve (accuracy, groups kept, similarity, erank vs λ) as a PNG."""
        from prunekit.diagnose.plots import plot_sweep

        return plot_sweep(self, path)

    def table(self) -> Any:
        """A ``rich.table.Table`` with one row per λ."""
        from rich.table import Table

        table = Table(title=f"λ sweep (collapse: {self.collapse_lam})")
        for col in ("λ", "accuracy", "kept", "params", "|cos| w", "|corr| a", "erank ratio",
                    "dead"):
            table.add_column(col, justify="right")
        for r in self.records:
            m = r.measures()
            table.add_row(f"{r.lam:.3g}", f"{r.accuracy:.4f}",
                          f"{r.groups_kept}/{r.groups_total}", str(r.params),
                          _fmt(m["weight_cosine_mean_abs"]), _fmt(m["act_correlation_mean_abs"]),
                          _fmt(m["erank_ratio"]), _fmt(m["dead_fraction"]))
        return table


def default_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    """SGD, lr 0.05, momentum 0.9 (the prox step uses the lr)."""
    return torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)


def lambda_sweep(build_model: Callable[[], nn.Module],
                 train_fn: Callable[[nn.Module, Any], Any],
                 eval_fn: Callable[[nn.Module], float], lams: Sequence[float], *,
                 calibration: Any, example_inputs: Any = None,
                 make_optimizer: Callable[[nn.Module], torch.optim.Optimizer] | None = None,
                 finalize: bool = True, collapse_drop: float = 0.02,
                 diagnose_kwargs: dict[str, Any] | None = None, weights: str = "sqrt",
                 plot_path: str | Path | None = None, progress: bool = True) -> SweepResult:
    """Train with proximal group lasso at each λ and record accuracy, groups and redundancy.

    Parameters
    ----------
    build_model
        Returns a fresh model (same initialization each call, for a fair sweep).
    train_fn
        ``train_fn(model, optimizer)`` trains in place; ``optimizer`` is the
        :class:`~prunekit.methods.ProximalGroupLasso` wrapper (e.g.
        ``lambda m, opt: fit(m, train, cfg, optimizer=opt)``).
    eval_fn
        ``eval_fn(model) -> accuracy`` (higher is better).
    lams
        λ values (≥ 0); run in increasing order.
    calibration
        Calibration data for :func:`~prunekit.diagnose.diagnose`.
    example_inputs
        Inputs that trace the model (graph groups, surgery); default: the first two rows
        of the first calibration batch.
    finalize
        Physically remove the zero channels before evaluating and diagnosing (zero-group
        invariance: the outputs do not change).
    collapse_drop
        Accuracy drop (absolute) that marks capacity collapse.
    plot_path
        Also write the sweep plot there.
    """
    from prunekit.diagnose.collect import read_batches
    from prunekit.diagnose.core import diagnose
    from prunekit.graph import build_groups
    from prunekit.methods import ProximalGroupLasso
    from prunekit.methods.proximal import channel_norms

    lams = _check_lams(lams)
    for name, fn in (("build_model", build_model), ("train_fn", train_fn),
                     ("eval_fn", eval_fn)):
        if not callable(fn):
            raise TypeError(f"{name} must be callable, got {type(fn).__name__}")
    if not 0.0 <= collapse_drop <= 1.0:
        raise ValueError(f"collapse_drop must be in [0, 1], got {collapse_drop!r}")
    batches = read_batches(calibration, (diagnose_kwargs or {}).get("max_batches"),
                           (diagnose_kwargs or {}).get("inputs_of"))
    example = example_inputs if example_inputs is not None else _example(batches[0])
    make_optimizer = make_optimizer or default_optimizer
    records = []
    for lam in _bar(lams, progress):
        model = build_model()
        gs = build_groups(model, example)
        opt = ProximalGroupLasso(make_optimizer(model), model, gs, lam=lam, weights=weights,
                                 example_inputs=example)
        train_fn(model, opt)
        norms = [channel_norms(g) for g in opt.groups]
        kept = int(sum(int((n > 0).sum()) for n in norms))
        total = int(sum(n.numel() for n in norms))
        if finalize:
            opt.finalize(example)
        acc = float(eval_fn(model))
        diag = diagnose(model, batches, **{k: v for k, v in (diagnose_kwargs or {}).items()
                                           if k not in ("max_batches", "inputs_of")})
        params = sum(p.numel() for p in model.parameters())
        records.append(SweepRecord(lam, acc, kept, total, params, diag))
    notes = list(dict.fromkeys(n for r in records for n in r.diagnosis.notes))
    result = SweepResult(records, collapse_drop, notes)
    if plot_path is not None:
        result.plot(plot_path)
    return result


def _check_lams(lams: Sequence[float]) -> list[float]:
    try:
        values = sorted(float(v) for v in lams)
    except (TypeError, ValueError) as err:
        raise ValueError(f"lams must be a sequence of numbers: {err}") from err
    if not values:
        raise ValueError("lams: give at least one λ")
    if any(not math.isfinite(v) or v < 0 for v in values):
        raise ValueError(f"lams must be finite and >= 0, got {values}")
    return values


def _example(inputs: Any) -> Any:
    if isinstance(inputs, torch.Tensor) and inputs.dim() >= 1 and inputs.shape[0] > 2:
        return inputs[:2]
    return inputs


def _bar(lams: list[float], enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(lams, desc="λ sweep", disable=not enabled, leave=False)


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"
