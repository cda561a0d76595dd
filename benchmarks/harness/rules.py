"""The fair-comparison rules, enforced in code: a comparison that breaks one refuses to run.

Every comparison in the README is declared as a :class:`Comparison` before it runs:

* **equal budgets** — every method gets the same budget, counted in one unit
  (``"epochs"``: total training epochs, selection phase included; ``"cpu_seconds"``;
  ``"iterations"``: the same solver iteration cap per fit, for non-training comparisons
  such as compressive sensing; ``"fits"``: the same number of fits, each to its solver's
  tolerance, e.g. one per grid value in feature selection);
  unequal budgets raise, and :meth:`Comparison.spend` checks what each method really used;
* **equal grids** — every method's hyper-parameter grid has the same number of
  configurations; after selection (:meth:`Comparison.select`, on validation scores) a
  chosen value at an edge of its grid marks the result invalid ("edge: widen the grid and
  re-run"), so it is never written as a claim;
* **matched MACs** — when the comparison says "at matched MACs", MAC counts within 1 %
  (:meth:`Comparison.check_macs`);
* **verdicts** — :func:`verdict` says "ahead" only on ≥ 5 paired seeds with mean Δ > 2 SE.

The test set is read once per reported number: see :mod:`benchmarks.harness.splits`.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

BudgetKind = Literal["epochs", "cpu_seconds", "iterations", "fits"]
Verdict = Literal["ahead", "tie", "behind"]
BUDGET_KINDS = ("epochs", "cpu_seconds", "iterations", "fits")
MIN_SEEDS = 5
MAC_TOLERANCE = 0.01
EDGE_NOTE = "edge: widen the grid and re-run"


class RuleViolation(ValueError):
    """A comparison broke a fairness rule; the message names the rule."""

    def __init__(self, rule: str, detail: str) -> None:
        self.rule = rule
        super().__init__(f"rule '{rule}' broken: {detail}")


@dataclass(frozen=True)
class Method:
    """One contestant: its name, its budget and its hyper-parameter grid.

    ``grid`` maps each hyper-parameter to the values tried (``{}``: nothing selected, one
    configuration). ``incumbent`` marks the other library's method (reported as such).
    """

    name: str
    budget: float
    grid: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    incumbent: bool = False

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("Method.name must be a non-empty string")
        if not (isinstance(self.budget, int | float) and self.budget > 0):
            raise ValueError(f"Method.budget must be a positive number, got {self.budget!r}")
        for key, values in self.grid.items():
            if isinstance(values, str) or len(values) < 1:
                raise ValueError(f"Method {self.name!r}: grid[{key!r}] must be a non-empty "
                                 f"sequence of values, got {values!r}")

    @property
    def grid_size(self) -> int:
        """Number of configurations (the product of the per-parameter value counts)."""
        return math.prod(len(v) for v in self.grid.values())

    def configurations(self) -> list[dict[str, Any]]:
        """Every configuration of the grid, as ``{parameter: value}``."""
        keys = list(self.grid)
        return [dict(zip(keys, combo)) for combo in itertools.product(*self.grid.values())]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "budget": self.budget, "incumbent": self.incumbent,
                "grid": {k: list(v) for k, v in self.grid.items()},
                "grid_size": self.grid_size}


@dataclass
class Choice:
    """A configuration chosen on validation scores, and the parameters at a grid edge."""

    method: str
    values: dict[str, Any]
    score: float
    at_edge: list[str]
    scores: list[dict[str, Any]]

    @property
    def interior(self) -> bool:
        return not self.at_edge

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "values": self.values, "score": self.score,
                "at_edge": self.at_edge, "scores": self.scores,
                "note": EDGE_NOTE if self.at_edge else "interior"}


@dataclass
class Comparison:
    """A declared comparison; construction refuses unequal budgets or grids.

    Parameters
    ----------
    name
        What is compared (names the claim in results and the README).
    methods
        The contestants (at least two, distinct names).
    budget_kind
        ``"epochs"`` (total training epochs incl. selection), ``"cpu_seconds"``,
        ``"iterations"`` (solver iterations per fit) or ``"fits"`` (fits to tolerance).
    matched_macs
        The comparison is "at matched MACs": :meth:`check_macs` must pass (1 %).
    """

    name: str
    methods: Sequence[Method]
    budget_kind: BudgetKind
    matched_macs: bool = False
    choices: dict[str, Choice] = field(default_factory=dict, init=False)
    spent: dict[str, float] = field(default_factory=dict, init=False)
    macs_checks: list[dict[str, Any]] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.methods = list(self.methods)
        if self.budget_kind not in BUDGET_KINDS:
            raise ValueError(f"budget_kind must be one of {BUDGET_KINDS}, "
                             f"got {self.budget_kind!r}")
        names = [m.name for m in self.methods]
        if len(names) < 2 or len(set(names)) != len(names):
            raise ValueError(f"a Comparison needs at least two methods with distinct names, "
                             f"got {names}")
        budgets = {m.name: m.budget for m in self.methods}
        if len(set(budgets.values())) != 1:
            raise RuleViolation("equal budgets", f"{self.name}: {self.budget_kind} per method "
                                f"{budgets} differ; give every method the same budget")
        sizes = {m.name: m.grid_size for m in self.methods}
        if len(set(sizes.values())) != 1:
            raise RuleViolation("equal grids", f"{self.name}: grid sizes {sizes} differ; "
                                "every method gets as many configurations to choose from")

    @property
    def budget(self) -> float:
        return self.methods[0].budget

    def method(self, name: str) -> Method:
        for m in self.methods:
            if m.name == name:
                return m
        raise KeyError(f"{self.name}: no method named {name!r} "
                       f"(have {[m.name for m in self.methods]})")

    def spend(self, method: str, amount: float) -> None:
        """Record what ``method`` used; using more than the budget raises, and for epochs
        :meth:`check_spent` later requires exactly the budget."""
        self.method(method)
        total = self.spent.get(method, 0.0) + float(amount)
        if total > self.budget * (1 + 1e-9):
            raise RuleViolation("equal budgets", f"{self.name}: {method} used {total:g} "
                                f"{self.budget_kind}, over the budget {self.budget:g}")
        self.spent[method] = total

    def check_spent(self) -> None:
        """Epoch budgets: every method used exactly the budget (CPU seconds: at most)."""
        if self.budget_kind != "epochs":
            return
        short = {m.name: self.spent.get(m.name, 0.0) for m in self.methods
                 if not math.isclose(self.spent.get(m.name, 0.0), self.budget)}
        if short:
            raise RuleViolation("equal budgets", f"{self.name}: epochs used {short} differ "
                                f"from the budget {self.budget:g}")

    def select(self, method: str, scores: Sequence[tuple[Mapping[str, Any], float]],
               higher_is_better: bool = True) -> Choice:
        """Choose ``method``'s configuration from ``(configuration, validation score)``
        pairs covering its whole grid; record whether the choice sits at a grid edge."""
        spec = self.method(method)
        wanted = {_key(c) for c in spec.configurations()}
        given = {_key(c) for c, _ in scores}
        if given != wanted:
            raise RuleViolation("equal grids", f"{self.name}: {method} was scored on "
                                f"{len(given)} configurations, its grid has {len(wanted)}")
        pick = max if higher_is_better else min
        values, score = pick(scores, key=lambda cs: cs[1])
        choice = Choice(method, dict(values), float(score), grid_edges(spec.grid, values),
                        [{"values": dict(c), "score": float(s)} for c, s in scores])
        self.choices[method] = choice
        return choice

    def check_macs(self, macs: Mapping[str, int | float],
                   tolerance: float = MAC_TOLERANCE) -> dict[str, Any]:
        """At matched MACs: the largest count within ``tolerance`` of the smallest."""
        if not self.matched_macs:
            raise ValueError(f"{self.name} was not declared matched_macs=True")
        values = {k: float(v) for k, v in macs.items()}
        if len(values) < 2 or min(values.values()) <= 0:
            raise ValueError(f"check_macs needs two or more positive MAC counts, got {macs}")
        gap = max(values.values()) / min(values.values()) - 1
        if gap > tolerance:
            raise RuleViolation("matched MACs", f"{self.name}: MACs {values} differ by "
                                f"{gap:.2%} > {tolerance:.0%}")
        check = {"macs": values, "gap": gap, "tolerance": tolerance}
        self.macs_checks.append(check)
        return check

    def validity(self) -> dict[str, Any]:
        """``{"valid": bool, "reasons": [...]}``: invalid when a choice sits at a grid edge."""
        reasons = [f"{self.name} — {key}: {', '.join(c.at_edge)} at the grid edge "
                   f"({EDGE_NOTE})" for key, c in self.choices.items() if c.at_edge]
        return {"valid": not reasons, "reasons": reasons}

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "budget_kind": self.budget_kind, "budget": self.budget,
                "matched_macs": self.matched_macs,
                "methods": [m.to_dict() for m in self.methods],
                "spent": dict(self.spent),
                "choices": {k: c.to_dict() for k, c in self.choices.items()},
                "macs_checks": list(self.macs_checks), "validity": self.validity()}


def grid_edges(grid: Mapping[str, Sequence[Any]], values: Mapping[str, Any]) -> list[str]:
    """Parameters whose chosen value is the smallest or largest of a numeric grid of ≥ 2
    values (a grid of two values has no interior: any choice is an edge). Categorical
    grids (strings, ...) have no edges."""
    edges = []
    for key, options in grid.items():
        if len(options) < 2 or not all(_numeric(v) for v in options):
            continue
        if values[key] in (min(options), max(options)):
            edges.append(key)
    return edges


def verdict(deltas: Sequence[float], min_seeds: int = MIN_SEEDS) -> Verdict:
    """``"ahead"`` / ``"behind"`` when the mean paired difference is more than 2 standard
    errors from zero over at least ``min_seeds`` seeds, else ``"tie"``.

    ``deltas`` are per-seed paired differences (ours − theirs, higher = better for us).
    Fewer than ``min_seeds`` raises: no verdict is said on too few seeds.
    """
    values = [float(d) for d in deltas]
    if min_seeds < 2:
        raise ValueError(f"min_seeds must be at least 2, got {min_seeds}")
    if len(values) < min_seeds or any(not math.isfinite(v) for v in values):
        raise RuleViolation("verdict seeds", f"{len(values)} finite paired seeds given, "
                            f"a verdict needs at least {min_seeds}")
    mean, se = mean_se(values)
    if abs(mean) > 2 * se:
        return "ahead" if mean > 0 else "behind"
    return "tie"


def mean_se(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error ``sd / √n`` (sample sd; ``nan`` for one value)."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("mean_se needs at least one value")
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else math.nan
    return statistics.fmean(values), se


def paired_deltas(ours: Mapping[int, float], theirs: Mapping[int, float]) -> list[float]:
    """``ours[s] − theirs[s]`` for every seed ``s``; both sides must have the same seeds."""
    if set(ours) != set(theirs):
        raise RuleViolation("paired seeds", f"seeds differ: {sorted(ours)} vs {sorted(theirs)}")
    return [ours[s] - theirs[s] for s in sorted(ours)]


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _key(config: Mapping[str, Any]) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in config.items()))
