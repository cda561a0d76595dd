"""Prunable structures: ``"channels"`` (coupled channel groups), ``"depth"`` (residual
blocks and layers), ``"branch"``, ``"connection"``, ``"input_feature"``, ``"se_gate"``,
``"lowrank"`` — each a :class:`Structure` (find / score / remove / prune / apply_plan).

Whole layers across structures (residual blocks and DenseNet layers, for a depth search):
:func:`find_units` / :func:`remove_units` / :func:`replay_units`.

>>> from prunekit.structures import find_blocks, score_blocks, remove_blocks, prune_depth
>>> from prunekit import structures
>>> structures.get("depth").prune(model, example_inputs, n_blocks=2)   # doctest: +SKIP

Only ``torch`` is imported here; Hugging Face models are handled by duck typing.
"""

from prunekit.structures.depth import (
    Block,
    DepthPlan,
    apply_depth_plan,
    find_blocks,
    merge_plans,
    remove_blocks,
)
from prunekit.structures.registry import Structure, available, get, register
from prunekit.structures.scoring import (
    available_scores,
    register_block_score,
    score_blocks,
    skipped,
)
from prunekit.structures.select import DepthResult, prune_depth
from prunekit.structures.units import Unit, find_units, remove_units, replay_units

DEPTH = register(Structure("depth", find=find_blocks, score=score_blocks, remove=remove_blocks,
                           prune=prune_depth, apply_plan=apply_depth_plan))

from prunekit.structures import input_feature  # noqa: E402, F401, I001  (registers "input_feature")
from prunekit.structures import lowrank  # noqa: E402, F401, I001  (registers "lowrank")
from prunekit.structures import se_gate  # noqa: E402, F401, I001  (registers "se_gate")
from prunekit.structures import branch  # noqa: E402, F401, I001  (registers "branch")
from prunekit.structures import connection  # noqa: E402, F401, I001  (registers "connection")
from prunekit.structures import channels  # noqa: E402, F401, I001  (registers "channels")

__all__ = [
    "DEPTH",
    "Block",
    "DepthPlan",
    "DepthResult",
    "Structure",
    "Unit",
    "apply_depth_plan",
    "available",
    "available_scores",
    "find_blocks",
    "find_units",
    "get",
    "merge_plans",
    "prune_depth",
    "register",
    "register_block_score",
    "remove_blocks",
    "remove_units",
    "replay_units",
    "score_blocks",
    "skipped",
]
