"""Causal LMs from configs (random weights: structure and speed, not quality): GPT-2 and a
Llama with grouped-query attention, pruned in heads, KV heads, FFN and layers.

For each model the script prunes a copy with prunekit — width with ``prunekit.prune``
(whole heads, whole KV groups with their query heads, FFN / SwiGLU pairs; built on
``prunekit.graph``) and depth with ``prunekit.structures.prune_depth`` — and checks that
``generate()`` works and gives the same tokens with and without the KV cache, that tied
input/output embeddings are still one tensor, that the config matches the modules, and
how much the KV cache shrank. It then runs Torch-Pruning's ``MetaPruner`` at the same
channel ratio in a subprocess with a time limit (it can hang on GQA) and reports both
prune times and whether the Torch-Pruning model still generates.

Latency (batch 1, ``--seq`` tokens) of dense and pruned is timed in alternating rounds
(``benchmarks.harness.timing.paired``), every reading kept, medians reported.

Usage::

    nice -n 10 python benchmarks/causal_lm.py          # ~5 CPU-min
    python benchmarks/causal_lm.py --smoke             # seconds
"""

from __future__ import annotations

import argparse
import copy
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

if __package__ in (None, ""):  # run as a file: make `benchmarks.harness` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import harness  # noqa: E402
from benchmarks.harness import tables, timing  # noqa: E402
from prunekit.measure import count_params  # noqa: E402


def build(kind: str, smoke: bool) -> nn.Module:
    """GPT-2 or Llama-GQA (8 query heads, 2 KV heads, tied embeddings), random weights."""
    import transformers as tf

    harness.seed_all(0)
    d, layers, vocab = (64, 3, 300) if smoke else (256, 8, 4000)
    common = dict(vocab_size=vocab, bos_token_id=1, eos_token_id=2)
    if kind == "gpt2":
        cfg = tf.GPT2Config(n_embd=d, n_layer=layers, n_head=8, n_positions=256, **common)
        return tf.GPT2LMHeadModel(cfg).eval()
    cfg = tf.LlamaConfig(hidden_size=d, num_hidden_layers=layers, num_attention_heads=8,
                         num_key_value_heads=2, intermediate_size=int(2.75 * d),
                         tie_word_embeddings=True, pad_token_id=0, **common)
    return tf.LlamaForCausalLM(cfg).eval()


def inputs(model: nn.Module, batch: int, seq: int) -> dict[str, torch.Tensor]:
    g = harness.generator(0)
    return {"input_ids": torch.randint(3, model.config.vocab_size, (batch, seq), generator=g)}


# ----------------------------------------------------------------------------- checks
def checks(model: nn.Module, ids: dict[str, torch.Tensor]) -> dict[str, Any]:
    """generate() shapes, cache == no-cache tokens, tied weights, config, KV-cache size."""
    kw = dict(max_new_tokens=8, min_new_tokens=8, do_sample=False)
    cached = model.generate(ids["input_ids"], use_cache=True, **kw)
    plain = model.generate(ids["input_ids"], use_cache=False, **kw)
    emb, head = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    return {"generate_shape": list(cached.shape),
            "generate_ok": list(cached.shape) == [ids["input_ids"].shape[0],
                                                  ids["input_ids"].shape[1] + 8],
            "cache_matches_no_cache": bool(torch.equal(cached, plain)),
            "tied": head is emb,
            "config": config_summary(model),
            "config_consistent": config_consistent(model),
            "kv_cache_elements": kv_cache_elements(model, ids)}


def config_summary(model: nn.Module) -> dict[str, int]:
    c = model.config
    return {k: getattr(c, k) for k in ("num_hidden_layers", "num_attention_heads",
                                       "num_key_value_heads", "hidden_size",
                                       "intermediate_size", "n_inner")
            if isinstance(getattr(c, k, None), int)}


def config_consistent(model: nn.Module) -> bool:
    """The layer count in the config matches the modules (what generate's cache uses)."""
    layers = getattr(getattr(model, "model", None), "layers", None)
    if layers is None:
        layers = model.transformer.h
    return model.config.num_hidden_layers == len(layers)


def kv_cache_elements(model: nn.Module, ids: dict[str, torch.Tensor]) -> int:
    """Elements in the KV cache after one forward over ``ids`` (keys + values)."""
    with torch.no_grad():
        cache = model(**ids, use_cache=True).past_key_values
    total = 0
    for layer in getattr(cache, "layers", []):
        for t in (getattr(layer, "keys", None), getattr(layer, "values", None)):
            total += t.numel() if isinstance(t, torch.Tensor) else 0
    return total


# ----------------------------------------------------------------------------- prunekit
def prune_prunekit(model: nn.Module, ids: dict[str, torch.Tensor], ratio: float,
                   n_layers: int) -> tuple[float, float]:
    """Width (``prunekit.prune`` at channel ``ratio``) then depth; returns wall and CPU
    seconds (CPU time is what a busy shared machine does not inflate)."""
    import prunekit
    from prunekit.structures import prune_depth

    t0, c0 = time.perf_counter(), time.process_time()
    prunekit.prune(model, ids, ratio=ratio)
    if n_layers:
        prune_depth(model, ids, n_blocks=n_layers, method="angular")
    return time.perf_counter() - t0, time.process_time() - c0


# ----------------------------------------------------------------------------- Torch-Pruning
def _tp_worker(kind: str, smoke: bool, ratio: float, queue: Any) -> None:
    try:
        import torch_pruning as tp

        model = build(kind, smoke)
        ids = inputs(model, 2, 16)
        before = count_params(model)
        heads = _tp_heads(model)
        t0, c0 = time.perf_counter(), time.process_time()
        pruner = tp.pruner.MetaPruner(
            model, ids, importance=tp.importance.MagnitudeImportance(p=2),
            pruning_ratio=ratio, num_heads=heads, prune_num_heads=True, prune_head_dims=False,
            head_pruning_ratio=ratio, ignored_layers=[model.get_output_embeddings()],
            output_transform=lambda out: out.logits)
        pruner.step()
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        result = {"status": "ok", "prune_s": seconds, "prune_cpu_s": cpu,
                  "params_before": before,
                  "params_after": count_params(model)}
        try:
            out = model.generate(ids["input_ids"], max_new_tokens=4, do_sample=False)
            result["generate_shape"] = list(out.shape)
        except Exception as err:
            result["generate_error"] = f"{type(err).__name__}: {str(err)[:160]}"
        queue.put(result)
    except Exception as err:
        queue.put({"status": f"failed: {type(err).__name__}: {str(err)[:200]}"})


def _tp_heads(model: nn.Module) -> dict:
    heads = {}
    for name, m in model.named_modules():
        if name.endswith("self_attn"):
            heads[m.q_proj] = m.config.num_attention_heads
            heads[m.k_proj] = heads[m.v_proj] = m.config.num_key_value_heads
        elif name.endswith(".attn") and hasattr(m, "c_attn"):
            heads[m.c_attn] = m.num_heads
    return heads


def torch_pruning(kind: str, smoke: bool, ratio: float, timeout: float) -> dict[str, Any]:
    """Run Torch-Pruning in a child process; a hang is reported as a timeout."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_tp_worker, args=(kind, smoke, ratio, queue))
    t0 = time.perf_counter()
    proc.start()
    proc.join(timeout)
    if proc.is_alive():
        proc.terminate()
        proc.join()
        return {"status": f"timeout after {timeout:.0f} s (killed)"}
    result = queue.get() if not queue.empty() else {"status": f"exit code {proc.exitcode}"}
    result["wall_s_with_startup"] = time.perf_counter() - t0
    return result


# ----------------------------------------------------------------------------- main
def run_model(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    dense = build(kind, args.smoke)
    ids = inputs(dense, 2, 16)
    timing_ids = inputs(dense, 1, args.seq)
    model = copy.deepcopy(dense)
    seconds, cpu = prune_prunekit(model, ids, args.ratio, args.layers)
    timed = timing.paired({"dense": dense, "pruned": model}, timing_ids, rounds=args.rounds,
                          repeats=args.repeats, warmup=1, threads=args.threads)
    row = {"model": kind, "ratio": args.ratio, "layers_removed": args.layers,
           "prune_s": seconds, "prune_cpu_s": cpu, "load_avg_1min": os.getloadavg()[0],
           "params_before": count_params(dense),
           "params_after": count_params(model), "latency_ms_dense": timed.median_ms("dense"),
           "latency_ms_pruned": timed.median_ms("pruned"),
           "speedup_measured": timed.speedup("dense", "pruned"), "timing": timed.to_dict(),
           "dense": checks(dense, ids), "pruned": checks(model, ids)}
    if not args.no_torch_pruning:
        row["torch_pruning"] = torch_pruning(kind, args.smoke, args.ratio, args.tp_timeout)
    return row


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = harness.parser("causal_lm", __doc__, threads=2, img=False)
    p.add_argument("--models", nargs="+", default=["gpt2", "llama"], choices=["gpt2", "llama"])
    p.add_argument("--ratio", type=float, default=0.5, help="channel ratio for width")
    p.add_argument("--layers", type=int, default=2, help="layers removed")
    p.add_argument("--seq", type=int, default=128, help="timing sequence length (batch 1)")
    p.add_argument("--repeats", type=int, default=10, help="timed passes per round")
    p.add_argument("--rounds", type=int, default=4, help="alternating dense/pruned rounds")
    p.add_argument("--tp-timeout", type=float, default=300.0)
    p.add_argument("--no-torch-pruning", action="store_true")
    a = p.parse(argv)
    if a.smoke:
        a.layers, a.seq, a.repeats, a.rounds, a.tp_timeout = 1, 16, 2, 2, 60.0
    return a


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with harness.session(args) as rec:
        rows = [run_model(kind, args) for kind in args.models]
        result = {"rows": rows, "table": {"columns": COLUMNS, "rows": table_rows(rows)}}
        out = rec.write(harness.out_path(args), result)
    tables.show("Causal LMs: prunekit width + depth vs Torch-Pruning", COLUMNS,
                result["table"]["rows"], width=170)
    print(f"wrote {out}")
    return result


COLUMNS = ["model", "config after", "params", "KV cache", "generate / cache=nocache / tied",
           "speedup (measured, median)", "prune s (CPU s)", "Torch-Pruning"]


def table_rows(rows: list[dict[str, Any]]) -> list[list[str]]:
    out = []
    for r in rows:
        p, d = r["pruned"], r["dense"]
        tp = r.get("torch_pruning", {})
        tp_s = (f"{tp['prune_s']:.2f} s ({tp['prune_cpu_s']:.2f} CPU s), params "
                f"{tp['params_after'] / tp['params_before']:.2f}x"
                f", generate {'ok' if 'generate_shape' in tp else 'FAILED'}"
                if tp.get("status") == "ok" else tp.get("status", "not run"))
        sp = r["speedup_measured"]
        out.append([r["model"], json.dumps(p["config"]),
                    f"{r['params_after'] / r['params_before']:.2f}x",
                    f"{p['kv_cache_elements'] / d['kv_cache_elements']:.2f}x",
                    f"{p['generate_ok']} / {p['cache_matches_no_cache']} / {p['tied']}",
                    f"{sp['speedup']:.2f}x ({sp['min']:.2f}–{sp['max']:.2f})",
                    f"{r['prune_s']:.2f} ({r['prune_cpu_s']:.2f})", tp_s])
    return out


if __name__ == "__main__":
    main()
