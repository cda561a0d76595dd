"""Importance: registered, composable scoring of coupled channel groups.

A criterion is ``fn(model, group, ctx) -> Tensor`` of shape ``(group.size,)``; a higher
score means *keep*. Built in: ``l1``, ``l2``, ``bn_scale``, ``taylor``, ``obd`` /
``fisher``, ``activation_mean``, ``apoz``, ``random``, and the calibration-aware
``act_norm``, ``fluctuation`` and ``obs`` (output error at the consuming layer). Add your own with
``@register("name")``; mix with ``combine({"l2": 0.5, "taylor": 0.5})``; turn scores
into a removal plan with :func:`rank_channels`.

>>> from prunekit.importance import get, ImportanceContext, rank_channels
>>> ctx = ImportanceContext(example_inputs=x)
>>> scores = {g.id: get("l2")(model, g, ctx) for g in groups}
>>> to_remove = rank_channels(scores, global_ranking=True, ratio=0.5, round_to=8)
"""

from __future__ import annotations

# the criteria modules register themselves on import
from prunekit.importance import activation, baseline, gradient, magnitude, obs  # noqa: F401
from prunekit.importance.combine import combine
from prunekit.importance.context import ImportanceContext
from prunekit.importance.normalize import NORMALIZERS
from prunekit.importance.ranking import rank_channels
from prunekit.importance.registry import available, get, register, resolve
from prunekit.importance.scoring import score_groups
from prunekit.importance.types import GroupLike, ImportanceFn, MemberLike

__all__ = [
    "NORMALIZERS",
    "GroupLike",
    "ImportanceContext",
    "ImportanceFn",
    "MemberLike",
    "available",
    "combine",
    "get",
    "rank_channels",
    "register",
    "resolve",
    "score_groups",
]
