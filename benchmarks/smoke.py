"""Every benchmark's ``--smoke`` mode, as a user runs it, into a temporary folder.

``make bench-smoke`` (or ``python -m benchmarks.smoke [NAME ...]``): each script runs in
its own process with ``--smoke --out TMP/NAME.json`` (plots into TMP too) and must exit 0
with a complete result file written by the harness. Nothing under ``benchmarks/results``
or ``docs/img`` is touched. Minutes in all on two cores.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS: dict[str, list[str]] = {  # name -> extra arguments of its smoke run
    "solver_speed": [], "image_cs": [], "sensing_phase": [], "hierarchy": [],
    "state_space_id": [], "mac_counter": [], "zoo_coverage": [],
    "causal_lm": ["--no-torch-pruning"],
    "minilm": ["--kinds", "layers", "--no-torch-pruning"],
    "diagnose_sweep": [], "pooling_speed": [], "realized_speedup": [],
    "training_methods": ["--part", "structured"], "training_vgg": [],
    "structures_branch": [], "structures_features": [], "prune_time": [],
    "oneshot": ["--methods", "l2", "l2+ls", "obs+ls", "tp_magnitude"],
}


def run(name: str, extra: list[str], tmp: Path) -> tuple[bool, str]:
    out = tmp / f"{name}.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), "--smoke", "--out",
           str(out), *extra]
    if name not in ("mac_counter", "zoo_coverage", "causal_lm"):
        cmd += ["--img-dir", str(tmp)]
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    took = f"{time.perf_counter() - start:.0f} s"
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return False, f"exit {done.returncode} after {took}: " + " | ".join(tail)
    doc = json.loads(out.read_text())
    ok = doc.get("provenance", {}).get("complete") is True
    return ok, took if ok else f"{took}: result file incomplete"


def main(argv: list[str] | None = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or list(RUNS)
    unknown = sorted(set(names) - set(RUNS))
    if unknown:
        print(f"unknown benchmarks {unknown}; known: {sorted(RUNS)}", file=sys.stderr)
        return 2
    failed = []
    with tempfile.TemporaryDirectory(prefix="bench-smoke-") as tmp:
        for name in names:
            ok, note = run(name, RUNS[name], Path(tmp))
            print(f"{'ok  ' if ok else 'FAIL'} {name}: {note}", flush=True)
            failed += [] if ok else [name]
    print(f"{len(names) - len(failed)}/{len(names)} smoke runs passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
