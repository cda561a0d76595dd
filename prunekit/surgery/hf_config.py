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
from collections.abc import Iterator
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
    """What :func:`update_configs` did: field values set (dotted paths per owner), notes."""

    values: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


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

def observe(module: nn.Module) -> dict[Key, int]:
    """Every state_dict dim and every positive integer module attribute, by key."""
    obs: dict[Key, int] = {}
    for name, t in module.state_dict(keep_vars=True).items():
        for d, size in enumerate(t.shape):
            obs[("p", name, d)] = int(size)
    for path, m in module.named_modules():
        for attr, v in m.__dict__.items():
            if attr.startswith("_"):
                continue
            values = v if isinstance(v, (tuple, list)) else (v,)
            for i, x in enumerate(values):
                if isinstance(x, int) and not isinstance(x, bool) and x > 0:
                    obs[("a", path, attr, i)] = x
    return obs


def shape_mismatches(built: nn.Module, pruned: nn.Module) -> list[str]:
    """state_dict entries whose shape (or presence) differs between two models."""
    a = {k: tuple(t.shape) for k, t in built.state_dict(keep_vars=True).items()}
    b = {k: tuple(t.shape) for k, t in pruned.state_dict(keep_vars=True).items()}
    out = [f"{k}: config builds {a.get(k, 'nothing')}, pruned model has {b.get(k, 'nothing')}"
           for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
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
    failed = []
    for path, v in candidates.items():
        if path not in cache:
            cache[path] = _exponents(cls, cfg, path, v, base)
        if cache[path] is None:
            failed.append(path)
        elif cache[path]:
            exps[path] = cache[path]
    return Probe(base, dict(candidates), exps, failed)


def _exponents(cls: type, cfg: Any, path: str, v: int, base: dict[Key, int]
               ) -> dict[Key, float] | None:
    """``log2`` of each observation's change when field ``path`` doubles (None: the
    config or the model refuses the doubled value). Observations that appear or vanish
    (a layer count, an optional projection) are left out."""
    trial = copy.deepcopy(cfg)
    try:
        set_field(trial, path, 2 * v)
        obs = observe(build(cls, trial))
    except Exception:  # noqa: BLE001 - whatever the user's config class raises
        return None
    return {k: math.log2(obs[k] / base[k]) for k in base if k in obs and obs[k] != base[k]}


def candidates(cfg: Any, built: dict[Key, int], target: dict[Key, int]) -> dict[str, int]:
    """Fields worth probing: those whose value divides an observation the cut changed
    (widths are products of fields: heads · head_dim, ratio · hidden ...)."""
    changed = {b for k, b in built.items() if target.get(k, b) != b}
    return {p: v for p, v in fields(cfg).items()
            if v >= 2 and any(b % v == 0 for b in changed)}


# -- solving ------------------------------------------------------------------------------

@dataclass
class Solution:
    """New field values, and the observations the config could not reach."""

    values: dict[str, int]
    unsolved: list[Key]


def _integral(e: float) -> bool:
    return abs(e - round(e)) < 1e-9


def solve(pr: Probe, target: dict[Key, int]) -> Solution:
    """Field values whose built model has the observations ``target`` (see module doc)."""
    names = list(pr.exponents)
    keys = [k for k in pr.base if k in target]
    linear = [k for k in keys if all(_integral(pr.exponents[f].get(k, 0.0)) for f in names)]
    rows = {k: [pr.exponents[f].get(k, 0.0) for f in names] for k in linear}
    y = {k: math.log2(target[k] / pr.base[k]) for k in linear}
    hard = [k for k in linear if k[0] == "p" and (any(rows[k]) or y[k])]
    soft = [k for k in linear if k[0] == "a" and any(rows[k])]
    if not names:
        return Solution({}, [k for k in hard if y[k]])
    x, unsolved = _lstsq(hard, rows, y, len(names))
    x = _fill_null_space(x, hard, soft, rows, y, len(names))
    values = {}
    for f, xf in zip(names, x, strict=True):
        if abs(xf) > _TOL:
            values[f] = pr.values[f] * 2.0 ** xf
    return Solution(values, unsolved)


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

def update_configs(model: nn.Module) -> ConfigUpdate:
    """Bring every Hugging Face config in ``model`` in line with its (cut) modules.

    Returns the fields set (``{"hidden_size": 16, "text_config.num_heads": 2,
    "intermediate_size": [32, 48]}``; keys of a nested owner start with its module path
    and ``:``) and notes. Where the config cannot describe the model, the notes say
    which tensors it would build differently and a :class:`ConfigWarning` is raised.
    """
    upd = ConfigUpdate()
    for name, owner in owners(model):
        _update_owner(name, owner, upd)
    for note in upd.notes:
        warnings.warn(note, ConfigWarning, stacklevel=3)
    return upd


def _update_owner(name: str, owner: nn.Module, upd: ConfigUpdate) -> None:
    cls, cfg = type(owner), owner.config
    where = f"config of {name or type(owner).__name__}"
    target = observe(owner)
    try:
        built = build(cls, cfg)
    except Exception as err:  # noqa: BLE001 - the user's config, whatever it raises
        upd.notes.append(f"{where}: cannot be rebuilt on the meta device to check it "
                         f"({type(err).__name__}: {err})")
        return
    if observe(built) == target:
        return
    values, problems = _solve_with_derived(cls, cfg, target, built)
    for path, value in values.items():
        set_field(cfg, path, value)
        top = path.split("[")[0]
        upd.values[_prefix(name, top)] = _plain(get_field(cfg, top))
    bad = shape_mismatches(build(cls, cfg), owner)
    if bad:
        shown = "; ".join(bad[:4]) + (f"; ... {len(bad) - 4} more" if len(bad) > 4 else "")
        why = f" ({'; '.join(problems)})" if problems else ""
        upd.notes.append(f"{where} does not rebuild the pruned model{why}: {shown}")


def _plain(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def _solve_with_derived(cls: type, cfg: Any, target: dict[Key, int],
                        built: nn.Module) -> tuple[dict[str, int], list[str]]:
    """Solve; if the shapes stay unreachable, write derived fields explicitly and retry."""
    base = observe(built)
    values, problems, unsolved = _solve_once(cls, cfg, target, candidates(cfg, base, target))
    if not unsolved:
        return values, problems
    derived = _derived_fields(cls, cfg, built)
    if not derived:
        return values, problems
    trial = copy.deepcopy(cfg)
    for path, v in derived.items():
        set_field(trial, path, v)
    values2, problems2, unsolved2 = _solve_once(
        cls, trial, target, {**candidates(cfg, base, target), **derived})
    if len(unsolved2) >= len(unsolved):
        return values, problems
    return {**derived, **values2}, problems2


def _solve_once(cls: type, cfg: Any, target: dict[Key, int], candidates: dict[str, int]
                ) -> tuple[dict[str, int], list[str], list[Key]]:
    pr = probe(cls, cfg, candidates)
    sol = solve(pr, target)
    values, problems = {}, []
    for path, v in sol.values.items():
        n = round(v)
        if n < 1 or abs(v - n) > 1e-6 * max(1.0, v):
            problems.append(f"{path} would need the value {v:.4g}")
            continue
        values[path] = n
    if sol.unsolved:
        names = sorted({str(k[1]) for k in sol.unsolved})
        problems.append("layers differ where the config has one value for all: "
                        + ", ".join(names[:6]) + (" ..." if len(names) > 6 else ""))
    return values, problems, sol.unsolved


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
