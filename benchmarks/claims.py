"""Every claim the README makes from a benchmark: its command, its one result file, its
status under the fair harness (issue 21), and what was wrong with the previous run.

``benchmarks/readme.py`` renders the README's result blocks and the status table of
``benchmarks/README.md`` from this list and the result files; nothing in those blocks is
typed by hand. A claim is *regenerated* once its file was written by its command under
the harness (complete and valid); until then its block says "not yet re-run under the
fair harness".
"""

from __future__ import annotations

from dataclasses import dataclass, field

PHASES = ("regenerated", "to re-run", "dropped")


@dataclass(frozen=True)
class Claim:
    """One README claim.

    ``name`` is its marker (``<!-- results:NAME -->``); ``file`` the one result file its
    ``command`` writes (under ``benchmarks/results/``); ``phase`` what the project intends
    (``regenerated`` in this phase, ``to re-run`` in the next, or ``dropped``);
    ``cost`` a rough CPU estimate; ``issues`` what made the previous evidence unfit;
    ``legacy`` a pre-harness file kept for reference until the re-run (``None``: removed).
    """

    name: str
    title: str
    command: str
    file: str
    phase: str
    cost: str
    issues: tuple[str, ...] = ()
    legacy: str | None = None
    renderer: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.phase not in PHASES:
            raise ValueError(f"Claim {self.name!r}: phase must be one of {PHASES}")


CLAIMS: tuple[Claim, ...] = (
    Claim("solver_speed", "Group-sparse solvers vs skglm and group-lasso",
          "python benchmarks/solver_speed.py", "solver_speed.json",
          "regenerated", "~8 CPU-min",
          ("the group-lasso package was run with group_reg = α; its FISTA minimizes "
           "loss + 2·group_reg·Ω, so it converged to another problem (now α/2)",
           "single readings; now ≥ 5 per time-to-target, median and range"),
          renderer="solver_speed"),
    Claim("block_cs", "Block-sparse compressive sensing",
          "python benchmarks/sensing_phase.py", "sensing.json", "regenerated", "~1 CPU-min",
          ("hand-run JSON without provenance",), renderer="block_cs"),
    Claim("image_cs", "Compressive imaging: tree lasso vs L1",
          "python benchmarks/image_cs.py", "image_cs.json", "regenerated", "~3 CPU-min",
          ("L1 got α/α_max ∈ {0.3, 0.1, 0.03}, the tree lasso {0.03, 0.01, 0.003}; L1's best "
           "sat at its grid edge at every m ≥ 410",
           "α was chosen on the photograph itself (oracle); now by cross-validation on "
           "held-out measurements, one shared grid (widened to 8 values: 0.3 was an edge)"),
          renderer="image_cs"),
    Claim("hierarchy", "Hierarchical feature selection",
          "python benchmarks/hierarchy.py", "hierarchy.json", "regenerated", "~20 CPU-s",
          ("the best point of each path was read on the test split; sklearn got 14 values, "
           "ours 12; now 12 each, chosen on validation, test read once"),
          renderer="hierarchy"),
    Claim("cs_heatmaps", "Compressive sensing heat maps (block, tree, plain)",
          "python benchmarks/sensing_phase.py --part heatmaps", "sensing_heatmaps.json",
          "to re-run", "~15 CPU-min", ("hand-run JSON without provenance",),
          legacy="sensing_heatmaps.json", renderer="heatmaps"),
    Claim("state_space", "State-space identification",
          "python benchmarks/state_space_id.py", "state_space.json", "to re-run",
          "~10 CPU-min", ("hand-run JSON without provenance",), legacy="state_space.json",
          renderer="table"),
    Claim("coverage", "Graph coverage vs Torch-Pruning",
          "python benchmarks/zoo_coverage.py --shard I/N  (then --shard I/N --resume)",
          "coverage.json", "to re-run", "~2-3 CPU-hours (all torchvision + timm/HF)",
          ("only 27 of 91 models ran (resumed runs merged into one file)",
           "Torch-Pruning protected only a final nn.Linear (SqueezeNet's classifier is a "
           "conv) and got no num_heads"), renderer="coverage"),
    Claim("mac_counter", "MAC counter vs flop_counter, fvcore, ptflops",
          "python benchmarks/mac_counter.py", "mac_counter.json", "to re-run",
          "~15 CPU-min", ("21 of 80 models counted; no provenance",), legacy="mac_counter.json",
          renderer="mac_counter"),
    Claim("unstructured", "Unstructured LeNet-300-100 vs torch.nn.utils.prune",
          "python benchmarks/training_methods.py --part unstructured --seed S  (S = 0..4), "
          "then python benchmarks/structured_seeds.py FILES",
          "training_methods_unstructured_seeds.json", "to re-run",
          "~5 × 2 CPU-hours (3-value lr grid per method)",
          ("baseline at lr 1e-3, prunekit at 2e-3 from a separate run; the control at "
           "2e-3 narrows the margins to about −0.2 … +0.8 pt",
           "recipe picked among five variants on seed-0 test accuracy; files merged"),
          renderer="seeds"),
    Claim("lottery", "Lottery ticket, LeNet-300-100",
          "python benchmarks/training_methods.py --part lottery --seed S  (S = 0..4), "
          "then python benchmarks/structured_seeds.py FILES",
          "training_methods_lottery_seeds.json", "to re-run", "~5 × 30 CPU-min",
          ("two seeds only (a verdict needs ≥ 5)",), renderer="seeds"),
    Claim("structured", "Structured LeNet-5 vs Torch-Pruning at matched MACs",
          "python benchmarks/training_methods.py --part structured --seed S  (S = 0..4), "
          "then python benchmarks/structured_seeds.py FILES",
          "training_methods_structured_seeds.json", "to re-run", "~5 × 60 CPU-min",
          ("Torch-Pruning got 5 fine-tuning epochs, prunekit 3 proximal + 5 (now the same "
           "total for both)",
           "min_keep_rel = 0.9 was chosen among variants on test accuracy",
           "with equal epochs, a new user's 3 seeds read 87.28 % vs 87.39 % at 8×"),
          renderer="seeds"),
    Claim("vgg", "VGG-style CNN vs Torch-Pruning (and at prunekit's widths)",
          "python benchmarks/training_vgg.py --seed S  (S = 0..4), "
          "then python benchmarks/structured_seeds.py FILES", "training_vgg_seeds.json",
          "to re-run", "~5 × 2 CPU-hours",
          ("unequal epochs (as LeNet-5); files merged with --finish",
           "the dense model was under-trained (4 epochs); now chosen on validation "
           "(--dense-curve)",
           "Torch-Pruning also runs at prunekit's own widths (allocation vs selection)"),
          renderer="seeds"),
    Claim("speedup", "Realized speedup vs Torch-Pruning",
          "python benchmarks/realized_speedup.py --width-or-depth --floor --threads 2",
          "realized_speedup_cpu_2thread.json", "to re-run", "~3 CPU-hours (idle box)",
          ("'TP at same MACs' matched by 4 bisection steps (MobileNetV2 6.99× vs ours 9.25×)",
           "README timings were the best of several readings; rows appended with --append"),
          renderer="table"),
    Claim("pooling", "Index-free max pooling",
          "python benchmarks/pooling_speed.py", "pooling_speed.json", "to re-run",
          "~5 CPU-min", ("reported the fastest reading (min), not the median",),
          renderer="pooling"),
    Claim("minilm", "MiniLM depth and width plans",
          "python benchmarks/minilm.py --kinds layers ffn heads_ffn --targets 1.5 2",
          "minilm.json", "to re-run", "~60 CPU-min",
          ("one seed; recipes picked on the evaluation set (pick them on a held-out noun "
           "set: --sample random --sample-seed K); 40 exploratory files",), renderer="table"),
    Claim("oneshot", "One-shot LeNet-5 (no retraining) vs Torch-Pruning",
          "python benchmarks/oneshot.py --seed S --methods l2 obs l2+ls obs+ls tp_magnitude "
          "tp_taylor taylor l2+bias  (S = 0..4), then python benchmarks/oneshot.py --combine "
          "FILES", "oneshot_lenet5_seeds.json", "regenerated", "~5 × 4 CPU-min",
          ("pre-harness: its own argparse and JSON writer, seeds merged with --merge",
           "validation images taken after position 20,000 of the training set, not carved "
           "by the harness; the ls damping (1e-3 … 1e-1) chosen at the grid edge 1e-3",
           "the tuned ls rows were compared with untuned baselines (unequal grids); now "
           "every method is also reported at its documented defaults"),
          renderer="oneshot"),
    Claim("causal_lm", "Causal LMs (GPT-2, Llama-GQA) vs Torch-Pruning",
          "python benchmarks/causal_lm.py", "causal_lm.json", "to re-run", "~5 CPU-min",
          ("pre-harness JSON (single command, no provenance)",), legacy="causal_lm_idle.json",
          renderer="timed_table"),
    Claim("branch", "Inception branches and DenseNet connections",
          "python benchmarks/structures_branch.py", "structures_branch.json", "to re-run",
          "~60 CPU-min", ("the reference λ was picked on test accuracy; parts merged",)),
    Claim("features", "Input features, SE gates, low rank",
          "python benchmarks/structures_features.py", "structures_features.json",
          "to re-run", "~40 CPU-min", ("parts merged with --update",)),
    Claim("diagnose", "λ sweep and collapse",
          "python benchmarks/diagnose_sweep.py", "diagnose_sweep.json", "to re-run",
          "~20 CPU-min", ("pre-harness JSON (single command, no provenance)",),
          legacy="diagnose_sweep.json", renderer="diagnose"),
)


def by_name(name: str) -> Claim:
    for claim in CLAIMS:
        if claim.name == name:
            return claim
    raise KeyError(f"no claim named {name!r}; known: {[c.name for c in CLAIMS]}")
