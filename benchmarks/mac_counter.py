"""Our MAC counter against fvcore, ptflops and ``torch.utils.flop_counter`` on the torchvision zoo.

For every torchvision classification model (random weights, batch 1, 224² — 299² for
Inception-v3) the script counts multiply-accumulates with:

* ``prunekit``            — :func:`prunekit.measure.count_macs`;
* ``flop_counter``        — ``torch.utils.flop_counter.FlopCounterMode`` total / 2;
* ``fvcore``              — ``FlopCountAnalysis.total()`` (its "flops" are MACs), default ops;
* ``fvcore_matched``      — fvcore with its norm / pooling / upsample handles removed, i.e.
  the same policy as ours (convolutions and matrix products only);
* ``ptflops``             — ptflops' default pytorch backend (counts BN, ReLU, pooling, bias);
* ``ptflops_aten``        — ptflops' aten backend (convolution + matmul ops, counts conv bias).

It prints a table, writes JSON with the machine description, and reports which models
agree within 1 % with ``flop_counter`` and with ``fvcore_matched`` or ``ptflops_aten``.

Usage::

    nice -n 10 python benchmarks/mac_counter.py            # whole zoo (~15 CPU-min)
    python benchmarks/mac_counter.py --smoke               # seconds
    python benchmarks/mac_counter.py --models resnet50 vit_b_16 --out /tmp/m.json

The file is rewritten after every model (``complete: false`` until the last one).
"""

from __future__ import annotations

import gc
import io
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
import torchvision
from rich.progress import track

if __package__ in (None, ""):  # run as a file: make `benchmarks.harness` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import harness  # noqa: E402
from benchmarks.harness import tables  # noqa: E402
from prunekit.measure import MacProfile, mac_profile  # noqa: E402

SMOKE_MODELS = {"resnet18": 32, "mobilenet_v3_small": 32}
TOLERANCE = 0.01
# fvcore ops that are not multiply-accumulates of a weight (excluded by our policy)
FVCORE_NON_MAC_OPS = (
    "aten::batch_norm", "aten::group_norm", "aten::layer_norm", "aten::instance_norm",
    "aten::upsample_nearest2d", "aten::upsample_bilinear2d", "aten::adaptive_avg_pool2d",
    "aten::grid_sampler",
)


def _flop_counter(model: torch.nn.Module, x: torch.Tensor) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return counter.get_total_flops() // 2


def _fvcore(model: torch.nn.Module, x: torch.Tensor, matched: bool) -> int:
    from fvcore.nn import FlopCountAnalysis
    from fvcore.nn.flop_count import _DEFAULT_SUPPORTED_OPS

    analysis = FlopCountAnalysis(model, x)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    if matched:  # set_op_handle(name=None) does not drop a default handle: rebuild the set
        handles = {k: v for k, v in _DEFAULT_SUPPORTED_OPS.items() if k not in FVCORE_NON_MAC_OPS}
        analysis.clear_op_handles().set_op_handle(**handles)
    with torch.no_grad():
        return int(analysis.total())


def _ptflops(model: torch.nn.Module, x: torch.Tensor, backend: str) -> int:
    from ptflops import get_model_complexity_info

    macs, _ = get_model_complexity_info(
        model, tuple(x.shape[1:]), as_strings=False, print_per_layer_stat=False,
        backend=backend, ost=io.StringIO(),
    )
    if macs is None:
        raise RuntimeError("ptflops returned None")
    return int(macs)


COUNTERS: dict[str, Callable[[torch.nn.Module, torch.Tensor], int]] = {
    "prunekit": lambda m, x: mac_profile(m, x),
    "flop_counter": _flop_counter,
    "fvcore": lambda m, x: _fvcore(m, x, matched=False),
    "fvcore_matched": lambda m, x: _fvcore(m, x, matched=True),
    "ptflops": lambda m, x: _ptflops(m, x, "pytorch"),
    "ptflops_aten": lambda m, x: _ptflops(m, x, "aten"),
}


def measure_model(name: str, resolution: int, seed: int = 0) -> dict[str, object]:
    """Build ``name`` with random weights and run every counter on one image."""
    harness.seed_all(seed)
    model = torchvision.models.get_model(name, weights=None).eval()
    x = torch.randn(1, 3, resolution, resolution)
    row: dict[str, object] = {"model": name, "resolution": resolution, "counts": {},
                              "seconds": {}, "errors": {}}
    for counter, fn in COUNTERS.items():
        start = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                value = fn(model, x)
            if isinstance(value, MacProfile):
                row["prunekit_by_op"], value = value.by_op, value.total
            row["counts"][counter] = value
        except Exception as exc:  # a reference tool failing is a result, not a crash
            row["errors"][counter] = f"{type(exc).__name__}: {str(exc)[:200]}"
        row["seconds"][counter] = round(time.perf_counter() - start, 3)
    ours = row["counts"].get("prunekit")
    row["rel_diff"] = {
        k: (v - ours) / ours for k, v in row["counts"].items() if ours and k != "prunekit"
    }
    del model
    gc.collect()
    return row


def _agrees(row: dict, counter: str) -> bool:
    diff = row["rel_diff"].get(counter)
    return diff is not None and abs(diff) <= TOLERANCE


def summarize(rows: list[dict]) -> dict[str, object]:
    """Counts of models within 1 % of each reference, and the list of those that are not."""
    summary = {f"within_1pct_{k}": sum(_agrees(r, k) for r in rows) for k in COUNTERS if
               k != "prunekit"}
    summary["n_models"] = len(rows)
    summary["within_1pct_flop_counter_and_(fvcore_matched_or_ptflops_aten)"] = sum(
        _agrees(r, "flop_counter") and (_agrees(r, "fvcore_matched") or _agrees(r, "ptflops_aten"))
        for r in rows
    )
    summary["disagreements"] = {
        r["model"]: {k: round(v, 4) for k, v in r["rel_diff"].items() if abs(v) > TOLERANCE}
        for r in rows
        if not (_agrees(r, "flop_counter") and _agrees(r, "fvcore_matched"))
    }
    return summary


def table_rows(rows: list[dict]) -> list[list]:
    """Per model: our count (GMACs) and each reference's relative difference to it."""
    out = []
    for row in rows:
        diffs = [row["rel_diff"].get(c) for c in list(COUNTERS)[1:]]
        out.append([row["model"], f"{row['counts'].get('prunekit', float('nan')) / 1e9:.3f}",
                    *["error" if d is None else f"{d:+.2%}" for d in diffs]])
    return out


COLUMNS = ["model", "prunekit GMACs", *list(COUNTERS)[1:]]


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = harness.parser("mac_counter", __doc__, smoke_help="two small models at 32²",
                            img=False)
    parser.add_argument("--models", nargs="*", help="torchvision model names (default: all)")
    args = parser.parse(argv)
    if args.smoke:
        plan = dict(SMOKE_MODELS)
    else:
        names = args.models or torchvision.models.list_models(module=torchvision.models)
        plan = {n: 299 if n == "inception_v3" else 224 for n in names}
    out = harness.out_path(args)
    config = {"batch": 1, "tolerance": TOLERANCE, "models": plan}
    rows: list[dict] = []
    with harness.session(args) as rec:
        for name, resolution in track(plan.items(), description="counting"):
            rows.append(measure_model(name, resolution, args.seed))
            result = {"config": config, "summary": summarize(rows), "models": rows,
                      "table": {"columns": COLUMNS, "rows": table_rows(rows)}}
            rec.write(out, result, complete=len(rows) == len(plan))  # partial runs count
    tables.show("MACs (G) and relative difference to prunekit", COLUMNS, table_rows(rows))
    print(f"summary: {result['summary']}\nwrote {out}")
    return result


if __name__ == "__main__":
    main()
