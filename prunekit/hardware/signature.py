"""Where a timing is valid: the target device, described once as a :class:`DeviceSpec`.

A latency measured on one machine says nothing about another, so every cached timing is
stored under a *device signature*: CPU model + intra-op threads + torch version on CPU,
CUDA device name + compute capability + CUDA/torch versions on GPU, and the dtype and
memory format in both cases. Change any of these and the cache key changes with it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import torch

from prunekit.measure.devices import validate_device
from prunekit.measure.machine import machine_info


@dataclass(frozen=True)
class DeviceSpec:
    """How the pruned model will run: device, CPU threads, dtype, memory format, batch.

    Attributes
    ----------
    device : str
        ``"cpu"`` or ``"cuda[:i]"``.
    threads : int or None
        CPU intra-op threads while timing (``None`` keeps torch's current setting).
    dtype : torch.dtype
        Weights and activations while timing (e.g. ``torch.float16`` on CUDA).
    channels_last : bool
        Time 4-d activations and conv weights in ``torch.channels_last`` format.
    """

    device: str = "cpu"
    threads: int | None = 2
    dtype: torch.dtype = torch.float32
    channels_last: bool = False

    def __post_init__(self) -> None:
        validate_device(self.device)  # cpu or cuda[:i] that exists here, else ValueError
        if self.threads is not None and (isinstance(self.threads, bool)
                                         or not isinstance(self.threads, int)
                                         or self.threads < 1):
            raise ValueError(f"threads must be a positive int or None, got {self.threads!r}")
        if not isinstance(self.dtype, torch.dtype) or not self.dtype.is_floating_point:
            raise ValueError(f"dtype must be a floating torch.dtype, got {self.dtype!r}")

    @property
    def torch_device(self) -> torch.device:
        return torch.device(self.device)


def device_signature(spec: DeviceSpec) -> dict[str, Any]:
    """JSON-ready description of the hardware and software a timing depends on."""
    sig: dict[str, Any] = {"torch": torch.__version__, "dtype": str(spec.dtype),
                           "channels_last": spec.channels_last}
    if spec.torch_device.type == "cuda":
        index = spec.torch_device.index or 0
        sig.update(kind="cuda", name=torch.cuda.get_device_name(index),
                   capability=list(torch.cuda.get_device_capability(index)),
                   cuda=torch.version.cuda)
    else:
        sig.update(kind="cpu", name=machine_info()["cpu"],
                   threads=spec.threads or torch.get_num_threads())
    return sig


def signature_key(signature: dict[str, Any]) -> str:
    """Short stable hash of a signature (the cache file name uses it)."""
    text = json.dumps(signature, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:16]
