"""Hugging Face configs that rebuild the pruned model, for any ``PretrainedConfig``.

After a cut, ``type(model)(model.config)`` must build exactly the pruned shapes, or
``from_pretrained`` of a saved pruned model fails. Nothing here knows a model class or
a field name: the config is *probed*. Each integer field (nested sub-configs and
per-layer lists included) is doubled in turn and the model is built on the meta device
(no memory, no weight init); what changes gives, per observation (every dim of every
state_dict tensor, every integer attribute of every module), the exponent with which
it depends on the field (``q_proj`` rows ∝ heads·head_dim, ``attention_head_size`` ∝
hidden / heads ...). The new config is then the solution of a linear system in log
space, ``Σ_f e[k, f] · log2(f_new / f_old) = log2(pruned[k] / built[k])``:

* tensor shapes are hard equations; a system without an exact solution means the
  layers disagree (one value per layer where the config has one value for all);
* module attributes (``num_heads``, ``head_dim`` ...) only decide what the shapes leave
  open, e.g. BERT's head count, which no tensor shape shows;
* a derived field (Qwen2's ``head_dim = hidden // heads``) is written explicitly when
  the system needs it: a module attribute whose name the config accepts and controls.

Every update is verified: the model is built from the new config on the meta device and
its state_dict shapes are compared with the pruned model's. What does not rebuild is
said in the plan's notes and raised as a :class:`ConfigWarning` -- never left silent.
"""

from __future__ import annotations

import contextlib
import copy
import math
import warnings
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

Key = tuple  # ("p", tensor, dim) or ("a", module, attribute, position)
_TOL = 1e-6


class ConfigWarning(UserWarning):
    """A pruned model's Hugging Face config does not rebuild it (see the plan's notes)."""


@dataclass
class ConfigUpdate:
    """What :func:`update_configs` did: field values set (dotted paths per owner), notes,
    and ``failed``: the notes no cut of other groups could resolve (the cut meets a
    tensor the graph keeps whole, or a scale the config derives, such as Gemma's
    ``sqrt(hidden_size)``)."""

    values: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (note, module)


# -- who owns a config ------------------------------------------------------------------

def owners(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Outermost modules that hold a Hugging Face config and can be built from it."""
    found: list[tuple[str, nn.Module]] = []
    for name, m in model.named_modules():
        cfg = m.__dict__.get("config")
        if cfg is None or not hasattr(cfg, "to_dict") or not hasattr(type(m), "config_class"):
            continue
        if any(name == o or name.startswith(o + ".") or o == "" for o, _ in found):
            continue
        found.append((name, m))
    return found


def _prefix(owner: str, key: str) -> str:
    return f"{owner}:{key}" if owner else key


# -- observing a model ------------------------------------------------------------------

def observe(module: nn.Module) -> dict[Key, float]:
    """Every state_dict dim (``"p"``), every positive integer module attribute (``"a"``)
    and every positive float module attribute (``"f"``: scales), by key."""
    obs: dict[Key, float] = {}
    for name, t in module.state_dict(keep_vars=True).items():
        for d, size in enumerate(t.shape):
            obs[("p", name, d)] = int(size)
    for path, m in module.named_modules():
        for attr, v in m.__dict__.items():
            if attr.startswith("_"):
                continue
            if isinstance(v, float) and math.isfinite(v) and v > 0:
                obs[("f", path, attr, 0)] = v
                continue
            values = v if isinstance(v, (tuple, list)) else (v,)
            for i, x in enumerate(values):
                if isinstance(x, int) and not isinstance(x, bool) and x > 0:
                    obs[("a", path, attr, i)] = x
    return obs


def shape_mismatches(built: nn.Module, pruned: nn.Module) -> list[tuple[str, str]]:
    """``(name, message)`` for state_dict entries whose shape or presence differs."""
    a = {k: tuple(t.shape) for k, t in built.state_dict(keep_vars=True).items()}
    b = {k: tuple(t.shape) for k, t in pruned.state_dict(keep_vars=True).items()}
    return [(k, f"{k}: config builds {a.get(k, 'nothing')}, pruned model has "
                f"{b.get(k, 'nothing')}") for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def _floats(module: nn.Module) -> dict[tuple[str, str], float]:
    return {(path, attr): float(v) for path, m in module.named_modules()
            for attr, v in m.__dict__.items()
            if isinstance(v, float) and not attr.startswith("_")}


def float_mismatches(built: nn.Module, pruned: nn.Module) -> list[tuple[str, str]]:
    """Float module attributes a model built from the config would hold differently:
    scales derived from widths (Gemma's ``sqrt(hidden_size)`` embedding scale)."""
    a, b = _floats(built), _floats(pruned)
    return [(f"{key[0]}.{key[1]}", f"{'.'.join(filter(None, key))}: config gives "
             f"{a[key]:.6g}, pruned model has {b[key]:.6g}")
            for key in sorted(set(a) & set(b))
            if not math.isclose(a[key], b[key], rel_tol=1e-6, abs_tol=1e-12)]


def attribute_mismatches(built: nn.Module, pruned: nn.Module, changed: set[Key]
                         ) -> list[tuple[str, str]]:
    """Integer module attributes the cut changed (``changed``: keys of :func:`observe`)
    that a model built from the config would hold differently."""
    out = []
    built_obs, pruned_obs = observe(built), observe(pruned)
    for key in sorted(k for k in changed if k[0] == "a"):
        if key in built_obs and built_obs[key] != pruned_obs.get(key):
            name = ".".join(filter(None, (key[1], key[2])))
            out.append((name, f"{name}: config gives {built_obs[key]}, pruned model has "
                        f"{pruned_obs.get(key)}"))
    return out


# -- building from a config on the meta device ------------------------------------------

@contextlib.contextmanager
def _quiet_init() -> Iterator[None]:
    """Meta device, no weight init, no log noise (transformers' own helpers if present)."""
    try:
        from transformers.initialization import no_init_weights
    except ImportError:  # pragma: no cover - older transformers
        no_init_weights = contextlib.nullcontext
    try:
        from transformers.utils import logging as hf_logging
        level = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
    except ImportError:  # pragma: no cover
        hf_logging, level = None, None
    try:
        with torch.device("meta"), no_init_weights(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        if hf_logging is not None:
            hf_logging.set_verbosity(level)


def build(cls: type, cfg: Any) -> nn.Module:
    """``cls(copy of cfg)`` on the meta device (raises what the constructor raises)."""
    with _quiet_init():
        return cls(copy.deepcopy(cfg))


# -- config fields ------------------------------------------------------------------------

def _is_config(v: Any) -> bool:
    return hasattr(v, "to_dict") and hasattr(v, "to_json_string")


def fields(cfg: Any, prefix: str = "") -> dict[str, int]:
    """Positive integer fields by dotted path (``text_config.hidden_size``,
    ``intermediate_size[3]`` for per-layer lists)."""
    out: dict[str, int] = {}
    for name in cfg.to_dict():
        if name.startswith("_"):
            continue
        v = getattr(cfg, name, None)
        path = prefix + name
        if _is_config(v):
            out.update(fields(v, path + "."))
        elif isinstance(v, int) and not isinstance(v, bool) and v > 0:
            out[path] = v
        elif isinstance(v, (list, tuple)) and v and all(
                isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in v):
            out.update({f"{path}[{i}]": x for i, x in enumerate(v)})
    return out


def get_field(cfg: Any, path: str) -> Any:
    """Value at a dotted path (``[i]`` indexes a list); AttributeError if absent."""
    *parents, last = path.split(".")
    for p in parents:
        cfg = getattr(cfg, p)
    name, index = _split_index(last)
    value = getattr(cfg, name)
    return value if index is None else value[index]


def set_field(cfg: Any, path: str, value: Any) -> None:
    """Set a dotted path on ``cfg`` (a list element replaces the list, type kept)."""
    *parents, last = path.split(".")
    for p in parents:
        cfg = getattr(cfg, p)
    name, index = _split_index(last)
    if index is None:
        setattr(cfg, name, value)
        return
    old = getattr(cfg, name)
    new = list(old)
    new[index] = value
    setattr(cfg, name, type(old)(new) if isinstance(old, tuple) else new)


def _split_index(name: str) -> tuple[str, int | None]:
    if name.endswith("]") and "[" in name:
        base, idx = name[:-1].split("[", 1)
        return base, int(idx)
    return name, None


# -- the probe ----------------------------------------------------------------------------

@dataclass
class Probe:
    """Exponents of every observation in every probed field of one config."""

    base: dict[Key, int]
    values: dict[str, int]
    exponents: dict[str, dict[Key, float]]
    failed: list[str]
    structural: set[str] = field(default_factory=set)


_CACHE: dict[tuple[type, str], dict[str, dict[Key, float] | None]] = {}
_CACHE_SIZE = 8


def _cache(cls: type, cfg: Any) -> dict[str, dict[Key, float] | None]:
    """Exponents already probed for this class and config (prune cuts more than once)."""
    try:
        key = (cls, cfg.to_json_string(use_diff=False))
    except Exception:  # noqa: BLE001 - a config that does not serialize: no cache
        return {}
    if key not in _CACHE:
        while len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = {}
    return _CACHE[key]


def probe(cls: type, cfg: Any, candidates: dict[str, int]) -> Probe:
    """Build ``cls`` from ``cfg`` and from ``cfg`` with each candidate field doubled."""
    base = observe(build(cls, cfg))
    cache = _cache(cls, cfg)
    exps: dict[str, dict[Key, float]] = {}
    failed, structural = [], set()
    for path, v in candidates.items():
        if path not in cache:
            cache[path] = _exponents(cls, cfg, path, v, base)
        found = cache[path]
        if found is None:
            failed.append(path)
            continue
        exps_f, moved = found
        if exps_f:
            exps[path] = exps_f
        if moved:
            structural.add(path)
    return Probe(base, dict(candidates), exps, failed, structural)


def _exponents(cls: type, cfg: Any, path: str, v: int, base: dict[Key, int]
               ) -> tuple[dict[Key, float], bool] | None:
    """``log2`` of each observation's change when field ``path`` doubles, and whether
    tensors appear or vanish (a layer count, an optional projection: *structural*); None
    when the config or the model refuses the doubled value."""
    trial = copy.deepcopy(cfg)
    try:
        set_field(trial, path, 2 * v)
        obs = observe(build(cls, trial))
    except Exception:  # noqa: BLE001 - whatever the user's config class raises
        return None
    moved = {k[1] for k in obs if k[0] == "p"} != {k[1] for k in base if k[0] == "p"}
    exps = {k: math.log2(obs[k] / base[k]) for k in base if k in obs and obs[k] != base[k]}
    return exps, moved


def candidates(cfg: Any, built: dict[Key, int], target: dict[Key, int]) -> dict[str, int]:
    """Fields worth probing: those whose value divides an observation the cut changed
    (widths are products of fields: heads · head_dim, ratio · hidden ...)."""
    changed = {b for k, b in built.items() if target.get(k, b) != b}
    return {p: v for p, v in fields(cfg).items()
            if v >= 2 and any(b % v == 0 for b in changed)}


# -- solving ------------------------------------------------------------------------------

@dataclass
class Solution:
    """New field values (not yet rounded), tensor dims no value reaches, and fields whose
    layers need different values (``{field: the values they need}``)."""

    values: dict[str, float]
    unsolved: list[Key]
    conflicts: dict[str, list[float]] = field(default_factory=dict)


def _integral(e: float, halves: bool = False) -> bool:
    """An integer exponent (a half-integer for scales: ``sqrt(hidden_size)``)."""
    e = 2 * e if halves else e
    return abs(e - round(e)) < 1e-9


def solve(pr: Probe, target: dict[Key, int]) -> Solution:
    """Field values whose built model has the observations ``target`` (see module doc)."""
    names = list(pr.exponents)
    keys = [k for k in pr.base if k in target]
    linear = [k for k in keys if all(_integral(pr.exponents[f].get(k, 0.0), k[0] == "f")
                                     for f in names)]
    rows = {k: [pr.exponents[f].get(k, 0.0) for f in names] for k in linear}
    y = {k: math.log2(target[k] / pr.base[k]) for k in linear}
    hard = [k for k in linear if k[0] in "pf" and (any(rows[k]) or abs(y[k]) > _TOL)]
    soft = [k for k in linear if k[0] == "a" and any(rows[k])]
    if not names:
        return Solution({}, [k for k in hard if y[k]])
    x, unsolved = _lstsq(hard, rows, y, len(names))
    conflicts: dict[str, list[float]] = {}
    if unsolved:  # layers disagree: keep those fields, solve the others without them
        bad = {j for k in unsolved for j, e in enumerate(rows[k]) if e}
        conflicts = {names[j]: _implied(pr.values[names[j]], j, hard, rows, y) for j in bad}
        hard = [k for k in hard if not any(rows[k][j] for j in bad)]
        soft = [k for k in soft if not any(rows[k][j] for j in bad)]
        x, _ = _lstsq(hard, rows, y, len(names))
    x = _fill_null_space(x, hard, soft, rows, y, len(names))
    values = {f: pr.values[f] * 2.0 ** xf for f, xf in zip(names, x, strict=True)
              if abs(xf) > _TOL and f not in conflicts}
    return Solution(values, unsolved, conflicts)


def _implied(old: int, j: int, keys: list[Key], rows: dict, y: dict) -> list[float]:
    """Values field ``j`` would need, one per tensor dim that depends on it alone."""
    out = set()
    for k in keys:
        e = rows[k][j]
        if e and sum(bool(v) for v in rows[k]) == 1:
            out.add(round(old * 2.0 ** (y[k] / e), 3))
    return sorted(out)


def _lstsq(keys: list[Key], rows: dict, y: dict, n: int) -> tuple[np.ndarray, list[Key]]:
    if not keys:
        return np.zeros(n), []
    a = np.array([rows[k] for k in keys], dtype=float)
    b = np.array([y[k] for k in keys], dtype=float)
    x = np.linalg.lstsq(a, b, rcond=None)[0]
    resid = np.abs(a @ x - b)
    return x, [k for k, r in zip(keys, resid, strict=True) if r > _TOL]


def _fill_null_space(x: np.ndarray, hard: list[Key], soft: list[Key], rows: dict,
                     y: dict, n: int) -> np.ndarray:
    """Directions the shapes leave open are set by the module attributes."""
    if not soft:
        return x
    if hard:
        a = np.array([rows[k] for k in hard], dtype=float)
        _, s, vt = np.linalg.svd(a)
        rank = int(np.sum(s > 1e-9))
        null = vt[rank:].T
    else:
        null = np.eye(n)
    if null.size == 0:
        return x
    b = np.array([rows[k] for k in soft], dtype=float)
    r = np.array([y[k] for k in soft], dtype=float) - b @ x
    z = np.linalg.lstsq(b @ null, r, rcond=None)[0]
    return x + null @ z


# -- updating a model's configs -------------------------------------------------------------

def update_configs(model: nn.Module, movable: Collection[tuple[str, int]] | None = None
                   ) -> ConfigUpdate:
    """Bring every Hugging Face config in ``model`` in line with its (cut) modules.

    Returns the fields set (``{"hidden_size": 16, "text_config.num_heads": 2,
    "intermediate_size": [32, 48]}``; keys of a nested owner start with its module path
    and ``:``) and notes: where the config cannot describe the model, which tensors it
    would build differently and why. With ``movable`` (the ``(tensor, dim)`` pairs that
    prunable groups can cut), a note is also in ``failed`` when no further cut could
    make the config describe the model.
    """
    upd = ConfigUpdate()
    names = _canonical(model)
    for name, owner in owners(model):
        fixed = None
        if movable is not None:
            can = set(movable)
            sd = owner.state_dict(keep_vars=True)

            def fixed(k: Key, sd: dict = sd, can: set = can) -> bool:
                return (names.get(id(sd[k[1]]), k[1]), k[2]) not in can

        _update_owner(name, owner, upd, fixed)
    return upd


def warn(notes: list[str]) -> None:
    """Raise each note as a :class:`ConfigWarning`."""
    for note in notes:
        warnings.warn(note, ConfigWarning, stacklevel=3)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """No :class:`ConfigWarning` inside (cuts that are probed and undone)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)
        yield


def _canonical(model: nn.Module) -> dict[int, str]:
    """Tensor id -> the name the graph uses (the first of ``named_parameters``/buffers)."""
    out: dict[int, str] = {}
    for name, t in (*model.named_parameters(), *model.named_buffers()):
        out.setdefault(id(t), name)
    return out


def _update_owner(name: str, owner: nn.Module, upd: ConfigUpdate,
                  fixed: Callable[[Key], bool] | None) -> None:
    cls, cfg = type(owner), owner.config
    where = f"config of {name or type(owner).__name__}"
    target = observe(owner)
    try:
        built = build(cls, cfg)
    except Exception as err:  # noqa: BLE001 - the user's config, whatever it raises
        upd.notes.append(f"{where}: cannot be rebuilt on the meta device to check it "
                         f"({type(err).__name__}: {err})")
        return
    base = observe(built)
    if base == target and not float_mismatches(built, owner):
        return
    result = _solve_with_derived(cls, cfg, target, built, fixed)
    for path, value in result.values.items():
        set_field(cfg, path, value)
        top = path.split("[")[0]
        upd.values[_prefix(name, top)] = _plain(get_field(cfg, top))
    rebuilt = build(cls, cfg)
    changed = {k for k, v in target.items() if base.get(k) != v}
    bad = (shape_mismatches(rebuilt, owner) + float_mismatches(rebuilt, owner)
           + attribute_mismatches(rebuilt, owner, changed))
    if not bad:
        return
    shown = "; ".join(m for _, m in bad[:4])
    shown += f"; ... {len(bad) - 4} more" if len(bad) > 4 else ""
    reasons = [r for r, _ in result.hopeless] + result.problems
    why = f" ({'; '.join(reasons)})" if reasons else ""
    note = f"{where} does not rebuild the pruned model{why}: {shown}"
    upd.notes.append(note)
    if result.hopeless:
        module = result.hopeless[0][1]
        upd.failed.append((note, f"{name}.{module}" if name and module else name or module))


def _plain(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


@dataclass
class _Result:
    values: dict[str, int]
    problems: list[str]
    unsolved: list[Key]
    hopeless: list[tuple[str, str]]


def _solve_with_derived(cls: type, cfg: Any, target: dict[Key, int], built: nn.Module,
                        fixed: Callable[[Key], bool] | None) -> _Result:
    """Solve; if the shapes stay unreachable, write derived fields explicitly and retry."""
    base = observe(built)
    fields_now = candidates(cfg, base, target)
    first = _solve_once(cls, cfg, target, fields_now, fixed)
    if not first.unsolved:
        return first
    derived = _derived_fields(cls, cfg, built)
    if not derived:
        return first
    trial = copy.deepcopy(cfg)
    for path, v in derived.items():
        set_field(trial, path, v)
    second = _solve_once(cls, trial, target, {**fields_now, **derived}, fixed)
    if len(second.unsolved) >= len(first.unsolved):
        return first
    second.values = _needed(cls, cfg, {**derived, **second.values}, set(derived))
    return second


def _needed(cls: type, cfg: Any, values: dict[str, int], derived: set[str]
            ) -> dict[str, int]:
    """``values`` without the derived fields whose explicit value changes nothing."""
    def built(vals: dict[str, int]) -> dict[Key, float]:
        trial = copy.deepcopy(cfg)
        for path, v in vals.items():
            set_field(trial, path, v)
        return observe(build(cls, trial))

    want = built(values)
    for path in sorted(derived):
        rest = {p: v for p, v in values.items() if p != path}
        if built(rest) == want:
            values = rest
    return values


def _solve_once(cls: type, cfg: Any, target: dict[Key, int], candidates: dict[str, int],
                fixed: Callable[[Key], bool] | None) -> _Result:
    """One solve, rounded to integers; a structural field (a layer count) that the
    solution would change is held at its value and the rest solved again."""
    pr = probe(cls, cfg, candidates)
    sol = solve(pr, target)
    moved = pr.structural & set(sol.values)
    if moved and not _same_tensors(cls, cfg, sol.values, target):
        for path in moved:
            pr.exponents.pop(path, None)
        sol = solve(pr, target)
    values, problems = {}, []
    for path, v in sol.values.items():
        n = round(v)
        if n < 1 or abs(v - n) > 1e-6 * max(1.0, v):
            problems.append(f"{path} would need the value {v:.4g}")
            continue
        values[path] = n
    for path, need in sol.conflicts.items():
        shown = ", ".join(f"{v:g}" for v in need) if need else "different values"
        problems.append(f"{path} is one value for all layers, the pruned layers need {shown}")
    if sol.unsolved and not sol.conflicts:
        names = sorted({str(k[1]) for k in sol.unsolved})
        problems.append("no config field sets " + ", ".join(names[:6])
                        + (" ..." if len(names) > 6 else ""))
    hopeless = _hopeless(pr, target, fixed) if fixed is not None else []
    return _Result(values, problems, sol.unsolved, hopeless)


def _hopeless(pr: Probe, target: dict[Key, float], fixed: Callable[[Key], bool]
              ) -> list[tuple[str, str]]:
    """``(reason, module)`` for each field that a tensor the graph keeps whole (or a scale
    the model derives from it) holds at its old value while the cut changed a tensor or
    attribute that depends on it alone: no further cut can make the config describe the
    model. Layer counts are held, so they do not count as a second field."""
    out = []
    varying = [f for f in pr.exponents if f not in pr.structural]
    for f in varying:
        alone = [k for k in pr.exponents[f] if k in target and not any(
            k in pr.exponents[g] for g in varying if g != f)]
        kept = [k for k in alone if (k[0] == "p" and target[k] == pr.base[k] and fixed(k))
                or (k[0] == "f" and math.isclose(target[k], pr.base[k], rel_tol=1e-9))]
        cut = [k for k in alone if k[0] in "pa" and target[k] != pr.base[k]]
        if kept and cut:
            module = cut[0][1].rsplit(".", 1)[0] if cut[0][0] == "p" else cut[0][1]
            out.append((f"{f} is tied to {_name(kept[0])}, which stays "
                        f"{pr.base[kept[0]]:g}, while {_name(cut[0])} was cut", module))
    return out


def _name(k: Key) -> str:
    return f"{k[1]} dim {k[2]}" if k[0] == "p" else f"{k[1]}.{k[2]}"


def _same_tensors(cls: type, cfg: Any, values: dict[str, float],
                  target: dict[Key, int]) -> bool:
    """Whether ``cfg`` with ``values`` builds the same set of tensors as ``target``."""
    trial = copy.deepcopy(cfg)
    try:
        for path, v in values.items():
            set_field(trial, path, max(1, round(v)))
        names = {k[1] for k in observe(build(cls, trial)) if k[0] == "p"}
    except Exception:  # noqa: BLE001 - a value the config refuses
        return False
    return names == {k[1] for k in target if k[0] == "p"}


def _derived_fields(cls: type, cfg: Any, built: nn.Module) -> dict[str, int]:
    """Module attributes the config derives (``head_dim = hidden // heads``) that it
    also accepts as a field: ``{name: value}``, value as built now."""
    present = set(cfg.to_dict()) | set(getattr(cfg, "attribute_map", {}))
    seen: dict[str, set[int]] = {}
    for m in built.modules():
        for attr, v in m.__dict__.items():
            if isinstance(v, int) and not isinstance(v, bool) and v > 0 \
                    and not attr.startswith("_"):
                seen.setdefault(attr, set()).add(v)
    out = {}
    for attr, vals in seen.items():
        if len(vals) != 1 or (attr in present and getattr(cfg, attr, None) is not None):
            continue
        v = next(iter(vals))
        trial = copy.deepcopy(cfg)
        try:
            setattr(trial, attr, 2 * v)
            doubled = {getattr(m, attr) for m in build(cls, trial).modules()
                       if isinstance(getattr(m, attr, None), int)}
        except Exception:  # noqa: BLE001 - not a field this config takes
            continue
        if doubled == {2 * v}:
            out[attr] = v
    return out


def replay(model: nn.Module, config: dict[str, Any]) -> None:
    """Set recorded config values (:attr:`Plan.config`) on ``model``'s configs.

    Keys are dotted field paths of the outermost config owners (``owner:path`` for a
    nested owner). A plain name that no owner's config has is set on every config that
    has it (plans written before prunekit solved configs).
    """
    roots = dict(owners(model))
    for key, value in config.items():
        owner_name, _, path = key.rpartition(":")
        owner = roots.get(owner_name)
        if owner is not None:
            try:
                set_field(owner.config, path, value)
            except (AttributeError, IndexError, TypeError) as err:
                raise ValueError(f"plan sets config field {key!r}, which "
                                 f"{type(owner.config).__name__} cannot take: {err}") from err
            continue
        for m in model.modules():  # plans written before configs were solved
            cfg = m.__dict__.get("config")
            if cfg is not None and hasattr(cfg, "to_dict") and hasattr(cfg, path):
                setattr(cfg, path, value)
