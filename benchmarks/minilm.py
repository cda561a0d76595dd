"""Pretrained all-MiniLM-L6-v2: heads / FFN / layers / combined plans at 1.5x and 2x
*measured* CPU speedup, WordNet Recall@1 before and after distillation, Torch-Pruning beside.

For every plan kind and target speedup the script

1. picks the smallest cut whose theoretical MAC ratio reaches the target (analytic count for
   a BERT layer), cuts a copy of the dense model (width: ``prunekit.graph`` +
   ``prunekit.surgery`` with the ``l2`` criterion, the same fraction of every layer; depth:
   ``prunekit.structures.prune_depth`` with angular distance on WordNet text),
2. measures latency (batch 32, sequence 64, 2 threads, median) and, while the measured
   speedup is short of the target, cuts one step more (at most ``--max-steps`` times),
3. reports Recall@1 of definition -> noun retrieval among 2,000 WordNet nouns and the mean
   cosine to the dense embeddings, before and after distillation from the dense model on
   unlabeled WordNet definitions/examples (a local loop: ``prunekit.methods.fit`` trains
   classifiers on ``(X, y)`` tensors and cannot feed token batches or an embedding loss).

Heads-only cannot reach 2x: attention projections are ~1/3 of a layer's MACs at
sequence 64, so even removing every head leaves the FFN; such cells are marked infeasible.

Timing: dense and pruned in paired ABBA rounds (``benchmarks.harness.timing``, every
reading kept, medians). Torch-Pruning (at the FFN/heads cut's shapes) uses the same kind of
criterion as ours: magnitude with ``--criterion l2``, Taylor when ours is data-driven.
Recipes (distillation settings) must be chosen on a held-out noun set
(``--sample random --sample-seed K``), then reported once on the standard set.

Usage::

    nice -n 10 python benchmarks/minilm.py              # full (~1 CPU-hour)
    python benchmarks/minilm.py --smoke                 # seconds, tiny random BERT
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from torch import nn

if __package__ in (None, ""):  # run as a file: make `benchmarks.harness` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import harness  # noqa: E402
from benchmarks.harness import plots, tables, timing  # noqa: E402
from prunekit.eval import (  # noqa: E402
    RetrievalSet,
    load_minilm,
    relational_loss,
    wordnet_retrieval,
    wordnet_retrieval_set,
)
from prunekit.eval.embed import mean_pool, tokenize  # noqa: E402
from prunekit.measure import count_macs  # noqa: E402
from prunekit.structures import prune_depth  # noqa: E402

KINDS = ("heads", "ffn", "layers", "combined", "layer_ffn", "heads_ffn")
console = Console(width=170)


@dataclass
class Setup:
    """Everything a plan needs: the dense model, its tokenizer, data and timing inputs."""

    dense: nn.Module
    tokenizer: Any
    data: RetrievalSet
    timing_inputs: dict[str, torch.Tensor]
    calib: list[dict[str, torch.Tensor]]
    args: argparse.Namespace
    timings: list[dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        self.timings = [] if self.timings is None else self.timings


# ----------------------------------------------------------------------------- setup
def load_setup(args: argparse.Namespace) -> Setup:
    """Real MiniLM + WordNet, or (``--smoke``) a tiny random BERT + synthetic text."""
    if args.smoke:
        model, tok, data = _smoke_model_and_data()
    else:
        model, tok = load_minilm()
        data = wordnet_retrieval_set(args.n, sample=args.sample, seed=args.sample_seed,
                                     n_extra=args.n_extra, extra_lemmas=args.extra_lemmas,
                                     extra_pos=args.extra_pos)
    g = harness.generator(0)
    ids = torch.randint(1000, tok.vocab_size, (args.batch, args.seq), generator=g)
    timing = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    text = data.extra_text
    calib = [tokenize(tok, text[i:i + 32], args.seq) for i in range(0, min(128, len(text)), 32)]
    return Setup(model, tok, data, timing, calib, args)


def _smoke_model_and_data() -> tuple[nn.Module, Any, RetrievalSet]:
    from transformers import BertConfig, BertModel

    harness.seed_all(0)
    cfg = BertConfig(hidden_size=64, num_hidden_layers=4, num_attention_heads=4,
                     intermediate_size=256, vocab_size=1200)
    tok = _ToyTokenizer(cfg.vocab_size)
    words = [f"w{i}" for i in range(40)]
    data = RetrievalSet(words, [f"{w} thing number {i}" for i, w in enumerate(words)],
                        [f"some text {i} about w{i % 7}" for i in range(96)])
    return BertModel(cfg).eval(), tok, data


class _ToyTokenizer:
    """Hashes words to ids; enough for the smoke run (no files needed)."""

    def __init__(self, vocab_size: int) -> None:
        self.vocab_size = vocab_size

    def __call__(self, texts, padding=True, truncation=True, max_length=64, return_tensors="pt"):
        rows = [[1000 + hash(w) % (self.vocab_size - 1000) for w in t.split()][:max_length]
                for t in texts]
        width = max(len(r) for r in rows)
        ids = torch.zeros(len(rows), width, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, r in enumerate(rows):
            ids[i, :len(r)], mask[i, :len(r)] = torch.tensor(r), 1
        return {"input_ids": ids, "attention_mask": mask}


# ----------------------------------------------------------------------------- cuts
def analytic_macs(cfg: Any, layers: int, heads: int, ffn: int, seq: int) -> float:
    """MACs per sequence of a uniform BERT encoder (theory guide for picking cuts).

    Per layer and token: Q, K, V, O projections ``4·d·h·dh``, attention scores and
    weighted sum ``2·T·h·dh``, FFN ``2·d·u``.
    """
    d, dh = cfg.hidden_size, cfg.hidden_size // cfg.num_attention_heads
    return layers * seq * (4 * d * heads * dh + 2 * seq * heads * dh + 2 * d * ffn)


def plan_shape(cfg: Any, kind: str, step: int, ffn_unit: int | None = None
               ) -> tuple[int, int, int]:
    """(layers removed, heads removed per layer, FFN units removed per layer) of cut
    ``step`` of a plan kind; steps grow monotonically in the amount cut.

    ``ffn_unit``: FFN units per step of ``ffn`` and ``heads_ffn`` (default ``u/48``,
    multiples of 32 on MiniLM). ``heads_ffn`` (width only, every layer kept) removes
    ``step`` FFN units and ``round(step·unit/u · h)`` heads: the same fraction of both."""
    h, u = cfg.num_attention_heads, cfg.intermediate_size
    unit = max(ffn_unit or u // 48, 1)
    if kind == "heads":
        return 0, min(step, h - 1), 0
    if kind == "ffn":
        return 0, 0, min(step * unit, u - unit)
    if kind == "heads_ffn":
        du = min(step * unit, u - unit)
        return 0, min(math.floor(du / u * h + 0.5), h - 1), du
    if kind == "layers":
        return min(step, cfg.num_hidden_layers - 1), 0, 0
    if kind == "layer_ffn":  # one layer, then FFN width in 1/24 steps (multiples of 64)
        unit64 = max(u // 24, 1)
        return 1, 0, min(step * unit64, u - unit64)
    frac = step / 48  # combined: one layer, then heads and FFN by the same fraction
    return 1, min(round(frac * h), h - 1), min(round(frac * u / unit) * unit, u - unit)


def first_step(cfg: Any, kind: str, target: float, seq: int,
               ffn_unit: int | None = None) -> int | None:
    """Smallest step whose analytic MAC ratio reaches ``target`` (None: unreachable)."""
    dense = analytic_macs(cfg, cfg.num_hidden_layers, cfg.num_attention_heads,
                          cfg.intermediate_size, seq)
    for step in range(1, 49):
        dl, dh, du = plan_shape(cfg, kind, step, ffn_unit)
        cut = analytic_macs(cfg, cfg.num_hidden_layers - dl, cfg.num_attention_heads - dh,
                            cfg.intermediate_size - du, seq)
        if dense / cut >= target:
            return step
        if plan_shape(cfg, kind, step + 1, ffn_unit) == (dl, dh, du):
            return None
    return None


def cut(setup: Setup, shape: tuple[int, int, int]) -> tuple[nn.Module, float, list[int]]:
    """A pruned copy of the dense model, the seconds pruning took and the original
    positions of the encoder layers it keeps (for layer-to-layer distillation).

    Layers are chosen by ``--layer-score``: ``angular`` (input/output angle of each
    layer) or ``loss`` (how far the pooled sentence embedding moves from the dense one
    when the layer is skipped, ``1 − cos(e_skip, e_dense)`` on the calibration text);
    ``--iterative`` re-scores after each removal. Heads and FFN units are ranked per
    layer by ``--criterion`` (a ``prunekit.importance`` name; data-driven ones use the
    calibration text), the lowest-scored go."""
    from prunekit.graph import build_groups
    from prunekit.importance import get
    from prunekit.importance.context import ImportanceContext
    from prunekit.surgery import remove_channels

    model = copy.deepcopy(setup.dense)
    ex = setup.calib[0]
    t0 = time.perf_counter()
    layers, heads, ffn = shape
    kept = list(range(setup.dense.config.num_hidden_layers))
    if setup.args.sublayers:
        drop_sublayers(model, setup.args.sublayers)
    if layers:
        kept = _remove_layers(model, setup, layers)
    if heads or ffn:
        gs = build_groups(model, ex)
        score = get(setup.args.criterion)
        ctx = ImportanceContext(example_inputs=ex, batches=setup.calib)
        plan = {}
        for g in gs.groups:
            k = heads if g.id.endswith("attention.self.query") else (
                ffn if g.id.endswith("intermediate.dense") else 0)
            if k:
                plan[g.id] = torch.argsort(score(model, g, ctx))[:k].tolist()
        remove_channels(model, gs, plan, ex)
    return model, time.perf_counter() - t0, kept


class _SkipAttention(nn.Module):
    """A BERT attention sublayer removed: post-LN ``LN(x + attn(x))`` becomes ``LN(x)``."""

    def __init__(self, norm: nn.Module) -> None:
        super().__init__()
        self.LayerNorm = norm

    def forward(self, hidden_states: torch.Tensor, *args: Any, **kwargs: Any) -> tuple:
        return self.LayerNorm(hidden_states), None


class _SkipFeedForward(nn.Module):
    """A BERT FFN sublayer removed (``BertOutput`` replaced): ``LN(h + FFN(h))`` → ``LN(h)``."""

    def __init__(self, norm: nn.Module) -> None:
        super().__init__()
        self.LayerNorm = norm

    def forward(self, intermediate: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(hidden)


def drop_sublayers(model: nn.Module, names: list[str]) -> None:
    """Remove BERT sublayers in place: ``a<i>`` the attention of layer ``i`` (Q, K, V, O
    gone), ``f<i>`` its FFN (both linears gone; ``intermediate`` becomes the identity).
    Each keeps its post-LN LayerNorm, so the layer's output stays normalized. An
    experiment of this benchmark (``--sublayers``), not a library structure."""
    layers = model.encoder.layer
    parsed = [(n[:1], int(n[1:]) if n[1:].isdigit() else -1) for n in names]
    bad = [n for n, (kind, i) in zip(names, parsed)
           if kind not in ("a", "f") or not 0 <= i < len(layers)]
    if bad:  # checked before anything is removed
        raise ValueError(f"--sublayers: {bad} are not a<i> or f<i> with i < {len(layers)}")
    for kind, i in parsed:
        layer = layers[i]
        if kind == "a":
            layer.attention = _SkipAttention(layer.attention.output.LayerNorm)
        else:
            layer.output = _SkipFeedForward(layer.output.LayerNorm)
            layer.intermediate = nn.Identity()


def _remove_layers(model: nn.Module, setup: Setup, n: int) -> list[int]:
    """Remove ``n`` encoder layers in place; the kept layers' original positions."""
    a, ex = setup.args, setup.calib[0]
    if a.layer_score == "loss":
        with torch.no_grad():
            pairs = [(b, (b["attention_mask"],
                          mean_pool(setup.dense(**b)[0], b["attention_mask"])))
                     for b in setup.calib]
        res = prune_depth(model, ex, n_blocks=n, method="loss", batches=pairs,
                          loss_fn=_embedding_distance, iterative=a.iterative)
    else:
        res = prune_depth(model, ex, n_blocks=n, method="angular", batches=setup.calib,
                          iterative=a.iterative)
    return [int(i) for i in res.plan.containers["encoder.layer"]["kept"]]


def _embedding_distance(hidden: torch.Tensor, target: tuple[torch.Tensor, torch.Tensor]
                        ) -> torch.Tensor:
    """``mean(1 − cos(mean_pool(h), e_dense))``: what skipping a layer costs the embedding."""
    mask, dense = target
    cos = nn.functional.cosine_similarity(mean_pool(hidden, mask), dense, dim=-1)
    return (1.0 - cos).mean()


def measure_pair(dense: nn.Module, model: nn.Module, setup: Setup) -> tuple[float, float]:
    """Dense and pruned latency (batch x seq, ``--threads``) in paired ABBA rounds
    (``--rounds``), medians; every reading goes to ``setup.timings``."""
    a = setup.args
    t = timing.paired({"dense": dense, "pruned": model}, setup.timing_inputs, rounds=a.rounds,
                      repeats=a.repeats, warmup=a.warmup, threads=a.threads)
    setup.timings.append(t.to_dict())
    return t.median_ms("dense"), t.median_ms("pruned")


# ----------------------------------------------------------------------------- distillation
def distill(student: nn.Module, setup: Setup, kept: list[int] | None = None,
            steps: int | None = None) -> dict[str, Any]:
    """Distill the dense model into ``student`` on unlabeled WordNet text with the
    library's recovery loop (``prunekit.methods.fit`` with ``loss_fn``: AdamW, seeded
    batch order, checkpoint/resume available); ``--distill-steps`` optimizer steps.

    Loss per batch (``m`` the attention mask, ``e`` mean-pooled embeddings):
    ``v · MSE_m(h_s, h_t) + (1 − cos(e_s, e_t)) + w · mean_i MSE_m(h_s^(i), h_t^(π(i)))``
    (``--token-weight`` v, default 1: the last hidden state token by token),
    the last term (``--hidden-weight`` w) matching the output of student layer ``i`` to
    the teacher's hidden state after the layers it replaces: with kept original layers
    ``p_0 < p_1 < …``, student layer ``i`` stands for teacher layers ``p_i … p_{i+1}−1``,
    so ``π(i) = p_{i+1}`` (hidden state index; the last layer is the final output,
    already matched by the first term).

    ``--relational-weight`` r adds ``r · mean_ij (cos(e_s,i, e_s,j) − cos(e_t,i, e_t,j))²``
    over the batch (:func:`prunekit.eval.relational_loss`): the pairwise similarities
    that retrieval ranks by.

    ``--ema d`` (0 < d < 1) keeps an exponential moving average of the student's weights,
    ``ē ← d·ē + (1 − d)·θ`` after every step, and leaves the student with ``ē``.

    ``--lr-schedule``: constant, or linear warmup over ``--warmup-frac`` of the steps
    followed by cosine or linear decay to 0. ``--bucket`` groups texts of similar token
    length into the same batch (less padding; each batch is then one item of ``fit``,
    whose seeded shuffle orders the batches). ``steps`` overrides ``--distill-steps`` (one
    phase of ``--progressive``). Returns the mean loss of the first and of
    the last tenth of the steps (``loss_first``, ``loss_last``; with one epoch the
    per-epoch means in ``epoch_losses`` cannot show progress), and the steps taken.
    """
    from prunekit.methods import FitConfig, fit

    a = setup.args
    steps = a.distill_steps if steps is None else steps
    kept = list(range(student.config.num_hidden_layers)) if kept is None else kept
    data, batch = _distill_data(setup)
    n = len(next(iter(data.values())))
    per_epoch = max(1, n // batch)
    epochs = max(1, round(steps / per_epoch))
    if steps < per_epoch:  # fewer steps than one epoch: distill on a subset
        keep = _subset(n, steps * batch, a.bucket)
        data = {k: v[keep] for k, v in data.items()}
        epochs = 1
    targets = [kept[i + 1] for i in range(len(kept) - 1)]  # teacher hidden-state indices
    w = a.hidden_weight
    step_losses: list[float] = []

    def loss_fn(model: nn.Module, xb: dict, yb: Any, teacher: nn.Module | None) -> torch.Tensor:
        if a.bucket:  # one pre-built batch per item
            xb = {k: v.flatten(0, 1) for k, v in xb.items()}
        width = int(xb["attention_mask"].sum(1).max())  # trim padding shared by the batch
        xb = {k: v[:, :width] for k, v in xb.items()}
        want_hidden = w > 0 and bool(targets)
        with torch.no_grad():
            t_out = teacher(**xb, output_hidden_states=want_hidden)
        s_out = model(**xb, output_hidden_states=want_hidden)
        mask = xb["attention_mask"]
        loss = _distill_loss(s_out[0], t_out[0], mask, a.token_weight)
        if a.relational_weight > 0:
            loss = loss + a.relational_weight * relational_loss(
                mean_pool(s_out[0], mask), mean_pool(t_out[0], mask))
        if want_hidden:
            mids = [_masked_mse(s_out.hidden_states[i + 1], t_out.hidden_states[j],
                                xb["attention_mask"]) for i, j in enumerate(targets)]
            loss = loss + w * torch.stack(mids).mean()
        step_losses.append(float(loss.detach()))
        return loss

    opt = torch.optim.AdamW(student.parameters(), lr=a.lr, weight_decay=0.0)
    total = epochs * max(1, len(next(iter(data.values()))) // (1 if a.bucket else batch))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: lr_factor(step, total, a.lr_schedule, a.warmup_frac))
    cfg = FitConfig(epochs=epochs, batch_size=1 if a.bucket else batch, lr=a.lr, seed=a.seed,
                    progress=not a.smoke)
    ema = [p.detach().clone() for p in student.parameters()] if a.ema else None

    def on_step(step: int, model: nn.Module) -> None:
        sched.step()
        if ema is not None:  # ē ← d·ē + (1 − d)·θ after every step
            with torch.no_grad():
                torch._foreach_lerp_(ema, [p.detach() for p in model.parameters()], 1 - a.ema)

    res = fit(student, (data, None), cfg, optimizer=opt, teacher=setup.dense, loss_fn=loss_fn,
              on_step=on_step)
    if ema is not None:  # the student keeps the averaged weights
        with torch.no_grad():
            for p, e in zip(student.parameters(), ema):
                p.copy_(e)
    student.eval()
    tenth = max(1, len(step_losses) // 10)
    return {"loss_first": sum(step_losses[:tenth]) / tenth,
            "loss_last": sum(step_losses[-tenth:]) / tenth, "epoch_losses": res.epoch_losses,
            "steps": res.steps, "epochs": epochs, "texts": len(setup.data.extra_text),
            "hidden_targets": targets if w > 0 else []}


def lr_factor(step: int, total: int, schedule: str, warmup_frac: float) -> float:
    """Multiplier of the base lr after ``step`` of ``total`` steps: 1 for ``constant``;
    else ``step / W`` during the warmup ``W = warmup_frac · total``, then
    ``½(1 + cos(π p))`` (``cosine``) or ``1 − p`` (``linear``), ``p`` the fraction of the
    post-warmup steps done."""
    if schedule == "constant":
        return 1.0
    warm = max(1, round(warmup_frac * total))
    if step < warm:
        return (step + 1) / warm
    p = min(1.0, (step - warm) / max(1, total - warm))
    return 0.5 * (1.0 + math.cos(math.pi * p)) if schedule == "cosine" else 1.0 - p


def _distill_data(setup: Setup) -> tuple[dict[str, torch.Tensor], int]:
    """Tokenized distillation text: ``(texts, T)`` tensors and the batch size, or with
    ``--bucket`` ``(batches, B, T)`` tensors of length-sorted texts (remainder dropped)
    and batch size 1 (one pre-built batch per item)."""
    a = setup.args
    enc = tokenize(setup.tokenizer, list(setup.data.extra_text), a.seq)
    data = {k: v for k, v in enc.items() if isinstance(v, torch.Tensor)}
    if not a.bucket:
        return data, a.distill_batch
    order = torch.argsort(data["attention_mask"].sum(1), stable=True)
    n = len(order) // a.distill_batch * a.distill_batch
    if n == 0:
        raise ValueError(f"--bucket: fewer distillation texts ({len(order)}) than one batch")
    return {k: v[order[:n]].view(n // a.distill_batch, a.distill_batch, -1)
            for k, v in data.items()}, 1


def _subset(n: int, k: int, bucket: bool) -> torch.Tensor:
    """Which items to distill on when fewer steps than one epoch are asked for: the first
    ``k`` texts, or (``bucket``: items are length-sorted batches) a seeded random ``k``."""
    if not bucket:
        return torch.arange(min(k, n))
    return torch.randperm(n, generator=harness.generator(0))[:k].sort().values


def _masked_mse(s: torch.Tensor, t: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).to(s.dtype)
    return ((s - t) ** 2 * m).sum() / (m.sum() * s.shape[-1])


def _distill_loss(s: torch.Tensor, t: torch.Tensor, mask: torch.Tensor,
                  token_weight: float = 1.0) -> torch.Tensor:
    cos = nn.functional.cosine_similarity(mean_pool(s, mask), mean_pool(t, mask), dim=-1)
    loss = (1.0 - cos).mean()
    return loss + token_weight * _masked_mse(s, t, mask) if token_weight else loss


# ----------------------------------------------------------------------------- one plan
def evaluate(model: nn.Module, setup: Setup, reference: torch.Tensor | None) -> dict[str, Any]:
    r = wordnet_retrieval(model, setup.tokenizer, setup.data, reference=reference,
                          max_length=setup.args.seq)
    return {"recall_at_1": r.recall_at_1, "mean_cosine": r.mean_cosine}


def run_plan(setup: Setup, kind: str, target: float, dense_ms: float,
             reference: torch.Tensor) -> dict[str, Any]:
    """Cut to the target measured speedup, evaluate, distill, evaluate."""
    cfg, a = setup.dense.config, setup.args
    step = first_step(cfg, kind, target, a.seq, a.ffn_unit)
    row: dict[str, Any] = {"plan": kind, "target": target}
    if step is None and a.shape is None:
        return {**row, "status": "infeasible (theory: MAC ratio cannot reach target)"}
    goal = target * (1.0 - a.tolerance)
    for _ in range(1 if a.shape else a.max_steps):
        shape = tuple(a.shape) if a.shape else plan_shape(cfg, kind, step, a.ffn_unit)
        model, prune_s, kept = cut(setup, shape)
        dense_ms, ms = measure_pair(setup.dense, model, setup)
        if (a.shape or dense_ms / ms >= goal
                or plan_shape(cfg, kind, step + 1, a.ffn_unit) == shape):
            break
        step += 1
    row["dense_latency_ms"] = dense_ms
    row.update(status="ok" if dense_ms / ms >= goal else "missed target",
               accepted_at=goal,
               layers_removed=shape[0], heads_removed_per_layer=shape[1],
               ffn_removed_per_layer=shape[2], prune_s=prune_s, latency_ms=ms,
               measured_speedup=dense_ms / ms, kept_layers=kept, **_theory(setup, model))
    if not a.skip_before or a.no_distill:
        row["before"] = evaluate(model, setup, reference)
    if a.no_distill:
        return row
    if a.progressive and shape[0] > 1:
        model, kept, phases = progressive(setup, shape)
        dense_ms, ms = measure_pair(setup.dense, model, setup)  # the model returned
        row.update(progressive=phases, kept_layers=kept, latency_ms=ms,
                   dense_latency_ms=dense_ms, measured_speedup=dense_ms / ms,
                   status="ok" if dense_ms / ms >= goal else "missed target",
                   distill=phases[-1]["distill"])
    else:
        row["distill"] = distill(model, setup, kept)
    row["after"] = evaluate(model, setup, reference)
    return row


def progressive(setup: Setup, shape: tuple[int, int, int]
                ) -> tuple[nn.Module, list[int], list[dict[str, Any]]]:
    """``--progressive``: the ``L = shape[0]`` layers go one at a time, each chosen by
    ``--layer-score`` on the student as distilled so far, and each removal is followed by
    ``--distill-steps / L`` steps of distillation (same total budget as one cut followed
    by one distillation). Width cuts (``shape[1:]``), if any, are made once, first.
    Returns the student, the original positions of its kept layers, and one record per
    phase (``removed``: the original position removed, ``kept``, ``distill``)."""
    a = setup.args
    model, _, kept = cut(setup, (0, *shape[1:]))
    phases: list[dict[str, Any]] = []
    share = max(1, round(a.distill_steps / shape[0]))
    for _ in range(shape[0]):
        pos = _remove_layers(model, setup, 1)
        removed = sorted(set(kept) - {kept[i] for i in pos})
        kept = [kept[i] for i in pos]
        console.print(f"progressive: removed layer {removed}, kept {kept}")
        phases.append({"removed": removed, "kept": kept,
                       "distill": distill(model, setup, kept, steps=share)})
    return model, kept, phases


def _theory(setup: Setup, model: nn.Module) -> dict[str, float]:
    dense = count_macs(setup.dense, setup.timing_inputs)
    pruned = count_macs(model, setup.timing_inputs)
    return {"mac_speedup_theory": dense / pruned,
            "params_m": sum(p.numel() for p in model.parameters()) / 1e6}


# ----------------------------------------------------------------------------- Torch-Pruning
def torch_pruning_ffn(setup: Setup, shape: tuple[int, int, int],
                      reference: torch.Tensor) -> dict[str, Any]:
    """Torch-Pruning's MetaPruner (magnitude, per-layer) at the same heads/FFN amounts."""
    try:
        import torch_pruning as tp

        model = copy.deepcopy(setup.dense)
        cfg = model.config
        ex = setup.calib[0]
        num_heads = {m.query: cfg.num_attention_heads for n, m in model.named_modules()
                     if n.endswith("attention.self")}
        data_driven = setup.args.criterion != "l2"
        imp = tp.importance.TaylorImportance() if data_driven else \
            tp.importance.MagnitudeImportance(p=2)
        t0 = time.perf_counter()
        pruner = tp.pruner.MetaPruner(
            model, ex, importance=imp,
            pruning_ratio_dict=_tp_ratios(model, cfg, shape), num_heads=num_heads,
            prune_num_heads=shape[1] > 0, prune_head_dims=False,
            head_pruning_ratio=shape[1] / cfg.num_attention_heads,
            ignored_layers=[m for n, m in model.named_modules()
                            if n.endswith(("output.dense", "pooler.dense"))
                            and "attention" not in n] + [model.embeddings])
        if data_driven:  # Taylor scores need gradients: the embedding loss on calibration text
            _embedding_loss(model, setup).backward()
        pruner.step()
        _tp_fix_heads(model, cfg)
        prune_s = time.perf_counter() - t0
        dense_ms, ms = measure_pair(setup.dense, model, setup)
        return {"prune_s": prune_s, "latency_ms": ms, "dense_latency_ms": dense_ms,
                "importance": "taylor" if data_driven else "magnitude",
                **_theory(setup, model), "before": evaluate(model, setup, reference),
                "status": "ok"}
    except Exception as err:  # report, never crash the benchmark
        return {"status": f"failed: {type(err).__name__}: {str(err)[:200]}"}


def _embedding_loss(model: nn.Module, setup: Setup) -> torch.Tensor:
    """``1 − cos`` of the pooled embeddings against the dense model's, on calibration text."""
    batch = setup.calib[0]
    with torch.no_grad():
        ref = mean_pool(setup.dense(**batch)[0], batch["attention_mask"])
    out = mean_pool(model(**batch)[0], batch["attention_mask"])
    return (1.0 - nn.functional.cosine_similarity(out, ref, dim=-1)).mean()


def _tp_ratios(model: nn.Module, cfg: Any, shape: tuple[int, int, int]) -> dict:
    ratios = {}
    for n, m in model.named_modules():
        if n.endswith("intermediate.dense"):
            ratios[m] = shape[2] / cfg.intermediate_size
    return ratios


def _tp_fix_heads(model: nn.Module, cfg: Any) -> None:
    """Torch-Pruning does not update Hugging Face attention attributes; do it as its
    README's BERT example does."""
    for n, m in model.named_modules():
        if n.endswith("attention.self"):
            m.num_attention_heads = m.query.out_features // m.attention_head_size
            m.all_head_size = m.query.out_features


# ----------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = harness.parser("minilm", __doc__, smoke_help="tiny random BERT, seconds", threads=2)
    p.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    p.add_argument("--targets", nargs="+", type=float, default=[1.5, 2.0])
    p.add_argument("--n", type=int, default=2000, help="WordNet nouns to retrieve among")
    p.add_argument("--sample", choices=("first", "random"), default="first",
                   help="which nouns to retrieve among: the standard first n, or a seeded "
                        "random draw (a second, held-out evaluation set)")
    p.add_argument("--sample-seed", type=int, default=0, help="seed of --sample random")
    p.add_argument("--n-extra", type=int, default=4000, help="synsets of distillation text")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq", type=int, default=64)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--max-steps", type=int, default=4, help="extra cut steps if short")
    p.add_argument("--rounds", type=int, default=4, help="ABBA rounds dense vs pruned")
    p.add_argument("--tolerance", type=float, default=0.03,
                   help="accept a measured speedup >= target x (1 - tolerance)")
    p.add_argument("--distill-steps", type=int, default=150)
    p.add_argument("--distill-batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--lr-schedule", choices=("constant", "cosine", "linear"),
                   default="constant", help="warmup + decay of the distillation lr")
    p.add_argument("--warmup-frac", type=float, default=0.06)
    p.add_argument("--hidden-weight", type=float, default=0.0,
                   help="weight of the layer-to-layer hidden-state MSE in distillation")
    p.add_argument("--token-weight", type=float, default=1.0,
                   help="weight of the token-level MSE on the last hidden state")
    p.add_argument("--relational-weight", type=float, default=0.0,
                   help="weight of the batch cosine-similarity-matrix MSE in distillation")
    p.add_argument("--ema", type=float, default=0.0,
                   help="weight EMA decay during distillation (0: off; e.g. 0.99)")
    p.add_argument("--criterion", default="l2",
                   help="prunekit.importance criterion ranking heads and FFN units")
    p.add_argument("--ffn-unit", type=int, default=None,
                   help="FFN units per cut step (ffn, heads_ffn; default intermediate/48)")
    p.add_argument("--shape", nargs=3, type=int, default=None, metavar=("L", "H", "U"),
                   help="cut exactly L layers, H heads and U FFN units per layer (no search)")
    p.add_argument("--sublayers", nargs="+", default=[], metavar="a<i>|f<i>",
                   help="also remove these attention (a) / FFN (f) sublayers (with --shape)")
    p.add_argument("--no-distill", action="store_true",
                   help="cut, time and evaluate before distillation only")
    p.add_argument("--bucket", action="store_true",
                   help="distill on batches of similar-length texts (less padding)")
    p.add_argument("--extra-lemmas", action="store_true",
                   help="also distill on the lemmas of the extra synsets (short texts)")
    p.add_argument("--extra-pos", nargs="+", default=["noun"],
                   choices=("noun", "verb", "adj", "adv"),
                   help="parts of speech the --n-extra synsets are drawn from")
    p.add_argument("--layer-score", choices=("angular", "loss"), default="angular",
                   help="which layers to drop: angular distance or embedding loss when skipped")
    p.add_argument("--iterative", action="store_true", help="re-score after each layer removed")
    p.add_argument("--progressive", action="store_true",
                   help="remove layers one at a time, distilling --distill-steps/L after each")
    p.add_argument("--no-torch-pruning", action="store_true")
    p.add_argument("--skip-before", action="store_true", help="no Recall@1 before distill")
    p.add_operational("--plot", nargs="+", type=Path, default=None,
                      help="only draw depth_minilm.png (in --img-dir) from these result JSONs")
    a = p.parse(argv)
    if not 0.0 <= a.ema < 1.0:
        p.error(f"--ema must be in [0, 1), got {a.ema}")
    if a.smoke:
        a.batch, a.seq, a.repeats, a.warmup, a.distill_steps = 4, 16, 2, 1, 3
        a.targets, a.max_steps, a.rounds = [1.5], 1, 2
    return a


def plot(paths: list[Path], out: Path) -> None:
    """Recall@1 after distillation (% of dense) against measured speedup, one marker per
    plan kind, from one or more result JSONs (e.g. the 1.5x and 2x runs)."""
    plt = plots.pyplot()
    fig, ax = plt.subplots(figsize=(10, 4.6))
    markers = {"heads": "^", "ffn": "s", "layers": "o", "combined": "D", "layer_ffn": "P",
               "heads_ffn": "X"}
    colors = {"heads": "C3", "ffn": "C2", "layers": "C0", "combined": "C1", "layer_ffn": "C4",
              "heads_ffn": "C5"}
    seen: set[str] = set()
    threads = set()
    for path in paths:
        data = json.loads(Path(path).read_text())
        dense = data["dense"]["recall_at_1"]
        cfg = data["provenance"]["config"]
        threads.add(cfg.get("threads", 2))
        levers = bool(cfg.get("extra_lemmas"))
        relational = cfg.get("relational_weight", 0.0) > 0
        for r in data["plans"]:
            if "after" not in r:
                continue
            label = f"{r['plan']}, " + ("more text + layer targets + cosine lr" if levers
                                        else "definitions only, constant lr")
            label += " + relational" if relational else ""
            x, y = r["measured_speedup"], 100 * r["after"]["recall_at_1"] / dense
            color = "C9" if relational else "C3" if levers else colors[r["plan"]]
            ax.scatter(x, y, marker=markers[r["plan"]], c=color, s=60,
                       alpha=1.0 if levers else 0.5, label=None if label in seen else label)
            steps = r.get("distill", {}).get("steps", cfg.get("distill_steps"))
            seed = cfg.get("seed", 0)
            ax.annotate(f"{steps}" + (f" s{seed}" if seed else ""), (x, y), xytext=(5, 4),
                        textcoords="offset points", fontsize=7)
            seen.add(label)
    ax.axhline(97, ls=":", c="grey")
    ax.axhline(90, ls="--", c="grey")
    ax.set_xlabel("measured CPU speedup (batch 32, seq 64, "
                  f"{'/'.join(str(t) for t in sorted(threads))} thread(s))")
    ax.set_ylabel("WordNet Recall@1, % of dense (after distill)")
    ax.set_title("all-MiniLM-L6-v2: width vs depth (labels: distillation steps, seed)",
                 fontsize=10, loc="left")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    plots.save(fig, out, dpi=120)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.plot:
        plot(args.plot, (args.img_dir or harness.IMG) / "depth_minilm.png")
        return {}
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with harness.session(args) as rec:
        setup = load_setup(args)
        t0 = time.perf_counter()
        dense_eval = wordnet_retrieval(setup.dense, setup.tokenizer, setup.data,
                                       max_length=args.seq)
        dense_t = timing.paired({"dense": setup.dense}, setup.timing_inputs, rounds=args.rounds,
                                repeats=args.repeats, warmup=args.warmup, threads=args.threads)
        dense_ms = dense_t.median_ms("dense")
        console.print(f"dense: Recall@1 {dense_eval.recall_at_1:.4f}, {dense_ms:.1f} ms")
        rows: list[dict[str, Any]] = []
        result = {"dense": {"recall_at_1": dense_eval.recall_at_1, "latency_ms": dense_ms,
                            "n": dense_eval.n, "timing": dense_t.to_dict()},
                  "plans": rows, "timings": setup.timings}
        out = harness.out_path(args)
        total = len(args.targets) * len(args.kinds)
        for target in args.targets:
            for kind in args.kinds:
                console.print(f"[bold]{kind} @ {target}x[/bold]")
                rows.append(run_plan(setup, kind, target, dense_ms, dense_eval.embeddings))
                if not args.no_torch_pruning and kind in ("ffn", "heads") \
                        and "latency_ms" in rows[-1]:
                    shape = (0, rows[-1]["heads_removed_per_layer"],
                             rows[-1]["ffn_removed_per_layer"])
                    rows[-1]["torch_pruning"] = torch_pruning_ffn(setup, shape,
                                                                  dense_eval.embeddings)
                result["seconds"] = time.perf_counter() - t0
                result["table"] = {"columns": COLUMNS, "rows": table_rows(result)}
                rec.write(out, result, complete=len(rows) == total)  # partial results count
    tables.show(f"MiniLM plans (dense Recall@1 {dense_eval.recall_at_1:.4f}, "
                f"{dense_ms:.0f} ms)", COLUMNS, result["table"]["rows"], width=170)
    console.print(f"wrote {out}")
    return result


COLUMNS = ["plan", "target", "cut (L/h/u)", "measured", "MAC theory", "R@1 before",
           "R@1 after", "% dense", "cos after", "TP R@1 / speedup"]


def table_rows(result: dict) -> list[list[str]]:
    dense = result["dense"]["recall_at_1"]
    out = []
    for r in result["plans"]:
        if "latency_ms" not in r:
            out.append([r["plan"], f"{r['target']}x", r["status"], *[""] * 7])
            continue
        tp = r.get("torch_pruning", {})
        before = r.get("before", {}).get("recall_at_1")
        tp_s = (f"{tp['before']['recall_at_1']:.3f} / "
                f"{tp['dense_latency_ms'] / tp['latency_ms']:.2f}x"
                if "before" in tp else tp.get("status", ""))
        final = r.get("after", r.get("before"))  # --no-distill: "after" is "before"
        after = final["recall_at_1"]
        out.append([r["plan"], f"{r['target']}x",
                    f"{r['layers_removed']}/{r['heads_removed_per_layer']}/"
                    f"{r['ffn_removed_per_layer']}", f"{r['measured_speedup']:.2f}x",
                    f"{r['mac_speedup_theory']:.2f}x",
                    "-" if before is None else f"{before:.3f}", f"{after:.3f}",
                    f"{100 * after / max(dense, 1e-9):.0f}%", f"{final['mean_cosine']:.3f}",
                    tp_s])
    return out


if __name__ == "__main__":
    main()
