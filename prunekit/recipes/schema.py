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
    train:                            # optional: train the dense model first (labeled data)
      epochs: 0
    checks:                           # a collapsed model fails the run (exit 3) …
      allow_collapse: false           # … unless allowed here (or --allow-collapse)
      chance_margin: 0.05

Every number is type-checked (an integer field refuses ``3.5``, ``true`` and ``"3"``) and
bounded above as well as below (``measure.repeats: 1.0e23`` is an error, not a run that
never ends). YAML's ``1e-3`` (no dot, a string to YAML 1.1) is read as the float it looks
like.
"""

from __future__ import annotations

import difflib
import re
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
MAX_EPOCHS = 1000
MAX_BATCH = 65536
MAX_TIMING_BATCH = 4096
MAX_THREADS = 1024
MAX_REPEATS = 10000
MAX_LR = 10.0


def _int(default: int, ge: int, le: int) -> Any:
    """An integer field: strict (no floats, bools or strings) and bounded on both sides."""
    return Field(default, ge=ge, le=le, strict=True)


def _float(default: float | None, le: float, gt: float | None = 0.0,
           ge: float | None = None, lt: float | None = None) -> Any:
    """A finite number (an int is fine, a bool or a string is not), bounded on both sides."""
    return Field(default, gt=None if ge is not None else gt, ge=ge,
                 le=None if lt is not None else le, lt=lt, strict=True, allow_inf_nan=False)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Target(_Strict):
    """Exactly one of ``macs`` (fraction of MACs to keep), ``ratio`` (channel fraction
    to remove from every group) or ``speedup`` (prune until the model is *measured* this
    many times faster, on ``measure``'s device, threads and batch size). ``prefer``: with
    ``speedup`` and ``structures: {depth, channels}``, which candidate meeting it to apply
    (``fidelity``, ``macs`` or ``speed``; see :func:`prunekit.prune`)."""

    macs: float | None = _float(None, le=1)
    ratio: float | None = _float(None, le=1, ge=0, lt=1)
    speedup: float | None = _float(None, le=100, gt=1)
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

    epochs: int = _int(3, 1, MAX_EPOCHS)
    lam: float = _float(1e-3, le=100)
    lr: float = _float(0.05, le=MAX_LR)
    batch_size: int = _int(64, 1, MAX_BATCH)
    dual_lr: float = _float(0.05, le=10)
    weights: Literal["sqrt", "ones", "size"] = "sqrt"


class Finetune(_Strict):
    """Recovery training after the cut (``epochs: 0`` skips it)."""

    epochs: int = _int(2, 0, MAX_EPOCHS)
    lr: float = _float(1e-3, le=MAX_LR)
    batch_size: int = _int(64, 1, MAX_BATCH)
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"


class Reconstruct(_Strict):
    """Re-fit the layers after the cut to the dense model's outputs on ``samples``
    training inputs (method ``prune``; see :mod:`prunekit.reconstruct`)."""

    mode: Literal["bias", "ls", "block"] = "ls"
    samples: int = _int(1024, 1, 10_000_000)
    batch_size: int = _int(128, 1, MAX_BATCH)
    damping: float = _float(0.01, le=1e6, ge=0, gt=None)


class Train(_Strict):
    """Train the dense model before pruning (default ``epochs: 0``: it comes trained, e.g.
    with ``--weights``). Needs labeled data; the trained model is the dense baseline."""

    epochs: int = _int(0, 0, MAX_EPOCHS)
    lr: float = _float(1e-3, le=MAX_LR)
    batch_size: int = _int(64, 1, MAX_BATCH)
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"


class Checks(_Strict):
    """Collapse and quality checks (:mod:`prunekit.measure.guards`): a dense baseline or a
    pruned model at chance accuracy (``≤ chance + chance_margin``), with constant outputs or
    an all-zero layer fails the run, unless ``allow_collapse``."""

    allow_collapse: bool = Field(False, strict=True)
    chance_margin: float = _float(0.05, le=0.5, ge=0)


class Measure(_Strict):
    """How the dense and pruned models are timed (see :func:`prunekit.measure.compare`)."""

    batch_size: int = _int(32, 1, MAX_TIMING_BATCH)
    threads: int = _int(2, 1, MAX_THREADS)
    repeats: int = _int(30, 2, MAX_REPEATS)
    device: str = "cpu"
    energy: bool = Field(True, strict=True)

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        """``cpu`` or ``cuda[:i]`` (whether this machine has it is checked when it runs)."""
        from prunekit.measure.devices import parse_device

        parse_device(value)
        return value


class Recipe(_Strict):
    """A whole pruning job; see the module docstring for the YAML form."""

    method: Literal["prune", "proximal_group_lasso"] = "prune"
    target: Target = Target(macs=0.5)
    importance: str = "l2"
    round_to: int | None = Field(None, ge=1, le=1024, strict=True)  # None: 1, or probed
    ignore: list[str] = Field(default_factory=list)
    structures: dict[str, dict[str, Any] | None] | None = None
    schedule: Schedule = Schedule()
    finetune: Finetune = Finetune()
    reconstruct: Reconstruct | None = None
    measure: Measure = Measure()
    train: Train = Train()
    checks: Checks = Checks()
    seed: int = _int(0, 0, 2**32 - 1)

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

        names = structures.available()
        for name in value:
            if name not in names:
                close = difflib.get_close_matches(name, names, n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"choose from {names}"
                raise ValueError(f"unknown structure {name!r}; {hint}")
        if not value:
            raise ValueError(f"name at least one structure of {names}")
        for name, options in value.items():
            for key, option in (options or {}).items():
                _check_option(f"{name}.{key}", option)
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


MAX_OPTION = 1e6


def _check_option(where: str, value: Any) -> None:
    """A structure option (each structure validates its own when it runs): plain data, and
    numbers finite and within ±1e6, so that no typo runs for hours first."""
    import math

    if isinstance(value, list):
        for item in value:
            _check_option(where, item)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value) or abs(value) > MAX_OPTION:
            raise ValueError(f"structures.{where} must be a finite number within "
                             f"±{MAX_OPTION:g}, got {value!r}")
    elif not isinstance(value, str | bool | None):
        raise ValueError(f"structures.{where} must be a number, string, boolean or list, "
                         f"got {type(value).__name__}")


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


# YAML 1.1 reads ``1e-3`` (no dot) as a string; recipes mean the number
_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")


def _yaml_loader() -> type:
    """``yaml.SafeLoader`` that also reads ``1e-3`` / ``1e23`` as floats."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789"))
    return Loader


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a YAML recipe file; an empty file is an error (it would silently
    run every default), the message says what to add."""
    import yaml

    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        why = getattr(err, "strerror", None) or str(err).splitlines()[0]
        raise RecipeError(f"cannot read recipe {str(file)!r}: {why}") from None
    try:
        data = yaml.load(text, Loader=_yaml_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        first = " ".join(str(err).split())
        raise RecipeError(f"recipe {str(file)!r} is not valid YAML: {first}") from None
    if data is None or data == {}:
        raise RecipeError(f"recipe {str(file)!r} is empty: add at least a method and a "
                          f"target, e.g. 'method: prune' and 'target: {{macs: 0.5}}' (or "
                          f"leave out --recipe to run those defaults)")
    return parse_recipe(data)
