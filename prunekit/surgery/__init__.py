"""Physically remove channels from a model, all or nothing, and replay plans.

>>> from prunekit.surgery import remove_channels
>>> plan = remove_channels(model, gs, {"conv1": [0, 5]}, example_inputs)
>>> plan.to_json()
"""

from prunekit.surgery.handlers import register as register_handler
from prunekit.surgery.hf_config import ConfigWarning
from prunekit.surgery.plan import Cut, Plan, PlanError
from prunekit.surgery.remove import (
    SurgeryError,
    ValueCheckError,
    apply_plan,
    forward_check,
    remove_channels,
)
from prunekit.surgery.state import Snapshot, transaction

__all__ = ["ConfigWarning", "Cut", "Plan", "PlanError", "Snapshot", "SurgeryError",
           "ValueCheckError", "apply_plan", "forward_check", "transaction",
           "register_handler", "remove_channels"]
