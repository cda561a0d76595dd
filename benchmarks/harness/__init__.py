"""The benchmark harness: every script in ``benchmarks/`` runs through it.

One way to do each thing a benchmark does — arguments (:mod:`.args`), data splits with a
counted test set (:mod:`.splits`), seeding (:mod:`.seeding`), paired ABBA timing with every
reading kept (:mod:`.timing`), tables with median and spread (:mod:`.tables`), plots
(:mod:`.plots`), the one JSON writer with provenance (:mod:`.record`) — and the fairness
rules in code (:mod:`.rules`). A script reads::

    args = harness.parser("name", __doc__).parse(argv)
    with harness.session(args) as run:
        ...
        run.write(harness.out_path(args), payload)
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator

from benchmarks.harness.args import IMG, RESULTS, ROOT, BenchParser, out_path, parser
from benchmarks.harness.record import ProvenanceError, Run, load, status
from benchmarks.harness.rules import (
    Choice,
    Comparison,
    Method,
    RuleViolation,
    mean_se,
    paired_deltas,
    verdict,
)
from benchmarks.harness.seeding import generator, seed_all
from benchmarks.harness.splits import Splits, carve, fashion_mnist

__all__ = [
    "IMG", "RESULTS", "ROOT", "BenchParser", "Choice", "Comparison", "Method",
    "ProvenanceError", "Run", "RuleViolation", "Splits", "carve", "fashion_mnist",
    "generator", "load", "mean_se", "out_path", "paired_deltas", "parser", "seed_all",
    "session", "status", "verdict",
]


@contextlib.contextmanager
def session(args: argparse.Namespace) -> Iterator[Run]:
    """Seed everything with ``--seed``, pin ``--threads`` for the block (restored after)
    and start the :class:`Run` that writes the result file."""
    from prunekit.measure.timing import cpu_threads

    if getattr(args, "seed", None) is not None:
        seed_all(args.seed)
    with cpu_threads(getattr(args, "threads", None)):
        yield Run(args)
