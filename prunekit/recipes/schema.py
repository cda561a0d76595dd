"""YAML pruning recipes, validated with pydantic: what to prune, to which target, how.

A recipe is data (``yaml.safe_load``: no Python objects). Unknown keys are errors, and every
error names the field with its dotted path, e.g. ``finetune.epochs``, and suggests the
closest known field for a typo::

    method: proximal_group_lasso      # or: prune (one-shot, importance-ranked)
    target:
      macs: 0.5                       # keep 50 % of the MACs (2× fewer, theory) …
      # ratio: 0.3                    # … or remove 30 % of every group's channels
      # speedup: 2.0                  # … or prune until *measured* 2× faster (method
                                      #   prune; timed as `measure:` says)
    importance: l2                    # prune: l2, l1, bn_scale, taylor, fisher, random …
    schedule:                         # proximal_group_lasso training
      epochs: 3
      lam: 1.0e-3
      lr: 0.05
    finetune:
      epochs: 2
      lr: 1.0e-3
    reconstruct:                      # prune: re-fit layers to the dense outputs, no training
      mode: ls                        #   ls, bias or block
      samples: 1024                   #   calibration images from the training split
    measure:
      batch_size: 64
      threads: 2
"""

from __future__ import annotations

import difflib
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

METHODS = ("prune", "proximal_group_lasso")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Target(_Strict):
    """Exactly one of ``macs`` (fraction of MACs to keep), ``ratio`` (channel fraction
    to remove from every group) or ``speedup`` (prune until the model is *measured* this
    many times faster, on ``measure``'s device, threads and batch size). ``prefer``: with
    ``speedup`` and ``structures: {depth, channels}``, which candidate meeting it to apply
    (``fidelity``, ``macs`` or ``speed``; see :func:`prunekit.prune`)."""

    macs: float | None = Field(None, gt=0, le=1)
    ratio: float | None = Field(None, ge=0, lt=1)
    speedup: float | None = Field(None, gt=1)
    prefer: Literal["fidelity", "macs", "speed"] | None = None

    @model_validator(mode="after")
    def _one_of(self) -> Target:
        if sum(v is not None for v in (self.macs, self.ratio, self.speedup)) != 1:
            raise ValueError("give exactly one of target.macs, target.ratio or target.speedup")
        if self.prefer is not None and self.speedup is None:
            raise ValueError("target.prefer applies with target.speedup (width or depth)")
        return self


class Schedule(_Strict):
    """Proximal group-lasso training (method ``proximal_group_lasso``)."""

    epochs: int = Field(3, ge=1)
    lam: float = Field(1e-3, gt=0)
    lr: float = Field(0.05, gt=0)
    batch_size: int = Field(64, ge=1)
    dual_lr: float = Field(0.05, gt=0)
    weights: Literal["sqrt", "ones", "size"] = "sqrt"


class Finetune(_Strict):
    """Recovery training after the cut (``epochs: 0`` skips it)."""

    epochs: int = Field(2, ge=0)
    lr: float = Field(1e-3, gt=0)
    batch_size: int = Field(64, ge=1)
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"


class Reconstruct(_Strict):
    """Re-fit the layers after the cut to the dense model's outputs on ``samples``
    training inputs (method ``prune``; see :mod:`prunekit.methods.reconstruct`)."""

    mode: Literal["bias", "ls", "block"] = "ls"
    samples: int = Field(1024, ge=1)
    batch_size: int = Field(128, ge=1)
    damping: float = Field(0.01, ge=0)


class Measure(_Strict):
    """How the dense and pruned models are timed (see :func:`prunekit.measure.compare`)."""

    batch_size: int = Field(32, ge=1)
    threads: int = Field(2, ge=1)
    repeats: int = Field(30, ge=2)
    device: str = "cpu"
    energy: bool = True


class Recipe(_Strict):
    """A whole pruning job; see the module docstring for the YAML form."""

    method: Literal["prune", "proximal_group_lasso"] = "prune"
    target: Target = Target(macs=0.5)
    importance: str = "l2"
    round_to: int = Field(1, ge=1)
    ignore: list[str] = Field(default_factory=list)
    structures: dict[str, dict[str, Any] | None] | None = None
    schedule: Schedule = Schedule()
    finetune: Finetune = Finetune()
    reconstruct: Reconstruct | None = None
    measure: Measure = Measure()
    seed: int = 0

    @model_validator(mode="after")
    def _budget_for_proximal(self) -> Recipe:
        if self.method == "proximal_group_lasso" and self.target.macs is None:
            other = "target.ratio" if self.target.ratio is not None else "target.speedup"
            raise ValueError("method proximal_group_lasso trains to a MAC budget: set "
                             f"target.macs (fraction of MACs to keep) instead of {other}")
        if self.method == "proximal_group_lasso" and self.structures is not None:
            raise ValueError("structures: applies to method 'prune' (proximal training "
                             "drives channel groups)")
        if self.target.speedup is not None and self.structures is not None and (
                set(self.structures) != {"depth", "channels"}
                or any(self.structures.values())):
            raise ValueError("structures: with target.speedup, give {depth, channels} "
                             "without options (width or depth, chosen by measurement) or "
                             "leave it out (width)")
        if self.reconstruct is not None and (self.method != "prune"
                                             or self.target.speedup is not None
                                             or self.structures is not None):
            raise ValueError("reconstruct: applies to method 'prune' with target.macs or "
                             "target.ratio (channels), without structures")
        if self.target.prefer is not None and self.structures is None:
            raise ValueError("target.prefer: chooses between width and depth; set "
                             "structures: {depth, channels}")
        return self

    @field_validator("structures")
    @classmethod
    def _structures_registered(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        """Names must be ``channels`` or registered structures (method ``prune`` only)."""
        if value is None:
            return value
        from prunekit import structures

        names = ["channels", *structures.available()]
        for name in value:
            if name not in names:
                close = difflib.get_close_matches(name, names, n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"choose from {names}"
                raise ValueError(f"unknown structure {name!r}; {hint}")
        if not value:
            raise ValueError(f"name at least one structure of {names}")
        return value

    @field_validator("importance")
    @classmethod
    def _registered(cls, name: str) -> str:
        from prunekit.importance import available

        names = available()
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"choose from {', '.join(names)}"
            raise ValueError(f"unknown importance criterion; {hint}")
        return name


def _field_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(recipe)"


def _known_fields(loc: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] = Recipe
    for part in loc[:-1]:
        annotation = model.model_fields.get(str(part))
        nested = getattr(annotation, "annotation", None)
        options = [nested, *typing.get_args(nested)]  # an optional section: X | None
        models = [t for t in options if isinstance(t, type) and issubclass(t, BaseModel)]
        if not models:
            return []
        model = models[0]
    return list(model.model_fields)


def describe_error(err: ValidationError) -> str:
    """One line naming the first bad field, what is wrong, and a likely fix."""
    first = err.errors()[0]
    loc = tuple(first["loc"])
    where = _field_path(loc)
    if first["type"] == "extra_forbidden":
        known = _known_fields(loc)
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f"did you mean '{_field_path((*loc[:-1], close[0]))}'?" if close else (
            f"known fields here: {', '.join(known)}")
        return f"recipe field '{where}' is not a recipe field: {hint}"
    message = first["msg"].removeprefix("Value error, ")
    if not loc:
        return f"recipe: {message}"
    got = first.get("input")
    return f"recipe field '{where}': {message}" + (
        "" if isinstance(got, dict) else f" (got {got!r})")


class RecipeError(ValueError):
    """A recipe that cannot be read or does not validate; the message names the field."""


def parse_recipe(data: Any) -> Recipe:
    """Validate a mapping (e.g. parsed YAML) into a :class:`Recipe`; RecipeError if invalid."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RecipeError(f"a recipe must be a YAML mapping of fields, got {type(data).__name__}")
    try:
        return Recipe.model_validate(data)
    except ValidationError as err:
        raise RecipeError(describe_error(err)) from None


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a YAML recipe file."""
    import yaml

    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as err:
        raise RecipeError(f"cannot read recipe {str(file)!r}: {err.strerror or err}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise RecipeError(f"recipe {str(file)!r} is not valid YAML: {err}") from None
    return parse_recipe(data)
