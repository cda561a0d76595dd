"""Prune without retraining: re-fit the layers after a cut to the dense model's outputs.

:func:`reconstruct` (layer by layer, :mod:`prunekit.reconstruct.layerwise`: damped least
squares or bias compensation) and the block form (:mod:`prunekit.reconstruct.block`: a
segment with its nonlinearity trained to the dense segment's output). ``prunekit.prune(...,
calibration=ctx, reconstruct=True)`` runs it after the cut. Sits above ``importance``
(Gram matrices, linear forms, activation streams) and ``surgery`` (the plan's cuts).
"""

from prunekit.reconstruct.layerwise import (
    LayerReport,
    ReconstructConfig,
    find_targets,
    kept,
    reconstruct,
)

__all__ = ["LayerReport", "ReconstructConfig", "find_targets", "kept", "reconstruct"]
