"""Input features as a structure: the columns of the first layer (MLP features, pixels,
tabular columns, a conv's input channels).

Feature ``f`` owns the weight columns of the first ``nn.Linear`` / ``nn.Conv*`` that read
it (``W[:, f]``; with ``unit="pixel"`` all channels of a pixel). As a coupled group
(:func:`feature_groups`) proximal group-lasso training minimizes
``L(w) + λ·Σ_f √n_f·‖W[:, cols(f)]‖₂`` and drives whole features to exactly zero. Removing
feature ``f`` then deletes its columns (``in_features`` / ``in_channels`` shrink); since
``W[:, f] = 0`` the outputs are unchanged (zero-group invariance).

What comes back: the model, changed in place, whose first layer is wrapped in
:class:`FeatureSelect` (``layer(x.index_select(dim, kept))``) so it still takes full
inputs; with ``select=False`` the layer is narrowed only and the model takes the reduced
input (:func:`reduce_inputs` builds it). The plan lists the kept feature indices.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from prunekit.graph.types import Group, Member
from prunekit.inputs import call_model, inference_mode_of
from prunekit.structures._feature_select import (
    FIRST_LAYER_TYPES,
    FeatureSelect,
    InputLayer,
    find_input_layer,
    kept_pixels_image,
    pixel_columns,
)
from prunekit.structures.plancheck import check_header
from prunekit.structures.registry import Structure, register
from prunekit.surgery import SurgeryError
from prunekit.surgery import validate as v
from prunekit.surgery.state import apply_cut, tensor_owners, transaction
from prunekit.surgery.validate import PlanError

PLAN_VERSION = 1
MAX_COLUMNS = 1 << 31
__all__ = ["Feature", "FeaturePlan", "FeatureResult", "FeatureSelect", "apply_feature_plan",
           "feature_groups", "find_features", "kept_pixels_image", "prune_features",
           "reduce_inputs", "remove_features", "score_features"]


@dataclass(frozen=True)
class Feature:
    """One input feature: its index ``index`` (name ``str(index)``) and its columns."""

    index: int
    columns: tuple[int, ...]
    layer: str

    @property
    def name(self) -> str:
        return str(self.index)


@dataclass
class FeaturePlan:
    """What a removal did, as plain data (JSON, replayable on a fresh model).

    ``kept`` / ``removed`` are feature indices; ``kept_columns`` the layer's surviving
    input columns (original numbering); ``n_columns`` its width before.
    """

    layer: str
    dim: int
    n_columns: int
    unit: str
    kept: list[int]
    removed: list[int]
    kept_columns: list[int]
    select: bool = True
    version: int = PLAN_VERSION
    structure: str = "input_feature"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> FeaturePlan:
        """Inverse of :meth:`to_dict`; :class:`~prunekit.surgery.PlanError` (a ValueError)
        naming the field on a foreign, newer or malformed plan."""
        d = check_header(data, "input_feature", PLAN_VERSION,
                         ("layer", "dim", "n_columns", "unit", "kept", "removed",
                          "kept_columns", "select"))
        n = v.integer(d["n_columns"], "n_columns", 1, MAX_COLUMNS)
        kept, removed = v.indices(d["kept"], "kept"), v.indices(d["removed"], "removed")
        if set(kept) & set(removed):
            raise PlanError("a feature is both kept and removed", field="removed")
        columns = v.indices(d["kept_columns"], "kept_columns", n)
        if not columns or columns != sorted(columns):
            raise PlanError("expected the kept columns in order, at least one",
                            field="kept_columns")
        dim = v.integer(d["dim"], "dim", -1, 1)
        if dim == 0:
            raise PlanError("expected -1 (nn.Linear) or 1 (convolution)", field="dim")
        return cls(v.string(d["layer"], "layer"), dim, n,
                   v.string(d["unit"], "unit", ("column", "pixel")), kept, removed, columns,
                   v.boolean(d["select"], "select"), d["version"])


@dataclass
class FeatureResult:
    """What :func:`prune_features` did: the model (changed in place), the plan, the
    score of every feature (higher = keep) and the kept feature indices."""

    model: nn.Module
    plan: FeaturePlan
    scores: dict[str, float] = field(default_factory=dict)

    @property
    def kept(self) -> list[int]:
        return self.plan.kept


def _layer(model: nn.Module, example_inputs: Any, layer: str | None) -> InputLayer:
    return find_input_layer(model, example_inputs, layer)


def find_features(model: nn.Module, example_inputs: Any, *, layer: str | None = None,
                  unit: str = "column") -> list[Feature]:
    """The input features of ``model`` (see the module docstring); the model is unchanged."""
    info = _layer(model, example_inputs, layer)
    return [Feature(i, tuple(cols), info.name)
            for i, cols in enumerate(pixel_columns(info, unit))]


def feature_groups(model: nn.Module, example_inputs: Any, *, layer: str | None = None,
                   unit: str = "column") -> list[Group]:
    """One :class:`~prunekit.graph.Group` (id ``"input_feature:<layer>"``), one channel per
    feature, its member the first layer's weight along its input dim (``dim=1``).

    Give it to :class:`prunekit.methods.ProximalGroupLasso` (alone or with the channel
    groups) to train features to exactly zero; remove them with :func:`remove_features`
    (not ``finalize``, which would leave the model expecting a narrower input).
    """
    info = _layer(model, example_inputs, layer)
    cols = pixel_columns(info, unit)
    member = Member(f"{info.name}.weight" if info.name else "weight", 1, cols)
    return [Group(f"input_feature:{info.name}", len(cols), [member], [], len(cols) > 1)]


def score_features(model: nn.Module, features: Iterable[Feature], example_inputs: Any,
                   method: str = "norm") -> dict[str, float]:
    """``{feature name: score}``, higher means keep.

    ``"norm"``: ``‖W[:, cols(f)]‖₂``. ``"activation"``: that norm times the root mean
    square of the feature's input values on ``example_inputs`` (a feature that is always 0
    costs nothing however large its weights).
    """
    features = list(features)
    if not features:
        return {}
    module = model.get_submodule(features[0].layer)
    w = module.weight.detach().to(torch.float64)
    per_col = w.movedim(1, 0).reshape(w.shape[1], -1).pow(2).sum(1)
    if method == "norm":
        scale = torch.ones_like(per_col)
    elif method == "activation":
        scale = _input_rms(model, module, example_inputs, w.shape[1])
    else:
        raise ValueError(f"method must be 'norm' or 'activation', got {method!r}")
    return {f.name: float((per_col[list(f.columns)] * scale[list(f.columns)]).sum().sqrt())
            for f in features}


def _input_rms(model: nn.Module, module: nn.Module, example_inputs: Any,
               width: int) -> torch.Tensor:
    seen: list[torch.Tensor] = []

    def hook(_m: nn.Module, args: tuple) -> None:
        x = args[0].detach().to(torch.float64)
        dim = -1 if isinstance(module, nn.Linear) else 1
        seen.append(x.movedim(dim, 0).reshape(width, -1).pow(2).mean(1))

    handle = module.register_forward_pre_hook(hook)
    try:
        with inference_mode_of(model):
            call_model(model, example_inputs)
    finally:
        handle.remove()
    return seen[0]


def _check_removed(removed: Iterable[Any], n: int) -> list[int]:
    try:
        out = sorted({int(r) for r in removed})
    except (TypeError, ValueError) as err:
        raise ValueError(f"features: expected feature indices or their names, got "
                         f"{removed!r}") from err
    if out and (out[0] < 0 or out[-1] >= n):
        raise ValueError(f"features: indices must lie in [0, {n}), got {out[0]}..{out[-1]}")
    if len(out) >= n:
        raise ValueError(f"features: cannot remove all {n} features")
    return out


def remove_features(model: nn.Module, features: Iterable[Any], example_inputs: Any, *,
                    layer: str | None = None, unit: str = "column",
                    select: bool = True) -> FeaturePlan:
    """Delete the columns of the given features (indices or names) in place, all or nothing.

    With ``select=True`` the layer is wrapped in :class:`FeatureSelect` and the model still
    takes ``example_inputs``-shaped inputs; otherwise it takes :func:`reduce_inputs`.

    Raises
    ------
    ValueError
        Bad indices (or all of them), unknown layer; the model is untouched.
    SurgeryError
        The forward check failed; the model was restored bit-identically.
    """
    info = _layer(model, example_inputs, layer)
    cols = pixel_columns(info, unit)
    removed = _check_removed(features, len(cols))
    gone = {c for f in removed for c in cols[f]}
    plan = FeaturePlan(info.name, info.dim, info.n_columns, unit,
                       [f for f in range(len(cols)) if f not in set(removed)], removed,
                       [c for c in range(info.n_columns) if c not in gone], select)
    with inference_mode_of(model):
        before = _shapes(call_model(model, example_inputs))
    _apply(model, plan, example_inputs, before)
    return plan


def _apply(model: nn.Module, plan: FeaturePlan, example_inputs: Any,
           before: list[tuple] | None) -> None:
    if not plan.removed:
        return
    if not plan.layer and plan.select:
        raise ValueError("input_feature: the model itself is the input layer; wrap it in "
                         "nn.Sequential or pass select=False")
    parent, _, key = plan.layer.rpartition(".")
    holder = model.get_submodule(parent)
    module = model.get_submodule(plan.layer)
    try:
        with transaction(model):
            weight = f"{plan.layer}.weight" if plan.layer else "weight"
            gone = sorted(set(range(plan.n_columns)) - set(plan.kept_columns))
            apply_cut(tensor_owners(model), weight, 1, gone)
            attr = "in_features" if isinstance(module, nn.Linear) else "in_channels"
            setattr(module, attr, len(plan.kept_columns))
            if plan.select:
                holder._modules[key] = FeatureSelect(module, torch.as_tensor(plan.kept_columns),
                                                     plan.dim)
            if before is not None:
                inputs = example_inputs if plan.select else reduce_inputs(example_inputs, plan)
                with inference_mode_of(model):
                    after = _shapes(call_model(model, inputs))
                if after != before:
                    raise RuntimeError(f"output shapes changed from {before} to {after}")
    except Exception as err:
        raise SurgeryError(f"removing input features of {plan.layer!r} failed "
                           f"({type(err).__name__}: {err}); the model was restored",
                           plan.layer, "input_feature") from err


def _shapes(out: Any) -> list[tuple]:
    from prunekit.graph.trace import iter_tensors

    return [tuple(t.shape) for t in iter_tensors(out)]


def reduce_inputs(inputs: torch.Tensor, plan: FeaturePlan | dict) -> torch.Tensor:
    """The input a ``select=False`` model takes: the kept columns of ``inputs``.

    For an ``nn.Linear`` first layer ``inputs`` is flattened per sample first (the model
    reads it flattened); for a convolution the kept channels are taken along dim 1.
    """
    if isinstance(plan, dict):
        plan = FeaturePlan.from_dict(plan)
    if not isinstance(inputs, torch.Tensor):
        raise TypeError("reduce_inputs needs the model's input tensor")
    index = torch.as_tensor(plan.kept_columns, device=inputs.device)
    if plan.dim == -1:
        flat = inputs if inputs.shape[-1] == plan.n_columns else inputs.flatten(1)
        return flat.index_select(-1, index)
    return inputs.index_select(1, index)


def prune_features(model: nn.Module, example_inputs: Any, *, ratio: float | None = None,
                   n_features: int | None = None, method: str = "norm",
                   layer: str | None = None, unit: str = "column",
                   select: bool = True, zero_only: bool = False) -> FeatureResult:
    """Remove features: the exactly-zero ones (``zero_only=True``, also the default when
    neither count is given: after proximal training), or the ``n_features`` / ``ratio``
    lowest-scored ones (:func:`score_features`)."""
    if sum(x is not None for x in (n_features, ratio, zero_only or None)) > 1:
        raise ValueError("give at most one of n_features, ratio and zero_only=True")
    feats = find_features(model, example_inputs, layer=layer, unit=unit)
    scores = score_features(model, feats, example_inputs, method)
    if ratio is not None:
        if not 0.0 <= ratio < 1.0:
            raise ValueError(f"ratio must be in [0, 1), got {ratio}")
        n_features = round(ratio * len(feats))
    if n_features is None:
        drop = [int(k) for k, v in scores.items() if v == 0.0]
    else:
        if not isinstance(n_features, int) or not 0 <= n_features < len(feats):
            raise ValueError(f"n_features must be an int in [0, {len(feats)}), got "
                             f"{n_features!r}")
        drop = [int(k) for k, _ in sorted(scores.items(), key=lambda kv: kv[1])[:n_features]]
    if len(drop) >= len(feats):  # every feature zero: keep the first
        drop = drop[1:]
    plan = remove_features(model, drop, example_inputs, layer=feats[0].layer if feats else layer,
                           unit=unit, select=select)
    return FeatureResult(model, plan, scores)


def apply_feature_plan(model: nn.Module, plan: FeaturePlan | dict,
                       example_inputs: Any = None) -> FeaturePlan:
    """Replay a plan on a freshly built model (e.g. on load; no tracing without inputs)."""
    if isinstance(plan, dict):
        plan = FeaturePlan.from_dict(plan)
    _check_layer_fits(model, plan)
    before = None
    if example_inputs is not None:
        with inference_mode_of(model):
            before = _shapes(call_model(model, example_inputs))
    _apply(model, plan, example_inputs, before)
    return plan


def _check_layer_fits(model: nn.Module, plan: FeaturePlan) -> None:
    """The plan's layer exists, is a first-layer type read along ``dim`` and has
    ``n_columns`` inputs (PlanError naming the field otherwise)."""
    module = dict(model.named_modules()).get(plan.layer)
    if not isinstance(module, FIRST_LAYER_TYPES) or isinstance(module, FeatureSelect):
        raise PlanError(f"the model has no nn.Linear / nn.Conv1d/2d/3d named {plan.layer!r}",
                        field="layer")
    if isinstance(module, nn.modules.conv._ConvNd) and module.groups != 1:
        raise PlanError(f"layer {plan.layer!r} is a grouped convolution", field="layer")
    if plan.dim != (-1 if isinstance(module, nn.Linear) else 1):
        raise PlanError(f"dim {plan.dim} does not fit the {type(module).__name__} "
                        f"{plan.layer!r}", field="dim")
    if not plan.layer and plan.select and plan.removed:
        raise PlanError("the model itself is the input layer; it cannot be wrapped",
                        field="layer")
    width = module.in_features if isinstance(module, nn.Linear) else module.in_channels
    if width != plan.n_columns:
        raise PlanError(f"layer {plan.layer!r} reads {width} columns, plan expects "
                        f"{plan.n_columns}", field="n_columns")


INPUT_FEATURE = register(Structure(
    "input_feature", find=find_features, score=score_features, remove=remove_features,
    prune=prune_features, apply_plan=apply_feature_plan, groups=feature_groups))
