"""``diagnose(model, calibration)``: redundancy and collapse measures for every layer.

For every conv/linear layer (its filters and its output) and every coupled group of
:func:`prunekit.graph.build_groups` (its penalized channel vectors and the most
downstream activation carrying its channels) the record holds weight and activation
cosine/correlation summaries (:mod:`.similarity`), the effective rank of the activations
(:mod:`.rank`) and the dead channels (:mod:`.dead`). The model is only read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from prunekit.diagnose.collect import Collection, Recorded, collect, read_batches
from prunekit.diagnose.dead import dead_mask, never_positive_mask
from prunekit.diagnose.moments import ChannelMoments
from prunekit.diagnose.rank import energy_rank, erank_from_singular_values, singular_values
from prunekit.diagnose.records import Diagnosis, LayerRecord
from prunekit.diagnose.similarity import correlation_matrix, cosine_matrix, summarize
from prunekit.diagnose.weights import group_weight_moments, is_weight_layer, layer_weight_moments


@dataclass(frozen=True)
class Settings:
    """Thresholds shared by every record (see :func:`diagnose`)."""

    threshold: float = 0.9
    dead_tol: float = 1e-6
    energy: float = 0.99
    center: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold!r}")
        if not self.dead_tol >= 0:
            raise ValueError(f"dead_tol must be >= 0, got {self.dead_tol!r}")
        if not 0.0 < self.energy <= 1.0:
            raise ValueError(f"energy must be in (0, 1], got {self.energy!r}")


def diagnose(model: nn.Module, calibration: Any, *, groups: Any = True,
             threshold: float = 0.9, dead_tol: float = 1e-6, energy: float = 0.99,
             center: bool = True, max_batches: int | None = None,
             inputs_of: Callable[[Any], Any] | None = None, max_channels: int = 2048,
             progress: bool = False) -> Diagnosis:
    """Redundancy measures of every conv/linear layer and every coupled channel group.

    Parameters
    ----------
    model
        Any ``nn.Module`` with at least one ``Conv*d``/``Linear`` layer; it is not changed
        (run in eval mode under ``no_grad``; flags and hooks restored).
    calibration
        A tensor (one batch of inputs) or an iterable of batches (``(x, y)`` pairs with
        integer labels give ``x``; see :func:`.collect.default_inputs`, or ``inputs_of``).
    groups
        True: build the graph groups from the first batch; a ``GroupSet`` (or list of
        groups): use it; False: layers only.
    threshold
        Pairs with ``|S_ij| > threshold`` are counted as highly similar, channels with an
        earlier twin ``S_ij ≥ threshold`` as near-duplicates.
    dead_tol
        A channel with ``max |a| ≤ dead_tol`` on all calibration data is dead.
    energy
        Energy share for the energy rank (0.99: singular values holding 99 % of Σσ²).
    center
        Effective rank of the centered activations (the covariance spectrum); False:
        of the raw activation matrix.
    max_batches
        Use at most this many calibration batches.
    max_channels
        Activations wider than this are not accumulated (a C×C Gram per layer); noted.

    Raises
    ------
    TypeError
        If ``model`` is not an ``nn.Module`` or ``calibration`` has a wrong type.
    ValueError
        If the model has no conv/linear layer, the calibration data is empty, a
        threshold is out of range or the inputs do not run through the model.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    settings = Settings(threshold, dead_tol, energy, center)
    layers = [(n, m) for n, m in model.named_modules() if is_weight_layer(m)]
    if not layers:
        raise ValueError(f"model: {type(model).__name__} has no Conv/Linear layer to diagnose")
    batches = read_batches(calibration, max_batches, inputs_of)
    group_list = _groups(model, batches[0], groups)
    wanted = {(n, _channel_dim(m)) for n, m in layers}
    wanted |= {(name, dim) for g in group_list for name, dim in g.sources}
    try:
        acts = collect(model, batches, wanted, max_channels, progress)
    except Exception as err:
        raise ValueError(f"calibration: the batches do not run through the model: "
                         f"{type(err).__name__}: {err}") from err
    notes = [_missing(n, m, max_channels) for n, m in layers
             if acts.first(n, _channel_dim(m)) is None]
    layer_recs = [_record(n, _kind(m), layer_weight_moments(m),
                          acts.first(n, _channel_dim(m)), n, settings) for n, m in layers]
    group_recs = []
    for g in group_list:
        source, rec = _group_activation(g, acts)
        group_recs.append(_record(g.id, "group", group_weight_moments(model, g), rec, source,
                                  settings, channels=int(g.size)))
    config = {"threshold": threshold, "dead_tol": dead_tol, "energy": energy, "center": center,
              "batches": acts.batches, "max_channels": max_channels}
    return Diagnosis(layer_recs, group_recs, config, notes)


def _groups(model: nn.Module, example: Any, groups: Any) -> list[Any]:
    if groups is False or groups is None:
        return []
    if groups is True:
        from prunekit.graph import build_groups

        return list(build_groups(model, example).groups)
    found = getattr(groups, "groups", groups)
    if not isinstance(found, list | tuple):
        raise TypeError(f"groups must be True/False, a GroupSet or a list of groups, got "
                        f"{type(groups).__name__}")
    return list(found)


def _missing(name: str, module: nn.Module, max_channels: int) -> str:
    """Why a layer has no activation measures."""
    if module.weight.shape[0] > max_channels:
        return f"{name}: activation wider than max_channels={max_channels}, not accumulated"
    return f"{name}: not called on the calibration data (no activation measures)"


def _channel_dim(module: nn.Module) -> int:
    return -1 if isinstance(module, nn.Linear) else 1


def _kind(module: nn.Module) -> str:
    return "linear" if isinstance(module, nn.Linear) else "conv"


def _group_activation(group: Any, acts: Collection) -> tuple[str | None, Recorded | None]:
    """The last observed source of ``group`` with one column per channel, at full
    resolution.

    Sources are walked in execution order; for a module called several times the call
    taken is the first one after the previous source's call (so a shared ReLU gives this
    group's activation, not another call's). Of the sources seen, the last one with the
    most rows is used: after BatchNorm and the activation function, but before a pooling
    that would leave fewer samples than channels (a global average pool).
    """
    seen: list[tuple[str, Recorded]] = []
    last_seq = -1
    for name, dim in group.sources:
        calls = [r for r in acts.calls.get((name, dim), [])
                 if r.moments.channels == group.size and r.moments.n > 0]
        if not calls:
            continue
        later = [r for r in calls if r.seq > last_seq]
        pick = later[0] if later else calls[-1]
        seen.append((name, pick))
        last_seq = pick.seq
    if not seen:
        return None, None
    rows = max(rec.moments.n for _, rec in seen)
    return next((name, rec) for name, rec in reversed(seen) if rec.moments.n == rows)


def _record(name: str, kind: str, weights: ChannelMoments | None, act: Recorded | None,
            source: str | None, s: Settings, channels: int | None = None) -> LayerRecord:
    width = channels if channels is not None else weights.channels
    rec = LayerRecord(name, kind, width)
    if weights is not None:
        rec.weight_cosine = summarize(cosine_matrix(weights), s.threshold)
        rec.weight_correlation = summarize(correlation_matrix(weights), s.threshold)
    if act is None:
        return rec
    m = act.moments
    rec.source, rec.rows = source, m.n
    rec.act_cosine = summarize(cosine_matrix(m), s.threshold)
    rec.act_correlation = summarize(correlation_matrix(m), s.threshold)
    sigma = singular_values(m, s.center)
    rec.erank = erank_from_singular_values(sigma)
    rec.energy_rank = energy_rank(sigma, s.energy)
    rec.dead = int(dead_mask(m, s.dead_tol).sum())
    rec.never_positive = int(never_positive_mask(m, s.dead_tol).sum())
    return rec
