"""Structured sparsity beyond networks, on the shared :mod:`prunekit.sparsity` core.

- :mod:`~prunekit.apps.sensing` — structured compressive sensing: measurement operators
  (:mod:`~prunekit.apps.operators`), plain/block/tree-sparse signals
  (:mod:`~prunekit.apps.signals`), recovery by (group / tree) lasso on the core and by
  model-based greedy methods (:mod:`~prunekit.apps.greedy`, :mod:`~prunekit.apps.models`),
  phase transitions (:mod:`~prunekit.apps.phase`), wavelet-tree image recovery
  (:mod:`~prunekit.apps.image`).
- :mod:`~prunekit.apps.state_space` / :mod:`~prunekit.apps.ssid` — identification of
  networked state-space models with locality as group sparsity;
  :mod:`~prunekit.apps.ssid_metrics` scores them.
- :mod:`~prunekit.apps.hierarchy` — hierarchical (tree group lasso) feature selection.

Everything here needs only numpy and scipy at import time (pywt, sklearn and
matplotlib are imported inside the functions that use them).
"""

from prunekit.apps.greedy import block_mmp, block_omp, cosamp, omp
from prunekit.apps.models import BlockModel, SparseModel, TreeModel
from prunekit.apps.operators import MeasurementOperator, make_operator
from prunekit.apps.phase import PhaseConfig, phase_transition
from prunekit.apps.sensing import RECOVERY, StructureInfo, lasso_recover, recover
from prunekit.apps.ssid import identify_structured, identify_unstructured
from prunekit.apps.state_space import StateSpace, n4sid, networked_system, simulate

__all__ = ["BlockModel", "MeasurementOperator", "PhaseConfig", "RECOVERY", "SparseModel",
           "StateSpace", "StructureInfo", "TreeModel", "block_mmp", "block_omp", "cosamp",
           "identify_structured", "identify_unstructured", "lasso_recover", "make_operator",
           "n4sid", "networked_system", "omp", "phase_transition", "recover", "simulate"]
