"""Trace a model once and find its coupled channel groups.

>>> from prunekit.graph import build_groups
>>> gs = build_groups(model, torch.randn(1, 3, 64, 64))
>>> gs.groups[0].id, gs.groups[0].size, gs.skipped
"""

from prunekit.graph.build import build_groups
from prunekit.graph.oplog import OpLog, call_model, first_tensor, iter_tensors, record, run
from prunekit.graph.types import Group, GroupSet, Member

__all__ = ["Group", "GroupSet", "Member", "OpLog", "build_groups", "call_model",
           "first_tensor", "iter_tensors", "record", "run"]
