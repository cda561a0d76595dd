"""What a recorded plan may change on a model, checked before anything changes.

A plan read from a file is data from anywhere, and :func:`prunekit.surgery.apply_plan`
sets what it records. So replay checks, before the first tensor is cut:

* **cuts** — every named parameter/buffer exists and has the recorded size along the
  recorded dim at that point of the sequence (later cuts see earlier ones);
* **attributes** — only the size attributes that the surgery handler of the module's
  type changes (:data:`ALLOWED`, one table beside the handler registry), each an int in
  ``[1, value before]`` (or a tuple of such ints of the same length): sizes only shrink.
  ``{"conv1": {"stride": [1, 1]}}`` is refused;
* **config fields** — only fields the model's config already has, holding an int (or
  null) before; the new value an int in ``[1, value before]`` (``[1, largest tensor
  dim]`` where the field was null) — or a list of such ints where it was a list.

Every refusal is a :class:`~prunekit.surgery.validate.PlanError` naming the field.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from prunekit.surgery.handlers import BY_NAME, BY_TYPE, HEAD_COUNT, lookup
from prunekit.surgery.known import HEADS_TIMES_WIDTH, KV_COUNT
from prunekit.surgery.plan import Cut, Plan, check_cut
from prunekit.surgery.state import configs, tensor_owners
from prunekit.surgery.validate import PlanError, key, kind_of, short

#: Size attributes each handler (keyed as in the handler registry: a module class, a class
#: name, or ``"<heads>"``) may change. A class key covers its subclasses, so an entry for
#: ``nn.RNNBase`` covers a handler registered for ``nn.LSTM``. Handlers that only vote for
#: config fields have an empty entry. ``tests/test_io.py`` checks that every registered
#: handler has an entry and that pruning the zoo's models records nothing beyond it.
ALLOWED: dict[type | str, frozenset[str]] = {
    nn.modules.conv._ConvNd: frozenset({"in_channels", "out_channels", "groups"}),
    nn.Linear: frozenset({"in_features", "out_features"}),
    nn.Bilinear: frozenset({"in1_features", "in2_features", "out_features"}),
    nn.modules.batchnorm._NormBase: frozenset({"num_features"}),
    nn.LayerNorm: frozenset({"normalized_shape"}),
    nn.RMSNorm: frozenset({"normalized_shape"}),
    nn.GroupNorm: frozenset({"num_channels", "num_groups"}),
    nn.Embedding: frozenset({"embedding_dim"}),
    nn.EmbeddingBag: frozenset({"embedding_dim"}),
    nn.PReLU: frozenset({"num_parameters"}),
    nn.MultiheadAttention: frozenset({"embed_dim", "kdim", "vdim", "head_dim"}),
    nn.RNNBase: frozenset({"input_size", "hidden_size", "proj_size"}),
    nn.RNNCellBase: frozenset({"input_size", "hidden_size"}),
    # the generic attention handler sets whichever of these the module has
    "<heads>": frozenset((*HEAD_COUNT, *KV_COUNT, *HEADS_TIMES_WIDTH)),
    "GPT2Attention": frozenset({"num_heads", "split_size"}),
    **dict.fromkeys(("LlamaMLP", "MistralMLP", "Qwen2MLP"), frozenset({"intermediate_size"})),
    "Conv1D": frozenset({"nf", "nx"}),
    "VisionTransformer": frozenset({"hidden_dim"}),
    **dict.fromkeys(("WindowAttention", "ShiftedWindowAttention",
                     "ShiftedWindowAttentionV2"), frozenset({"num_heads"})),
}


def entry(handler_key: type | str) -> frozenset[str] | None:
    """The :data:`ALLOWED` entry of a handler registry key (a class key matches entries
    of its base classes too); None when the table has none."""
    if isinstance(handler_key, str):
        return ALLOWED.get(handler_key)
    found = [ALLOWED[c] for c in handler_key.__mro__ if c in ALLOWED]
    return frozenset().union(*found) if found else None


def allowed_attrs(module: nn.Module) -> frozenset[str]:
    """Attributes a plan may set on ``module``: those of the handler that surgery would
    use for it (none when it has no handler)."""
    handler = lookup(module)
    if handler is None:
        return frozenset()
    keys = [k for k, fn in (*BY_TYPE.items(), *BY_NAME.items()) if fn is handler]
    return frozenset().union(*(entry(k) or frozenset() for k in keys))


def check_replay(model: nn.Module, plan: Plan) -> None:
    """Raise :class:`PlanError` unless every cut, attribute and config value of ``plan``
    fits ``model`` (see the module docstring); nothing is changed."""
    check_cuts(model, plan.cuts)
    check_attrs(model, plan.attrs)
    check_config(model, plan.config)


def _tensor(owners: dict[str, tuple[str, Any]], name: str) -> Any:
    kind, obj = owners[name]
    return obj if kind == "param" else obj[0][0]._buffers[obj[0][1]]


def check_cuts(model: nn.Module, cuts: list[Cut]) -> None:
    """Each cut names a tensor of ``model`` with the recorded size at its turn."""
    owners = tensor_owners(model)
    shapes: dict[str, list[int]] = {}
    for i, cut in enumerate(cuts):
        field = f"cuts[{i}]"
        check_cut(cut, field)
        if cut.param not in owners:
            raise PlanError(f"the model has no parameter or buffer {cut.param[:200]!r}",
                            field=f"{field}.param")
        shape = shapes.setdefault(cut.param, list(_tensor(owners, cut.param).shape))
        if cut.dim >= len(shape):
            raise PlanError(f"dim {cut.dim} out of range for {cut.param!r} of shape "
                            f"{tuple(shape)}", field=f"{field}.dim")
        if shape[cut.dim] != cut.size:
            raise PlanError(f"{cut.param!r} has size {shape[cut.dim]} along dim {cut.dim} "
                            f"here; the plan expects {cut.size}", field=f"{field}.size")
        shape[cut.dim] -= len(cut.removed)


def check_attrs(model: nn.Module, attrs: dict[str, dict[str, Any]]) -> None:
    """Only allowed attributes, existing on the module, each a size that shrinks."""
    if not isinstance(attrs, dict):
        raise PlanError("expected an object", field="attrs")
    mods = dict(model.named_modules())
    for name, values in attrs.items():
        field = key("attrs", name)
        module = mods.get(name)
        if module is None or not isinstance(values, dict):
            raise PlanError(f"the model has no module {str(name)[:200]!r}" if module is None
                            else "expected an object", field=field)
        allowed = allowed_attrs(module)
        for attr, value in values.items():
            where = f"{field}.{attr}" if str(attr).isidentifier() else key(field, str(attr))
            if attr not in allowed:
                raise PlanError(f"a plan may not set {str(attr)[:60]!r} of a "
                                f"{type(module).__name__}; allowed: {sorted(allowed)}",
                                field=where)
            if attr not in vars(module):
                raise PlanError(f"{type(module).__name__} {name!r} has no attribute {attr!r}",
                                field=where)
            check_size(vars(module)[attr], value, where)


def check_size(old: Any, new: Any, field: str, bound: int | None = None) -> None:
    """``new`` may replace size ``old``: an int in ``[1, old]`` (``[1, bound]`` when
    ``old`` is None and a bound is given), or a list of such ints as long as ``old``; null
    may stay null."""
    if old is None and new is None:
        return
    if _is_int(old) or (old is None and bound is not None):
        hi = old if old is not None else bound
        if not _is_int(new):
            raise PlanError(f"expected an integer size, got {kind_of(new)}", field=field)
        if not min(1, hi) <= new <= hi:
            raise PlanError(f"{short(new)} is out of range [1, {hi}] (a size the plan "
                            f"sets can only shrink; {old} before)", field=field)
        return
    if isinstance(old, list | tuple) and old and all(_is_int(o) for o in old):
        if not isinstance(new, list | tuple) or len(new) != len(old):
            raise PlanError(f"expected a list of {len(old)} integer sizes, got {kind_of(new)}",
                            field=field)
        for i, (o, n) in enumerate(zip(old, new, strict=True)):
            check_size(o, n, f"{field}[{i}]")
        return
    raise PlanError(f"holds {kind_of(old)}, not a size a plan may set", field=field)


def check_config(model: nn.Module, config: dict[str, Any]) -> None:
    """Only fields the model's config has, holding a size before; the value a size."""
    if not isinstance(config, dict):
        raise PlanError("expected an object", field="config")
    cfgs = list(configs(model)) if config else []
    bound = None
    for name, value in config.items():
        field = f"config.{name}" if str(name).isidentifier() else key("config", name)
        if not str(name).isidentifier() or str(name).startswith("_"):
            raise PlanError("not a config field name", field=field)
        holders = [c for c in cfgs if _has(c, name)]
        if not holders:
            raise PlanError("the model has no config object" if not cfgs else
                            f"the model's config has no field {name!r}", field=field)
        for cfg in holders:
            old = getattr(cfg, name)
            if old is None and bound is None:
                bound = max((max(t.shape, default=1) for t in model.state_dict().values()
                             if hasattr(t, "shape")), default=1)
            check_size(old, value, field, bound)


def _has(cfg: Any, name: str) -> bool:
    try:
        return hasattr(cfg, name)
    except Exception:  # a config property that raises (e.g. an ambiguous per-layer field)
        return False


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)
