"""Realized speedup: hardware-aware widths, a measured latency model, latency targets.

>>> from prunekit.hardware import prune_to_speedup, probe_widths, DeviceSpec
>>> probe_widths(DeviceSpec("cpu", threads=2)).multiple        # cached per device
>>> res = prune_to_speedup(model, x, target_speedup=2.0, device="cpu", threads=2)
>>> res.speedup.measured_speedup, res.speedup.met, res.speedup.rho, res.notes
>>> replace_max_pool(model, x)   # deployment: index-free max pooling where measured faster

Timings are cached under ``$PRUNEKIT_CACHE`` (default ``~/.cache/prunekit``), keyed by
the device signature (CPU model + threads + torch version, or CUDA device + dtype).
"""

from prunekit.hardware.cache import DiskCache, cache_dir
from prunekit.hardware.latency_model import LatencyModel
from prunekit.hardware.layers import profile_layers, register_kind
from prunekit.hardware.pooling import StridedMaxPool2d, replace_max_pool
from prunekit.hardware.probe import WidthProfile, probe_widths
from prunekit.hardware.rounding import round_width, width_levels
from prunekit.hardware.signature import DeviceSpec, device_signature
from prunekit.hardware.target import SpeedupResult, prune_to_speedup

__all__ = ["DeviceSpec", "DiskCache", "LatencyModel", "SpeedupResult", "StridedMaxPool2d",
           "WidthProfile", "cache_dir", "device_signature", "probe_widths", "profile_layers",
           "prune_to_speedup", "register_kind", "replace_max_pool", "round_width",
           "width_levels"]
