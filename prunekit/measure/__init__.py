"""Honest measurement: parameters, MACs, bytes, latency, memory, energy and ``compare``.

Every speed number here is measured on the machine that runs it; MAC ratios are theory
and are labeled as such (see docs/measure.md).
"""

from prunekit.measure.counting import (
    MacProfile,
    count_macs,
    count_params,
    mac_profile,
    macs_by_module,
    params_by_module,
    register_mac_formula,
)

__all__ = [
    "MacProfile",
    "count_macs",
    "count_params",
    "mac_profile",
    "macs_by_module",
    "params_by_module",
    "register_mac_formula",
]
