"""What users run: proximal group-lasso training (with budgets), unstructured masks and
magnitude pruning, schedules, lottery tickets, N:M sparsity, hybrid plans and recovery.
"""

from prunekit.methods.cost import CostModel
from prunekit.methods.loops import (
    ScheduledMagnitude,
    SoftMagnitude,
    gradual_prune,
    iterative_prune,
)
from prunekit.methods.lottery import LotteryResult, lottery_ticket
from prunekit.methods.magnitude import (
    export_torch_prune,
    import_torch_prune,
    lamp_scores,
    magnitude_masks,
    magnitude_prune,
)
from prunekit.methods.masks import (
    apply_masks,
    bake,
    clone_model,
    get_masks,
    prunable_weights,
    sparsity_of,
    strip_masks,
)
from prunekit.methods.nm import nm_mask, nm_prune, semi_structured_supported, to_semi_structured
from prunekit.methods.pipeline import CompressResult, compress, hybrid_prune
from prunekit.methods.proximal import Budget, ProximalGroupLasso, ZeroEvent
from prunekit.methods.recovery import (
    FitConfig,
    FitResult,
    distill_loss,
    evaluate,
    fit,
    quantize_int8,
)
from prunekit.methods.retrain import CosineLR, RetrainConfig, WeightAverage, prune_retrain
from prunekit.methods.schedules import Cubic, gradual, iterative, one_shot

__all__ = [
    "Budget", "CompressResult", "CosineLR", "CostModel", "Cubic", "FitConfig", "FitResult",
    "LotteryResult", "ProximalGroupLasso", "RetrainConfig", "ScheduledMagnitude",
    "SoftMagnitude", "WeightAverage", "ZeroEvent", "apply_masks", "bake", "clone_model",
    "compress", "distill_loss", "evaluate", "export_torch_prune", "fit", "get_masks", "gradual",
    "gradual_prune", "hybrid_prune", "import_torch_prune", "iterative", "iterative_prune",
    "lamp_scores", "lottery_ticket", "magnitude_masks", "magnitude_prune", "nm_mask", "nm_prune",
    "one_shot", "prunable_weights", "prune_retrain", "quantize_int8",
    "semi_structured_supported", "sparsity_of", "strip_masks", "to_semi_structured",
]
