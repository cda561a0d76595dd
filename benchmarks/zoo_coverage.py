"""Coverage: the model zoo through prunekit and Torch-Pruning, side by side.

Every model (all torchvision classification models, the timm models and Hugging Face
configs of issue 3, large ones included unless ``--small``) is pruned at channel ratio 0.5
by both tools. Torch-Pruning runs as its documentation says
(``benchmarks.harness.incumbents``): ``MetaPruner`` with group L2 magnitude, every layer
that produces a model output ignored whatever its type, ``num_heads`` for attention
layers, the first output tensor traced. Each run happens in its own subprocess with a time
limit, so a tool that hangs or recurses without end is reported as such. Reported per model
and tool: pass / fail (the pruned model must run and keep its output shapes), MACs
before/after (same counter for both), prune time, and prunekit's skipped list.

The zoo is long (2-3 CPU-hours): run it in shards, each its own command and file, and
resume a shard that was cut off; then combine the shards into ``coverage.json`` (the
combined file lists every shard file with the command and commit that wrote it)::

    python benchmarks/zoo_coverage.py --shard 1/4            # -> coverage_shard1of4.json
    python benchmarks/zoo_coverage.py --shard 1/4 --resume   # continue a cut-off shard
    python benchmarks/zoo_coverage.py --combine benchmarks/results/coverage_shard*of4.json
    python benchmarks/zoo_coverage.py --smoke                # two small models, in process
    python benchmarks/zoo_coverage.py --only torchvision/resnet18 hf/llama --out /tmp/c.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make `benchmarks.harness` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import harness  # noqa: E402
from benchmarks.harness import record, tables  # noqa: E402

ROOT = harness.ROOT
SMOKE = ["torchvision/shufflenet_v2_x0_5", "hf/bert"]  # in process: no tool may hang
TOOLS = ("prunekit", "torch_pruning")


def _zoo(include_large: bool) -> dict[str, Any]:
    from prunekit.graph.zoo import all_models

    return {m.name: m for m in all_models(include_large=include_large)}


def _output_shapes(model: Any, x: Any) -> list[tuple[int, ...]]:
    import torch

    from prunekit.graph.trace import call_model, iter_tensors

    with torch.no_grad():
        return [tuple(t.shape) for t in iter_tensors(call_model(model, x))]


def _prune_prunekit(model: Any, x: Any) -> dict[str, Any]:
    import prunekit

    res = prunekit.prune(model, x, ratio=0.5)
    return {"skipped": [{k: s[k] for k in ("op", "module", "reason") if k in s}
                        for s in res.skipped]}


def _first_tensor(out: Any) -> Any:
    """Torch-Pruning traces one output tensor: the logits of a HF ModelOutput."""
    from prunekit.graph.trace import iter_tensors

    return next(iter_tensors(out))


def _prune_torch_pruning(model: Any, x: Any) -> dict[str, Any]:
    from benchmarks.harness.incumbents import torch_pruning

    return {"config": torch_pruning(model, x, 0.5, output_transform=_first_tensor)}


def run_one(name: str, tool: str, seed: int = 0) -> dict[str, Any]:
    """Build ``name``, prune it with ``tool``, check it; one result row."""
    import torch

    from prunekit.graph.trace import call_model
    from prunekit.measure import count_macs

    torch.set_num_threads(1)
    harness.seed_all(seed)
    zm = _zoo(True)[name]
    model = zm.build().eval()
    x = zm.inputs()
    shapes = _output_shapes(model, x)
    macs0 = count_macs(model, x)
    row: dict[str, Any] = {"model": name, "tool": tool, "macs_before": macs0}
    start = time.perf_counter()
    try:
        extra = (_prune_prunekit if tool == "prunekit" else _prune_torch_pruning)(model, x)
        row["seconds"] = time.perf_counter() - start
        row.update(extra)
        with torch.no_grad():
            call_model(model, x)
        if _output_shapes(model, x) != shapes:
            raise RuntimeError("output shape changed")
        row["macs_after"] = count_macs(model, x)
        row["mac_reduction"] = macs0 / max(row["macs_after"], 1)
        row["status"] = "ok" if row["mac_reduction"] > 1.0 + 1e-9 else "nothing pruned"
    except Exception as err:  # noqa: BLE001 - the failure is the measurement
        row.setdefault("seconds", time.perf_counter() - start)
        row["status"] = "fail"
        row["error"] = f"{type(err).__name__}: {str(err)[:300]}"
    return row


def _spawn(name: str, tool: str, timeout: float, seed: int) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", name, "--tool", tool,
           "--seed", str(seed)]
    start = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"model": name, "tool": tool, "status": "timeout", "seconds": timeout,
                "error": f"killed after {timeout:.0f} s"}
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"model": name, "tool": tool, "status": "crash",
                "seconds": time.perf_counter() - start, "error": tail[0][:300]}
    return json.loads(lines[-1])


LEFT_WHOLE = {"value check": "changes the outputs beyond", "cut fails": "cutting it fails"}


def left_whole(row: dict[str, Any]) -> dict[str, int]:
    """What prunekit left whole in ``row``, by why: a group whose cut changed values
    beyond removing its channels (the value check), a group whose cut failed, or a barrier
    (an op the tracer does not know: its channels stay)."""
    counts: dict[str, int] = {}
    for s in row.get("skipped", []):
        why = next((k for k, text in LEFT_WHOLE.items() if text in s.get("reason", "")),
                   "barrier")
        counts[why] = counts.get(why, 0) + 1
    return counts


def _left_whole_text(row: dict[str, Any]) -> str:
    counts = left_whole(row)
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "—"


def table_rows(rows: list[dict[str, Any]]) -> list[list[Any]]:
    by = {(r["model"], r["tool"]): r for r in rows}
    out = []
    for model in dict.fromkeys(r["model"] for r in rows):
        cells: list[Any] = [model]
        for tool in TOOLS:
            r = by.get((model, tool), {})
            cells += [r.get("status", "-"), f"{r.get('mac_reduction', 0):.2f}",
                      f"{r.get('seconds', 0):.1f}"]
            if tool == "prunekit":
                cells.append(_left_whole_text(r))
        out.append(cells)
    return out


COLUMNS = ["model", "prunekit", "MACs ÷", "s", "left whole", "Torch-Pruning", "MACs ÷ ", "s "]


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out = {}
    for tool in TOOLS:
        mine = [r for r in rows if r["tool"] == tool]
        out[tool] = {"models": len(mine), "ok": sum(r["status"] == "ok" for r in mine),
                     "ok_1.5x": sum(r.get("mac_reduction", 0) >= 1.5 for r in mine),
                     "status": _count(r["status"] for r in mine)}
    ours = [r for r in rows if r["tool"] == "prunekit"]
    out["prunekit"]["left_whole_models"] = {
        why: sorted(r["model"] for r in ours if left_whole(r).get(why))
        for why in (*LEFT_WHOLE, "barrier")}
    return out


def _count(values: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def shard_of(names: list[str], shard: str | None) -> list[str]:
    """Models of shard ``I/N`` (every N-th model from the I-th, 1-based)."""
    if shard is None:
        return names
    try:
        i, n = (int(v) for v in shard.split("/"))
    except ValueError as err:
        raise SystemExit(f"--shard must be I/N (e.g. 2/4), got {shard!r}") from err
    if not 1 <= i <= n:
        raise SystemExit(f"--shard I/N needs 1 <= I <= N, got {shard!r}")
    return names[i - 1::n]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = harness.parser("zoo_coverage", __doc__, smoke_help="two small models, in process",
                       threads=None, img=False)
    p.add_argument("--only", nargs="*", help="model names (see prunekit.graph.zoo)")
    p.add_argument("--tools", nargs="*", default=list(TOOLS))
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per run")
    p.add_argument("--small", action="store_true", help="skip the large models")
    p.add_argument("--shard", default=None, help="run shard I/N of the model list")
    p.add_argument("--combine", nargs="+", type=Path, default=None,
                   help="write coverage.json from complete shard files")
    p.add_operational("--resume", action="store_true",
                      help="keep the rows already in this command's own output and run only "
                           "the models it lacks")
    p.add_argument("--one", help=argparse.SUPPRESS)
    p.add_argument("--tool", help=argparse.SUPPRESS)
    return p.parse(argv)


def default_out(args: argparse.Namespace) -> Path:
    if args.out is not None or args.shard is None:
        return harness.out_path(args, "coverage")
    i, n = args.shard.split("/")
    return harness.RESULTS / f"coverage_shard{i}of{n}.json"


def combine(args: argparse.Namespace, rec: harness.Run) -> dict[str, Any]:
    """One file from complete shards: their rows, and which command and commit wrote each."""
    rows, sources = [], []
    for path in args.combine:
        doc = record.load(path)
        if record.status(doc) != "ok":
            raise SystemExit(f"{path}: not a complete harness-written shard "
                             f"({record.status(doc)}); finish it first (--resume)")
        rows += doc["results"]
        sources.append({"file": str(path), "command": doc["provenance"]["command"],
                        "commit": doc["provenance"]["git"]["commit"],
                        "dirty": doc["provenance"]["git"]["dirty"]})
    payload = {"combined_from": sources, "summary": summary(rows), "results": rows,
               "table": {"columns": COLUMNS, "rows": table_rows(rows)}}
    rec.write(harness.out_path(args, "coverage"), payload)
    return payload


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.one, args.tool, args.seed)))
        return {}
    with harness.session(args) as rec:
        if args.combine:
            return combine(args, rec)
        return run_zoo(args, rec)


def run_zoo(args: argparse.Namespace, rec: harness.Run) -> dict[str, Any]:
    from rich.progress import track

    names = args.only or (SMOKE if args.smoke else shard_of(list(_zoo(not args.small)),
                                                             args.shard))
    runner = (lambda n, t: run_one(n, t, args.seed)) if args.smoke else (
        lambda n, t: _spawn(n, t, args.timeout, args.seed))
    out = default_out(args)
    rows: list[dict[str, Any]] = []
    if args.resume and out.is_file():
        rec.check_owner(out)  # only this command's own rows are resumed
        rows = record.load(out).get("results", [])
        names = [n for n in names if n not in {r["model"] for r in rows}]
    total = len({r["model"] for r in rows}) + len(names)
    payload: dict[str, Any] = {}
    for name in track(names, description="coverage"):
        rows += [runner(name, tool) for tool in args.tools]
        payload = {"config": {"ratio": 0.5, "torch_threads_per_run": 1},
                   "summary": summary(rows), "results": rows,
                   "table": {"columns": COLUMNS, "rows": table_rows(rows)}}
        rec.write(out, payload, complete=len(rows) == total * len(args.tools))
    if not payload:
        print(f"nothing to run: every model is already in {out}")
        return {}
    tables.show("Coverage at channel ratio 0.5 (MAC reduction is theory)", COLUMNS,
                payload["table"]["rows"])
    print(json.dumps(payload["summary"]))
    return payload


if __name__ == "__main__":
    main()
