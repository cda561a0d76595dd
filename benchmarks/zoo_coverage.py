"""Coverage: the model zoo through prunekit and Torch-Pruning, side by side.

Every model (torchvision classification zoo, the timm models and Hugging Face configs of
issue 3) is pruned at channel ratio 0.5 by both tools with their generic settings
(Torch-Pruning: ``MetaPruner`` + group L2 magnitude, final classifier ignored, the first
output tensor traced, as its README shows). Each run happens in its own subprocess with a
time limit, so a tool that hangs or recurses without end is reported as such. Reported
per model and tool: pass / fail (the pruned model must run and keep its output shape),
MACs before/after (same counter for both), prune time, and prunekit's skipped list.

    python benchmarks/zoo_coverage.py            # whole zoo (large models too), ~1 h on 2 cores
    python benchmarks/zoo_coverage.py --smoke    # two small models, in process, seconds
    python benchmarks/zoo_coverage.py --only torchvision/resnet18 hf/llama
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ["torchvision/shufflenet_v2_x0_5", "hf/bert"]  # in process: no tool may hang


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


def _classifier(model: Any) -> list[Any]:
    """The last Linear layer (Torch-Pruning must be told not to prune the outputs)."""
    import torch

    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    return linears[-1:]


def _first_tensor(out: Any) -> Any:
    """Torch-Pruning traces one output tensor: the logits of a HF ModelOutput."""
    from prunekit.graph.trace import iter_tensors

    return next(iter_tensors(out))


def _prune_torch_pruning(model: Any, x: Any) -> dict[str, Any]:
    import torch_pruning as tp

    pruner = tp.pruner.MetaPruner(model, x, importance=tp.importance.GroupMagnitudeImportance(p=2),
                                  pruning_ratio=0.5, ignored_layers=_classifier(model),
                                  output_transform=_first_tensor)
    pruner.step()
    return {}


def run_one(name: str, tool: str) -> dict[str, Any]:
    """Build ``name``, prune it with ``tool``, check it; one result row."""
    import torch

    from prunekit.graph.trace import call_model
    from prunekit.measure import count_macs

    torch.set_num_threads(1)
    torch.manual_seed(0)
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


def _spawn(name: str, tool: str, timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", name, "--tool", tool]
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


def _table(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Coverage at channel ratio 0.5 (MAC reduction is theory)")
    for col in ("model", "prunekit", "MACs ÷", "time s", "Torch-Pruning", "MACs ÷ ", "time s "):
        table.add_column(col)
    by = {(r["model"], r["tool"]): r for r in rows}
    for model in dict.fromkeys(r["model"] for r in rows):
        cells = [model]
        for tool in ("prunekit", "torch_pruning"):
            r = by.get((model, tool), {})
            cells += [r.get("status", "-"), f"{r.get('mac_reduction', 0):.2f}",
                      f"{r.get('seconds', 0):.1f}"]
        table.add_row(*cells)
    Console().print(table)


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out = {}
    for tool in ("prunekit", "torch_pruning"):
        mine = [r for r in rows if r["tool"] == tool]
        out[tool] = {"models": len(mine), "ok": sum(r["status"] == "ok" for r in mine),
                     "ok_1.5x": sum(r.get("mac_reduction", 0) >= 1.5 for r in mine)}
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="two small models, in process")
    parser.add_argument("--only", nargs="*", help="model names (see prunekit.graph.zoo)")
    parser.add_argument("--tools", nargs="*", default=["prunekit", "torch_pruning"])
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per run")
    parser.add_argument("--small", action="store_true", help="skip the large models")
    parser.add_argument("--out", default=None)
    parser.add_argument("--resume", action="store_true",
                        help="keep the rows already in the output file and run only the "
                             "models it lacks (a model named in --only is re-run)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--tool", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.one, args.tool)))
        return {}
    from rich.progress import track

    from prunekit.measure.machine import machine_info

    names = args.only or (SMOKE if args.smoke else list(_zoo(not args.small)))
    config = {"ratio": 0.5, "models": names, "tools": args.tools, "timeout_s": args.timeout,
              "torch_threads_per_run": 1, "smoke": args.smoke}
    print(json.dumps({"config": config, "machine": machine_info()}))
    runner = (lambda n, t: run_one(n, t)) if args.smoke else (
        lambda n, t: _spawn(n, t, args.timeout))
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / (
        "coverage_smoke.json" if args.smoke else "coverage.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    if args.resume and out.is_file():
        rerun = set(args.only or ())
        rows = [r for r in json.loads(out.read_text()).get("results", [])
                if r["model"] not in rerun]
        done = {r["model"] for r in rows}
        names = [n for n in names if n not in done]
        config["models"] = sorted(done | set(names))
    payload: dict[str, Any] = {}
    for name in track(names, description="coverage"):
        rows += [runner(name, tool) for tool in args.tools]
        payload = {"machine": machine_info(), "config": config, "smoke": args.smoke,
                   "complete": len(rows) == len(config["models"]) * len(args.tools),
                   "summary": _summary(rows), "results": rows}
        out.write_text(json.dumps(payload, indent=1))  # partial results survive a kill
    if not payload:
        print(f"nothing to run: every model is already in {out}")
        return {}
    _table(rows)
    print(json.dumps(payload["summary"]))
    return payload


if __name__ == "__main__":
    main()
