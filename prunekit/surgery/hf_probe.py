"""What each field of a Hugging Face config does to the model it builds.

A config is *probed*: each integer field is doubled in turn and the model is built on
the meta device (no memory, no weight init). Comparing *observations* -- every dim of
every state_dict tensor (``"p"``), every positive integer module attribute (``"a"``) and
every positive float module attribute (``"f"``, scales) -- gives the exponent with which
each observation depends on each field (``q_proj`` rows ∝ heads · head_dim). :func:`solve`
then finds the field values whose model has given observations: a linear system in log
space, ``Σ_f e[k, f] · log2(new_f / old_f) = log2(target_k / built_k)``. Used by
:mod:`prunekit.surgery.hf_config`; nothing here knows a model class or a field name.
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

Key = tuple  # ("p", tensor, dim) | ("a" or "f", module, attribute, position)
TOL = 1e-6


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


@dataclass
class Cached:
    """What is known about one config class + values: the observations of the model it
    builds, exponents per probed field, and the fields it derives (see hf_config)."""

    base: dict[Key, float] | None = None
    exponents: dict[str, tuple[dict[Key, float], bool] | None] = field(default_factory=dict)
    derived: dict[str, int] | None = None


_CACHE: dict[tuple[type, str], Cached] = {}
_CACHE_SIZE = 8


def cached(cls: type, cfg: Any) -> Cached:
    """The cache entry of this class and config (prune cuts, probes and restores the same
    config many times; a config that does not serialize gets a fresh entry)."""
    try:
        key = (cls, cfg.to_json_string(use_diff=False))
    except Exception:  # noqa: BLE001 - a config that does not serialize: no cache
        return Cached()
    if key not in _CACHE:
        while len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = Cached()
    return _CACHE[key]


def base_observations(cls: type, cfg: Any) -> dict[Key, float]:
    """:func:`observe` of the model ``cls(cfg)`` (built once per config)."""
    entry = cached(cls, cfg)
    if entry.base is None:
        entry.base = observe(build(cls, cfg))
    return entry.base


def probe(cls: type, cfg: Any, candidates: dict[str, int]) -> Probe:
    """Build ``cls`` from ``cfg`` and from ``cfg`` with each candidate field doubled."""
    base = base_observations(cls, cfg)
    cache = cached(cls, cfg).exponents
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


def integral(e: float, halves: bool = False) -> bool:
    """An integer exponent (a half-integer for scales: ``sqrt(hidden_size)``)."""
    e = 2 * e if halves else e
    return abs(e - round(e)) < 1e-9


def solve(pr: Probe, target: dict[Key, int]) -> Solution:
    """Field values whose built model has the observations ``target`` (see module doc)."""
    names = list(pr.exponents)
    keys = [k for k in pr.base if k in target]
    linear = [k for k in keys if all(integral(pr.exponents[f].get(k, 0.0), k[0] == "f")
                                     for f in names)]
    rows = {k: [pr.exponents[f].get(k, 0.0) for f in names] for k in linear}
    y = {k: math.log2(target[k] / pr.base[k]) for k in linear}
    hard = [k for k in linear if k[0] in "pf" and (any(rows[k]) or abs(y[k]) > TOL)]
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
              if abs(xf) > TOL and f not in conflicts}
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
    return x, [k for k, r in zip(keys, resid, strict=True) if r > TOL]


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
