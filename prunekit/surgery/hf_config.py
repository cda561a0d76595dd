"""Hugging Face configs that rebuild the pruned model, for any ``PretrainedConfig``.

After a cut, ``type(model)(model.config)`` must build exactly the pruned model, or
``from_pretrained`` of a saved pruned model fails. Nothing here knows a model class or a
field name: the config's fields are probed (:mod:`.hf_probe`) and solved for the cut
model's observations:

* tensor dims and scales are hard equations; when they have no exact solution the
  layers disagree (one value per layer where the config has one value for all), and the
  field is left as it was;
* module attributes (``num_heads``, ``head_dim`` ...) only decide what the shapes leave
  open, e.g. BERT's head count, which no tensor shape shows;
* a derived field (Qwen2's ``head_dim = hidden // heads``) is written explicitly when
  the solution needs it: a module attribute whose name the config accepts and controls;
* a layer count is never changed to fit widths.

Every update is verified: the model is built from the new config on the meta device and
its state_dict shapes, float attributes and the integer attributes the cut changed are
compared with the pruned model's. What differs is said in the plan's notes and raised as
a :class:`ConfigWarning`. A cut that no further cut could make describable -- it changed
a width that the config ties to a tensor the graph keeps whole, or to a scale derived
from it (Gemma's ``sqrt(hidden_size)`` embedding scale) -- is reported in
``ConfigUpdate.failed`` so that surgery can refuse it like a failed forward check.
"""

from __future__ import annotations

import contextlib
import copy
import math
import warnings
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from prunekit.surgery.hf_probe import (
    Key,
    Probe,
    base_observations,
    build,
    cached,
    candidates,
    get_field,
    observe,
    probe,
    set_field,
    solve,
)


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


def mismatches(built: dict[Key, float], pruned: dict[Key, float], changed: set[Key]
               ) -> list[tuple[str, str]]:
    """``(name, message)`` for what a model built from the config would hold differently
    from the pruned one (observations of :func:`observe`): tensor shapes and presence,
    float attributes (scales derived from widths, e.g. Gemma's ``sqrt(hidden_size)``
    embedding scale) and the integer attributes the cut changed (``changed``)."""
    out = []
    for t in sorted({k[1] for k in (*built, *pruned) if k[0] == "p"}):
        a, b = _shape(built, t), _shape(pruned, t)
        if a != b:
            out.append((t, f"{t}: config builds {a or 'nothing'}, pruned model has "
                           f"{b or 'nothing'}"))
    for k in sorted(k for k in built if k[0] == "f" and k in pruned):
        if not math.isclose(built[k], pruned[k], rel_tol=1e-6, abs_tol=1e-12):
            name = ".".join(filter(None, (k[1], k[2])))
            out.append((name, f"{name}: config gives {built[k]:.6g}, pruned model has "
                              f"{pruned[k]:.6g}"))
    for k in sorted(k for k in changed if k[0] == "a" and k in built):
        if built[k] != pruned.get(k):
            name = ".".join(filter(None, (k[1], k[2])))
            out.append((name, f"{name}: config gives {built[k]}, pruned model has "
                              f"{pruned.get(k)}"))
    return out


def _shape(obs: dict[Key, float], tensor: str) -> tuple[int, ...] | None:
    dims = sorted((k[2], int(v)) for k, v in obs.items() if k[0] == "p" and k[1] == tensor)
    return tuple(v for _, v in dims) if dims else None


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
        base = base_observations(cls, cfg)
    except Exception as err:  # noqa: BLE001 - the user's config, whatever it raises
        upd.notes.append(f"{where}: cannot be rebuilt on the meta device to check it "
                         f"({type(err).__name__}: {err})")
        return
    if not mismatches(base, target, set()):
        return
    result = _solve_with_derived(cls, cfg, target, base, fixed)
    rebuilt = _apply_values(cls, cfg, result)
    if rebuilt is None:
        rebuilt = base
    else:
        for path in result.values:
            top = path.split("[")[0]
            upd.values[_prefix(name, top)] = _plain(get_field(cfg, top))
    changed = {k for k, v in target.items() if base.get(k) != v}
    bad = mismatches(rebuilt, target, changed)
    if not bad:
        return
    shown = "; ".join(m for _, m in bad[:4])
    shown += f"; ... {len(bad) - 4} more" if len(bad) > 4 else ""
    reasons = [r for r, _ in result.hopeless] + result.problems
    why = f" ({'; '.join(reasons)})" if reasons else ""
    note = f"{where} does not rebuild the pruned model{why}: {shown}"
    upd.notes.append(note)
    if result.hopeless and fixed is not None:
        module = result.hopeless[0][1]
        upd.failed.append((note, f"{name}.{module}" if name and module else name or module))


_MISSING = object()


def _get_or_missing(cfg: Any, path: str) -> Any:
    try:
        return get_field(cfg, path)
    except AttributeError:
        return _MISSING


def _apply_values(cls: type, cfg: Any, result: _Result) -> dict[Key, float] | None:
    """Set the solved values on ``cfg``; the observations of the model it now builds.
    Values the config refuses to build with (BERT: hidden size not a multiple of the
    heads) are taken back (None) and said in ``result.problems``."""
    old = {path: _get_or_missing(cfg, path) for path in result.values}
    try:
        for path, value in result.values.items():
            set_field(cfg, path, value)
        return observe(build(cls, cfg))
    except Exception as err:  # noqa: BLE001 - whatever the config class refuses
        for path, value in old.items():
            if value is _MISSING:  # a derived field written explicitly: remove it again
                with contextlib.suppress(AttributeError):
                    delattr(cfg, path)
            else:
                set_field(cfg, path, value)
        shown = ", ".join(f"{p}={v}" for p, v in result.values.items())
        result.problems.append(f"{shown} does not build ({type(err).__name__}: {err}), so "
                               "the config was left as it was")
        return None


def _plain(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


@dataclass
class _Result:
    values: dict[str, int]
    problems: list[str]
    unsolved: list[Key]
    hopeless: list[tuple[str, str]]


def _solve_with_derived(cls: type, cfg: Any, target: dict[Key, float],
                        base: dict[Key, float], fixed: Callable[[Key], bool] | None) -> _Result:
    """Solve; if the shapes stay unreachable, write derived fields explicitly and retry."""
    fields_now = candidates(cfg, base, target)
    first = _solve_once(cls, cfg, target, fields_now, fixed)
    if not first.unsolved:
        return first
    entry = cached(cls, cfg)
    if entry.derived is None:
        entry.derived = _derived_fields(cls, cfg, base)
    derived = entry.derived
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
    held = pr.structural & set(sol.values)
    if held and not _same_tensors(cls, cfg, sol.values, target):
        for path in held:
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
        problems.append(f"{path} is one value, the pruned model needs {shown} (layers or "
                        "parts tied to it differ)")
    if sol.unsolved and not sol.conflicts:
        names = sorted({str(k[1]) for k in sol.unsolved})
        problems.append("no config field sets " + ", ".join(names[:6])
                        + (" ..." if len(names) > 6 else ""))
    hopeless = _hopeless(pr, target, fixed or (lambda k: False))
    return _Result(values, problems, sol.unsolved, hopeless)


def _hopeless(pr: Probe, target: dict[Key, float], fixed: Callable[[Key], bool]
              ) -> list[tuple[str, str]]:
    """``(reason, module)`` for each field that a tensor the graph keeps whole (or a scale
    the model derives from it) holds at its old value while the cut changed a tensor or
    attribute that depends on it alone: no further cut can make the config describe the
    model. (Layer counts the solve held are no longer in ``pr.exponents``: they do not
    count as a second field.)"""
    out = []
    varying = list(pr.exponents)
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


def _derived_fields(cls: type, cfg: Any, base: dict[Key, float]) -> dict[str, int]:
    """Module attributes the config derives (``head_dim = hidden // heads``) that it
    also accepts as a field: ``{name: value}``, value as built now."""
    present = set(cfg.to_dict()) | set(getattr(cfg, "attribute_map", {}))
    seen: dict[str, set[float]] = {}
    for k, v in base.items():
        if k[0] == "a" and k[3] == 0:
            seen.setdefault(k[2], set()).add(v)
    out = {}
    for attr, vals in seen.items():
        if len(vals) != 1 or (attr in present and getattr(cfg, attr, None) is not None):
            continue
        v = int(next(iter(vals)))
        trial = copy.deepcopy(cfg)
        try:
            setattr(trial, attr, 2 * v)
            doubled = {o for k, o in observe(build(cls, trial)).items()
                       if k[0] == "a" and k[2] == attr and k[3] == 0}
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
