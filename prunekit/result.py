"""The one result type of :func:`prunekit.prune`, and the measurement a speed target adds.

Every way of calling ``prune`` — a channel ratio, a MAC target, structures, a *measured*
speedup target (width, or width or depth) — returns a :class:`PruneResult`. A speed target
adds what was measured on the device as a field, ``result.speedup``
(:class:`SpeedupResult`), ``None`` otherwise.

This module sits below :mod:`prunekit.api` and :mod:`prunekit.hardware` (both import it, it
imports neither), so the hardware layer does not reach up into the API to build results.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

    from prunekit.graph import GroupSet
    from prunekit.surgery import Plan


@dataclass
class SpeedupResult:
    """What a speed target measured on the device (``PruneResult.speedup``).

    ``measured_speedup = dense_ms / pruned_ms`` (the returned plan timed against the dense
    model in alternating rounds); ``met`` says whether it reached ``target_speedup``;
    ``mac_reduction`` is the theoretical (MAC) speedup of the same plan and ``rho`` their
    ratio. ``kind`` is what was applied: ``"width"`` (channels), ``"depth"`` (whole
    blocks / layers) or ``"depth+width"``. ``predicted_ms`` is the latency model's
    prediction for the returned plan made *before* it was measured (calibrated on earlier
    candidates, if any), relative to its own dense time ``model_dense_ms``; ``search``
    lists every measured candidate (with its prediction error; for width or depth, one
    summary per kind first); ``stages`` the seconds per stage; ``layer_timings`` how many
    layer timings were not in the cache (0 when warm); ``multiple`` the channel multiple
    kept widths sit on; ``device`` the device signature timed on.
    """

    target_speedup: float = 1.0
    measured_speedup: float = 1.0
    met: bool = False
    kind: str = "width"
    dense_ms: float = 0.0
    pruned_ms: float = 0.0
    mac_reduction: float = 1.0
    predicted_ms: float = 0.0
    model_dense_ms: float = 0.0
    multiple: int = 1
    device: dict[str, Any] = field(default_factory=dict)
    search: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)
    layer_timings: int = 0

    @property
    def rho(self) -> float:
        """Measured speedup ÷ MAC reduction (realized efficiency)."""
        return self.measured_speedup / max(self.mac_reduction, 1e-12)


# read through ``result.speedup`` now; kept readable on the result itself for a while
_MOVED = frozenset(f for f in SpeedupResult.__dataclass_fields__ if f != "mac_reduction"
                   ) | {"rho"}


@dataclass
class PruneResult:
    """What :func:`prunekit.prune` did.

    Attributes
    ----------
    model : nn.Module
        The pruned model (the same object that was passed in, cut in place).
    plan : Plan
        JSON-serializable record of the removed channels and cuts (save it with the
        weights: :func:`prunekit.save`).
    skipped : list of dict
        Barriers and groups left whole, ``{"op", "module", "reason", ...}``.
    macs_before, macs_after, params_before, params_after : int
        Counted with :mod:`prunekit.measure` on the example inputs (MACs are theory).
    groups : GroupSet or None
        The traced channel groups the plan refers to.
    notes : list of str
        What the call decided on the user's behalf: criteria fallbacks (e.g. no
        calibration loss, so a data-driven criterion used the example inputs only), a
        speed target's back-offs and misses, the width-or-depth choice.
    plans : list
        Every plan in the order applied (channel :class:`Plan` and structure plans such
        as a ``DepthPlan``); ``prunekit.save(model, path, plan=result.plans)`` keeps
        them all. For a channel-only prune this is ``[plan]``.
    structures : dict
        ``{structure name: its result}`` for the structures other than channels.
    speedup : SpeedupResult or None
        With ``target_speedup``: what was measured on the device (``measured_speedup``,
        ``met``, ``rho``, the search ...). ``None`` for ratio / MAC targets.
    """

    model: nn.Module
    plan: Plan
    skipped: list[dict[str, Any]]
    macs_before: int
    macs_after: int
    params_before: int
    params_after: int
    groups: GroupSet | None = field(default=None, repr=False)
    notes: list[str] = field(default_factory=list)
    plans: list[Any] = field(default_factory=list)
    structures: dict[str, Any] = field(default_factory=dict, repr=False)
    speedup: SpeedupResult | None = None

    @property
    def mac_reduction(self) -> float:
        """``macs_before / macs_after`` (theoretical speedup, not a measurement)."""
        return self.macs_before / max(self.macs_after, 1)

    def __getattr__(self, name: str) -> Any:
        """``result.measured_speedup`` etc. (the fields of the old ``SpeedupResult``
        subclass) still read, with a DeprecationWarning: use ``result.speedup.<name>``."""
        speedup = self.__dict__.get("speedup")
        if name not in _MOVED or speedup is None:
            hint = (f"; with target_speedup it is result.speedup.{name}" if name in _MOVED
                    else "")
            raise AttributeError(f"{type(self).__name__!r} object has no attribute "
                                 f"{name!r}{hint}")
        warnings.warn(f"result.{name} is deprecated: read result.speedup.{name}",
                      DeprecationWarning, stacklevel=2)
        return getattr(speedup, name)
