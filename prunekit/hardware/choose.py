"""Width or depth, by measurement: ``prune(..., target_speedup=T, structures=["depth",
"channels"])``.

Channel pruning shrinks every kernel; removing residual blocks removes kernels. Which one
buys a given speedup more cheaply depends on the device: on a GPU at batch 1 latency is set
by the number of kernel launches, so only depth helps; on a CPU at large batch, width is
usually cheaper in quality. Nothing is assumed here; both candidates are built on copies
and *measured* on the target device:

* **width** — :func:`prunekit.hardware.prune_to_speedup` (channels to a measured speedup);
* **depth** — whole layers removed lowest-score first: residual blocks (angular distance
  between a block's input and output, :func:`prunekit.structures.score_blocks`) and
  DenseNet layers (:mod:`prunekit.structures.units`); how many is searched by
  measurement, aimed by the blocks' share of the MACs
  (:func:`prunekit.hardware.depth_search.depth_to_speedup`: two or three timings);
* **depth+width** — when every removable block together falls short (speedup ``s_d < T``),
  channels of that depth-pruned model are cut to the remaining ``T / s_d`` (only blocks
  with a skip connection or a concatenated output can go, e.g. 9 of EfficientNet-B0's
  16; latency set by per-op overhead, as at batch 1, falls only when ops go).

Among the candidates that meet the target, ``prefer`` picks: ``"fidelity"`` (default) the
one whose outputs stay closest to the dense model's on the example inputs (cosine
similarity of the flattened outputs, ``⟨y_d, y_p⟩ / (‖y_d‖·‖y_p‖)``) — meaningful for a
trained model and representative inputs; ``"macs"`` the one that keeps the most MACs (the
highest realized efficiency ρ = speedup / MAC reduction: the least computation given up
for the speed asked — the sensible proxy when weights or inputs are not representative,
e.g. random weights); ``"speed"`` the fastest. If none meets it, the fastest. The choice
is then applied to ``model`` itself by replaying the winner's plan (all or nothing), and
the result's ``search`` lists every candidate with what was measured.
"""

from __future__ import annotations

import copy
import math
import time
from typing import Any, Literal

import torch
from torch import nn

from prunekit.hardware.depth_search import depth_to_speedup, retime, retime_near_miss
from prunekit.hardware.target import prune_to_speedup
from prunekit.hardware.timing import LatencyFn, model_latency_fn, paired_latency, with_batch
from prunekit.result import PruneResult, SpeedupResult

PREFER = {"fidelity": ("fidelity", "closest outputs"), "macs": ("macs", "most MACs kept"),
          "speed": ("measured_speedup", "fastest")}


def _outputs(model: nn.Module, x: Any) -> torch.Tensor:
    """The model's first output tensor on ``x`` (logits of a HF model), flattened."""
    from prunekit.inputs import call_model, first_tensor, inference_mode_of

    with inference_mode_of(model), torch.no_grad():
        out = first_tensor(call_model(model, x))
    if out is None:
        raise ValueError("the model returned no tensor: cannot compare candidates' outputs")
    return out.detach().float().flatten()


def fidelity(dense_out: torch.Tensor, model: nn.Module, x: Any) -> float:
    """Cosine similarity between the dense outputs and ``model``'s on ``x``."""
    y = _outputs(model, x)
    return float(torch.nn.functional.cosine_similarity(dense_out.detach().float(), y, dim=0))


def prune_width_or_depth(model: nn.Module, example_inputs: Any, target_speedup: float,
                         device: str = "cpu", threads: int | None = 2,
                         batch_size: int | None = None, rounds: int = 2, repeats: int = 3,
                         min_timing_ms: float = 200.0, latency_fn: LatencyFn | None = None,
                         prefer: Literal["fidelity", "macs", "speed"] = "fidelity",
                         **width_options: Any
                         ) -> PruneResult:
    """Measure a width plan, a depth plan and (when depth alone falls short) a
    depth-then-width plan on ``device``; apply the best one in place (module docstring).

    ``width_options`` go to :func:`prune_to_speedup` (importance, ignore, round_to, ...);
    ``min_timing_ms``: every CPU model timing runs at least this long (≤ 50 runs);
    ``prefer``: how to choose among candidates that meet the target (module docstring).
    Returns a :class:`~prunekit.result.PruneResult`; its ``speedup`` (a
    :class:`~prunekit.result.SpeedupResult`) is the chosen candidate's measurement,
    ``speedup.kind`` which one it is and ``speedup.search`` one summary per candidate
    first (``kind``, measured speedup, MACs, fidelity, met, the ``seconds`` it took; depth:
    the block counts ``measured``); the last of ``notes`` says why it was chosen.
    """
    from prunekit.hardware.signature import DeviceSpec
    from prunekit.measure import count_macs, count_params
    from prunekit.structures.units import replay_units
    from prunekit.surgery import Plan, apply_plan

    if prefer not in PREFER:
        raise ValueError(f"prefer must be one of {sorted(PREFER)}, got {prefer!r}")
    spec = DeviceSpec(device, threads, width_options.get("dtype", torch.float32),
                      width_options.get("channels_last", False))  # time both kinds alike
    fn = latency_fn or model_latency_fn(with_batch(example_inputs, batch_size), spec,
                                        warmup=1, repeats=repeats,
                                        min_total_ms=min_timing_ms)
    dense_out = _outputs(model, example_inputs)
    macs0, params0 = count_macs(model, example_inputs), count_params(model)

    width_model = copy.deepcopy(model)
    t0 = time.perf_counter()
    width = prune_to_speedup(width_model, example_inputs, target_speedup, device=device,
                             threads=threads, batch_size=batch_size, latency_fn=fn,
                             rounds=rounds, repeats=repeats, **width_options)
    t1 = time.perf_counter()
    (width_options.get("progress") or print_nothing)("depth: measuring plans without whole blocks")
    depth = depth_to_speedup(model, example_inputs, float(target_speedup), fn, rounds,
                             width_options.get("tolerance", 0.1))
    t2 = time.perf_counter()

    summary = [{"kind": "width", "measured_speedup": width.speedup.measured_speedup,
                "met": width.speedup.met, "macs": width.macs_after, "seconds": t1 - t0,
                "fidelity": fidelity(dense_out, width_model, example_inputs)}]
    def row(kind: str, cand: dict[str, Any]) -> dict[str, Any]:
        return {"kind": kind, "blocks_removed": depth["blocks_removed"],
                "measured_speedup": cand["measured_speedup"],
                "met": cand["measured_speedup"] >= target_speedup,
                "macs": count_macs(cand["model"], example_inputs),
                "fidelity": fidelity(dense_out, cand["model"], example_inputs),
                **{k: cand[k] for k in ("measured", "tries", "readings") if k in cand}}

    mixed = None
    if depth is not None:
        if 1.0 < depth["measured_speedup"] < target_speedup:
            t3 = time.perf_counter()
            mixed = _mixed_candidate(model, depth, example_inputs, float(target_speedup), fn,
                                     dict(device=device, threads=threads,
                                          batch_size=batch_size, rounds=rounds,
                                          repeats=repeats, **width_options))
            t4 = time.perf_counter()
        summary.append({**row("depth", depth), "seconds": t2 - t1})  # after a re-timing
        if mixed is not None:
            summary.append({**row("depth+width", mixed), "seconds": t4 - t3})
    met = [s for s in summary if s["met"]]
    chosen = max(met, key=lambda s: s[PREFER[prefer][0]]) if met else \
        max(summary, key=lambda s: s["measured_speedup"])
    why = (f"chose {chosen['kind']}: " + (f"{PREFER[prefer][1]} among the candidates that met "
           f"{target_speedup}x" if met else f"no candidate met {target_speedup}x; the faster")
           + " — " + "; ".join(f"{s['kind']} {s['measured_speedup']:.2f}x, fidelity "
                               f"{s['fidelity']:.4f}" for s in summary))
    if chosen["kind"] == "width":
        apply_plan(model, width.plan)
        width.model = model
        width.speedup.search = summary + width.speedup.search
        width.notes = [*width.notes, why]
        return width
    if chosen["kind"] == "depth":
        plans = replay_units(model, depth["plans"], example_inputs)
        result = PruneResult(model, Plan(), [], macs0, count_macs(model, example_inputs),
                             params0, count_params(model), plans=plans,
                             structures={p.structure: p for p in plans}, notes=[why])
        result.speedup = SpeedupResult(float(target_speedup), depth["measured_speedup"],
                                       chosen["met"], "depth", depth["dense_ms"],
                                       depth["pruned_ms"], result.mac_reduction,
                                       search=summary)
        return result
    return _apply_mixed(model, example_inputs, depth["plans"], mixed, summary, why,
                        float(target_speedup), chosen["met"], (macs0, params0))


def print_nothing(message: str) -> None:
    """The ``progress`` callback when none is given."""


MIX_TRIES = 3
OVERSHOOT_RETIMES = 2


def _mixed_candidate(model: nn.Module, depth: dict[str, Any], x: Any, target: float,
                     fn: LatencyFn, width_options: dict[str, Any]) -> dict[str, Any] | None:
    """Depth first, then width for the rest: the depth candidate fell short (``s_d <
    T``), so its blocks stay removed and :func:`prune_to_speedup` cuts channels of that
    model to the remaining ``r = T / s_d``. The speedup reported is measured against the
    dense model (alternating rounds). ``s_d`` is one noisy reading and a width step's
    speedup is not proportional to its aim (at batch 1 a step can jump past the per-op
    floor), so a mix measured outside ``[T, T·(1 + tol)]`` is redone from the depth model,
    after an overshoot has been timed ``OVERSHOOT_RETIMES`` more times (the median of its
    readings counts: at batch 1 a single fast reading took an attempt that met ``T``
    for a far overshoot and aimed the next one too low),
    up to ``MIX_TRIES`` attempts in all: with ``r`` rescaled by ``T·(1 + tol/2) / s``, or,
    once one attempt fell short and one overshot, interpolated between them in log–log
    (:func:`_next_rest`). Of the attempts, the one that meets ``T`` closest is kept
    (else the faster, timed once more when it fell short by less than the tolerance:
    its readings are averaged, as for depth). When the next ``r`` is ≤ 1 (the mix says
    depth alone reaches ``T``) the depth cut is timed twice more (median of its three
    readings, ``depth`` updated in place) and, if it still falls short, the width step
    aims from that median. None when no width step can be made."""
    tol = width_options.get("tolerance", 0.1)
    rest = target / depth["measured_speedup"]
    tries: list[dict[str, Any]] = []
    retimed = False
    while len(tries) < MIX_TRIES:
        if rest <= 1.0:  # the mix says depth alone reaches T: its reading was low
            if retimed:
                break
            retime(model, depth, fn, width_options.get("rounds", 2), times=2)
            retimed, rest = True, target / depth["measured_speedup"]
            continue  # depth alone may now meet T (rest <= 1), else aim from its median
        cand = copy.deepcopy(depth["model"])
        try:
            width = prune_to_speedup(cand, x, rest, latency_fn=fn, **width_options)
        except (ValueError, RuntimeError):
            break
        dense_ms, ms = paired_latency(model, cand, fn, width_options.get("rounds", 2))
        s = dense_ms / ms
        tries.append({"model": cand, "width": width, "dense_ms": dense_ms, "pruned_ms": ms,
                      "measured_speedup": s, "rest": rest})
        if s > target * (1 + tol):  # one fast reading must not steer the next rest
            retime(model, tries[-1], fn, width_options.get("rounds", 2), times=OVERSHOOT_RETIMES)
            s = tries[-1]["measured_speedup"]
        if target <= s <= target * (1 + tol):
            break
        rest = _next_rest(tries, target, tol)
    if not tries:
        return None
    met = [t for t in tries if t["measured_speedup"] >= target]
    best = min(met, key=lambda t: t["measured_speedup"]) if met else \
        max(tries, key=lambda t: t["measured_speedup"])
    best["tries"] = [{"rest": t["rest"], "speedup": t["measured_speedup"],
                      **({"readings": list(t["readings"])} if "readings" in t else {}),
                      "width_speedup": t["width"].speedup.measured_speedup,
                      "width_candidates": [round(r["speedup"], 3)
                                           for r in t["width"].speedup.search]}
                     for t in tries]
    if not met:
        retime_near_miss(model, best, fn, width_options.get("rounds", 2), target, tol)
    return best


def _next_rest(tries: list[dict[str, Any]], target: float, tol: float) -> float:
    """The width target of the next mix attempt, aiming at ``a = T·(1 + tol/2)``: between
    the largest ``r`` that fell short (speedup ``s_lo``) and the smallest that overshot
    (``s_hi``), ``r = r_lo·(r_hi / r_lo)^θ`` with ``θ = ln(a / s_lo) / ln(s_hi / s_lo)``;
    without such a bracket, the last ``r`` rescaled by ``a / s``."""
    aim = target * (1 + tol / 2)
    short = [t for t in tries if t["measured_speedup"] < target]
    over = [t for t in tries if t["measured_speedup"] > target * (1 + tol)]
    if short and over:
        lo = max(short, key=lambda t: t["rest"])
        hi = min(over, key=lambda t: t["rest"])
        s_lo, s_hi = lo["measured_speedup"], hi["measured_speedup"]
        if lo["rest"] < hi["rest"] and s_lo < s_hi:
            theta = math.log(aim / s_lo) / math.log(s_hi / s_lo)
            return lo["rest"] * (hi["rest"] / lo["rest"]) ** theta
    last = tries[-1]
    return last["rest"] * aim / last["measured_speedup"]


def _apply_mixed(model: nn.Module, x: Any, depth_plans: list[Any], mixed: dict[str, Any],
                 summary: list[dict[str, Any]], why: str, target: float, met: bool,
                 before: tuple[int, int]) -> PruneResult:
    """Replay the depth plans, then the width plan, on ``model``: all or nothing."""
    from prunekit.measure import count_macs, count_params
    from prunekit.structures.units import replay_units
    from prunekit.surgery import apply_plan, transaction

    with transaction(model, copy_values=True):
        plans = replay_units(model, depth_plans, x)
        apply_plan(model, mixed["width"].plan, x)
    width = mixed["width"]
    result = PruneResult(model, width.plan, width.skipped, before[0], count_macs(model, x),
                         before[1], count_params(model), notes=[*width.notes, why],
                         plans=[*plans, width.plan], structures={p.structure: p for p in plans})
    result.speedup = SpeedupResult(target, mixed["measured_speedup"], met, "depth+width",
                                   mixed["dense_ms"], mixed["pruned_ms"],
                                   result.mac_reduction, multiple=width.speedup.multiple,
                                   device=width.speedup.device,
                                   search=summary + width.speedup.search)
    return result
