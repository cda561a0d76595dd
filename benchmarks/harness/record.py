"""The one JSON writer of the benchmarks, and its reader.

A result file says how it was made: the exact command line and its options, the git
commit (and whether the working tree had uncommitted code changes), library versions,
CPU threads, the machine (CPU model, cores), the load average when the run started and
when the file was written, start and end times, and whether the run finished. It is only
ever written by its own command: :meth:`Run.write` refuses a file that another command (or
no harness command: a hand-made or merged file) wrote, and it always writes the whole
payload it is given — nothing is merged into an existing file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks.harness.args import ROOT, config, identity
from benchmarks.harness.rules import Comparison, RuleViolation
from benchmarks.harness.splits import Splits

RESERVED = ("provenance", "machine", "comparisons", "validity", "splits")
PACKAGES = ("torch", "torchvision", "numpy", "scipy", "scikit-learn", "torch-pruning",
            "skglm", "group-lasso", "numba", "transformers", "timm", "fvcore", "ptflops",
            "PyWavelets", "threadpoolctl", "prunekit")
OUTPUT_DIRS = ("benchmarks/results/", "docs/img/")  # written by runs: not "dirty code"
SCHEMA = 1


class ProvenanceError(RuleViolation):
    """A result file would be written by a command other than the one that made it."""

    def __init__(self, detail: str) -> None:
        super().__init__("one command per result file", detail)


@dataclass
class Run:
    """One benchmark run: started once, writes its result file(s) with provenance."""

    args: argparse.Namespace
    started: str = field(default_factory=lambda: _now())
    load_start: list[float] = field(default_factory=lambda: _load())
    git: dict[str, Any] = field(default_factory=lambda: git_state())
    written: set[Path] = field(default_factory=set)

    @property
    def identity(self) -> dict[str, Any]:
        return _roundtrip(identity(self.args))

    def provenance(self, complete: bool) -> dict[str, Any]:
        return {"schema": SCHEMA, "command": self.args.command, "argv": list(self.args.argv),
                "script": f"benchmarks/{self.args.bench_name}.py",
                "config": config(self.args), "identity": self.identity,
                "git": dirty_for_this_run(self.git),
                "started": self.started, "written": _now(),
                "load_average": {"start": self.load_start, "written": _load()},
                "complete": complete}

    def write(self, path: Path, payload: dict[str, Any], complete: bool = True,
              comparison: Comparison | Sequence[Comparison] | None = None,
              splits: Splits | None = None) -> Path:
        """Write ``payload`` with provenance (and each comparison's spec, their joint
        validity, the splits with their test reads) to ``path``; ``complete=False`` for
        checkpoints of a long run (same command, rewritten until it finishes)."""
        clash = [k for k in RESERVED if k in payload]
        if clash:
            raise ValueError(f"payload keys {clash} are reserved for the harness")
        path = Path(path)
        self.check_owner(path)
        doc: dict[str, Any] = {"provenance": self.provenance(complete), "machine": machine()}
        comparisons = [comparison] if isinstance(comparison, Comparison) else \
            list(comparison or [])
        if comparisons:
            doc["comparisons"] = [c.to_dict() for c in comparisons]
            reasons = [r for c in comparisons for r in c.validity()["reasons"]]
            doc["validity"] = {"valid": not reasons, "reasons": reasons}
        if splits is not None:
            doc["splits"] = splits.to_dict()
        doc.update(payload)
        _atomic_write(path, json.dumps(doc, indent=1, default=_plain, allow_nan=True))
        self.written.add(path.resolve())
        return path

    def check_owner(self, path: Path) -> None:
        """Raise :class:`ProvenanceError` unless ``path`` is absent or this command's own."""
        if path.resolve() in self.written or not path.exists():
            return
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise ProvenanceError(f"{path} exists and is not a readable result file "
                                  f"({err}); remove it to write it again") from err
        prov = old.get("provenance") if isinstance(old, dict) else None
        if not isinstance(prov, dict) or "identity" not in prov:
            raise ProvenanceError(f"{path} was not written by a harness command (hand-made "
                                  "or merged); remove it (git rm) to regenerate it")
        if prov["identity"] != self.identity:
            why = _diff(prov["identity"], self.identity)
            raise ProvenanceError(f"{path} was written by `{prov.get('command')}`, not by "
                                  f"`{self.args.command}` ({why}); write to another --out")


def load(path: Path) -> dict[str, Any]:
    """A result file's JSON (any file; see :func:`status` for what it can back)."""
    return json.loads(Path(path).read_text())


def status(doc: dict[str, Any]) -> str:
    """``"ok"`` (harness-written, complete, valid), ``"legacy"`` (no provenance: not
    written under the harness), ``"partial"`` or ``"invalid"`` (a rule marked it)."""
    prov = doc.get("provenance")
    if not isinstance(prov, dict):
        return "legacy"
    if not prov.get("complete"):
        return "partial"
    if not doc.get("validity", {"valid": True}).get("valid", True):
        return "invalid"
    return "ok"


def machine() -> dict[str, Any]:
    """The project's machine description, plus cores usable, threads and versions."""
    import torch

    from prunekit.measure import machine_info

    info = machine_info()
    info["cores_usable"] = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else os.cpu_count()
    info["threads"] = {"torch_intra_op": torch.get_num_threads(),
                       "torch_inter_op": torch.get_num_interop_threads(),
                       "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
                       "MKL_NUM_THREADS": os.environ.get("MKL_NUM_THREADS"),
                       "blas": _blas_threads()}
    info["versions"] = versions()
    return info


def versions() -> dict[str, str | None]:
    """Installed versions of the libraries a benchmark may use (``None``: not installed)."""
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_state() -> dict[str, Any]:
    """``{"commit", "changed"}`` when the run starts: HEAD and the tracked files (outside
    the results and figure folders) that differ from it; ``None`` outside a checkout."""
    try:
        commit = _git("rev-parse", "HEAD").strip()
        changed = [line[3:] for line in _git("status", "--porcelain",
                                             "--untracked-files=no").splitlines()]
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "changed": None}
    return {"commit": commit, "changed": [p for p in changed if not p.startswith(OUTPUT_DIRS)]}


def dirty_for_this_run(git: dict[str, Any]) -> dict[str, Any]:
    """``git`` plus ``dirty``: whether a file this process loaded (a module under the
    repository: prunekit, the harness, the script) differed from the commit when the run
    started — changes elsewhere (docs, other scripts) are listed but do not count."""
    if git.get("changed") is None:
        return {**git, "dirty": None}
    loaded = loaded_files()
    hits = [p for p in git["changed"] if p in loaded]
    return {**git, "dirty": bool(hits), "dirty_files": hits}


def loaded_files() -> set[str]:
    """Repository-relative paths of every module this process has imported."""
    import sys

    out = set()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if not path:
            continue
        try:
            out.add(Path(path).resolve().relative_to(ROOT).as_posix())
        except ValueError:
            continue
    return out


def _git(*cmd: str) -> str:
    return subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True,
                          check=True, timeout=30).stdout


def _blas_threads() -> dict[str, Any]:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return {}
    return {p.get("internal_api", "?"): p.get("num_threads") for p in threadpool_info()}


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    tmp.replace(path)


def _diff(old: dict[str, Any], new: dict[str, Any]) -> str:
    if old.get("script") != new.get("script"):
        return f"script {old.get('script')} vs {new.get('script')}"
    a, b = old.get("config", {}), new.get("config", {})
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return "options differ: " + ", ".join(f"{k} {a.get(k)!r} → {b.get(k)!r}" for k in keys[:6])


def _roundtrip(value: Any) -> Any:
    return json.loads(json.dumps(value, default=_plain))


def _plain(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, set | tuple):
        return list(obj)
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    return str(obj)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]
