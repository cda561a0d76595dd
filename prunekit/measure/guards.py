"""Is the model still a model? Collapse and quality checks that turn a bad run into a failure.

A pruned model can measure faster *because* it no longer computes anything: every channel
zeroed, the same output for every input, accuracy at chance. :func:`check_model` looks at
one model and :class:`Checks` gathers the verdicts of a run (the dense baseline and the
pruned model) into one status. A model fails when

* **its accuracy is at or near chance**: ``accuracy ≤ chance + margin``, where *chance* is
  the best score of a constant guess on the evaluation labels —
  ``max(1 / n_classes, share of the most frequent label)`` — and ``margin`` defaults to
  :data:`CHANCE_MARGIN` (0.05, absolute). Only with labeled data.
* **its outputs are constant**: over the evaluation batch, the first output tensor varies
  by at most ``1e-5`` of its largest magnitude from one input to the next (or is not
  finite anywhere);
* **a layer is all zero**: a module whose weight of two or more dimensions (the kernel of
  a conv, the matrix of a linear or embedding layer — the layers pruning cuts) is exactly
  0 everywhere. Norm layers are not checked: zero-initialised residual BatchNorm scales
  are a legitimate design.

A run whose checks fail is not a result; with ``allow_collapse`` (the user asked for it)
the failures are still listed and the status reads ``"allowed"``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from prunekit.inputs import Inputs, call_model, first_tensor, inference_mode_of

CHANCE_MARGIN = 0.05
CONSTANT_RTOL = 1e-5


class QualityError(Exception):
    """A model failed a collapse/quality check and the user did not allow it.

    Not a ``ValueError``: the input was well-formed; the *result* is bad. ``checks`` holds
    the :class:`Checks` so far.
    """

    def __init__(self, message: str, checks: Checks | None = None) -> None:
        super().__init__(message)
        self.checks = checks


def output_tensor(model: nn.Module, inputs: Inputs) -> torch.Tensor | None:
    """``model``'s first output tensor on ``inputs`` (eval mode, no grad, modes restored)."""
    with inference_mode_of(model):
        out = first_tensor(call_model(model, inputs))
    return None if out is None else out.detach()


def output_change(before: torch.Tensor, after: torch.Tensor) -> tuple[float, float]:
    """``(max |after − before|, that ÷ max |before|)``; the relative part is ``inf`` when
    ``before`` is all zero and something changed."""
    diff = float((after.double() - before.double()).abs().max()) if before.numel() else 0.0
    scale = float(before.double().abs().max()) if before.numel() else 0.0
    return diff, diff / scale if scale > 0 else (0.0 if diff == 0 else float("inf"))


def chance_accuracy(labels: torch.Tensor, n_classes: int | None = None) -> float:
    """Accuracy of the best constant guess: ``max(1 / n_classes, most frequent share)``."""
    labels = labels.reshape(-1).long()
    if labels.numel() == 0:
        raise ValueError("chance_accuracy needs at least one label")
    classes = max(int(n_classes or 0), int(labels.max()) + 1)
    majority = float(torch.bincount(labels - labels.min()).max()) / labels.numel()
    return max(1.0 / classes, majority)


def zero_layers(model: nn.Module) -> list[str]:
    """Names of modules whose weight (≥ 2 dimensions) is exactly zero everywhere."""
    out = []
    for name, module in model.named_modules():
        weight = getattr(module, "weight", None)
        if (isinstance(weight, torch.Tensor) and weight.dim() >= 2 and weight.numel()
                and weight.is_floating_point() and not bool(weight.detach().any())):
            out.append(name or type(module).__name__)
    return out


def constant_outputs(output: torch.Tensor | None) -> bool | None:
    """True when every sample of the batch gives the same output (within
    :data:`CONSTANT_RTOL` of the largest magnitude) or an output is not finite; None when
    that cannot be told (no tensor output, a batch of one)."""
    if output is None or output.dim() == 0 or output.shape[0] < 2 or output.numel() == 0:
        return None
    if not output.is_floating_point():
        output = output.double()
    if not bool(torch.isfinite(output).all()):
        return True
    flat = output.reshape(output.shape[0], -1).double()
    spread = float((flat.max(0).values - flat.min(0).values).max())
    return spread <= CONSTANT_RTOL * float(flat.abs().max())


@dataclass
class ModelCheck:
    """The verdict on one model (``role``: ``"dense"`` or ``"pruned"``)."""

    role: str
    accuracy: float | None = None
    chance: float | None = None
    n_classes: int | None = None
    margin: float = CHANCE_MARGIN
    constant_outputs: bool | None = None
    finite: bool = True
    zero_layers: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def _failures(c: ModelCheck) -> list[str]:
    what = "the dense baseline" if c.role == "dense" else f"the {c.role} model"
    out = []
    if c.accuracy is not None and c.chance is not None and c.accuracy <= c.chance + c.margin:
        out.append(f"{what} is at chance: accuracy {c.accuracy:.4f} ≤ chance {c.chance:.4f} "
                   f"+ margin {c.margin:g} ({c.n_classes} classes)")
    if not c.finite:
        out.append(f"{what} gives non-finite outputs (NaN or inf)")
    elif c.constant_outputs:
        out.append(f"{what} gives the same output for every input of the evaluation batch")
    if c.zero_layers:
        shown = ", ".join(c.zero_layers[:5]) + (" …" if len(c.zero_layers) > 5 else "")
        out.append(f"{what} has {len(c.zero_layers)} all-zero layer(s): {shown}")
    return out


def check_model(model: nn.Module, role: str, inputs: Inputs, accuracy: float | None = None,
                labels: torch.Tensor | None = None, n_classes: int | None = None,
                margin: float = CHANCE_MARGIN) -> ModelCheck:
    """Check ``model`` for collapse on the evaluation batch ``inputs`` (≥ 2 samples).

    ``accuracy`` (already measured, higher = better) is compared with the chance level of
    ``labels`` (the evaluation labels) plus ``margin``; leave both None without labels.
    """
    if not 0 <= margin < 1:
        raise ValueError(f"margin must be in [0, 1), got {margin!r}")
    out = output_tensor(model, inputs)
    finite = out is None or bool(torch.isfinite(out.double() if not out.is_floating_point()
                                                else out).all())
    check = ModelCheck(role, accuracy=None if accuracy is None else float(accuracy),
                       margin=margin, constant_outputs=constant_outputs(out), finite=finite,
                       zero_layers=zero_layers(model))
    if labels is not None and accuracy is not None:
        check.n_classes = max(int(n_classes or 0), int(labels.max()) + 1)
        check.chance = chance_accuracy(labels, check.n_classes)
    check.failures = _failures(check)
    return check


@dataclass
class Checks:
    """Every model checked in a run and the run's status.

    ``status``: ``"passed"`` (no failure), ``"failed"`` or ``"allowed"`` (failures the
    user accepted with ``allow_collapse``); ``ok`` is False only for ``"failed"``.
    """

    allow_collapse: bool = False
    margin: float = CHANCE_MARGIN
    models: list[ModelCheck] = field(default_factory=list)

    @property
    def failures(self) -> list[str]:
        return [f for m in self.models for f in m.failures]

    @property
    def status(self) -> str:
        if not self.failures:
            return "passed"
        return "allowed" if self.allow_collapse else "failed"

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    def add(self, check: ModelCheck) -> ModelCheck:
        self.models.append(check)
        return check

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``status``, ``ok``, ``failures`` (one line each), the settings and
        one entry per model role."""
        return {"status": self.status, "ok": self.ok, "failures": self.failures,
                "allow_collapse": self.allow_collapse, "chance_margin": self.margin,
                "models": {m.role: m.to_dict() for m in self.models}}
