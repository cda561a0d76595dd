"""One check for every device string a user hands prunekit: ``validate_device``.

Measurement and hardware-aware pruning run on ``"cpu"`` or ``"cuda[:i]"``. Anything else
(a typo such as ``"tpu9"``, ``"cuda"`` on a machine without a GPU, ``"cuda:3"`` on a
machine with two) is a :class:`ValueError` naming the device and what would work, raised
before any model is moved or timed — instead of torch's raw ``RuntimeError``.
"""

from __future__ import annotations

import torch

DEVICE_TYPES = ("cpu", "cuda")


def parse_device(device: str | torch.device) -> torch.device:
    """The :class:`torch.device` that ``device`` names; ValueError unless cpu or cuda[:i].

    Syntax only: does not look for a GPU (a recipe may name one for another machine).
    """
    if isinstance(device, torch.device):
        resolved = device
    elif isinstance(device, str):
        try:
            resolved = torch.device(device)
        except RuntimeError:
            raise ValueError(f"unknown device {device!r}: use 'cpu' or 'cuda' "
                             f"(or 'cuda:INDEX')") from None
    else:
        raise TypeError(f"device must be a string such as 'cpu' or 'cuda', "
                        f"got {type(device).__name__}")
    if resolved.type not in DEVICE_TYPES:
        raise ValueError(f"device {str(device)!r} is not supported: prunekit measures on "
                         f"'cpu' or 'cuda[:INDEX]'")
    return resolved


def validate_device(device: str | torch.device) -> torch.device:
    """:func:`parse_device`, then check the device exists on this machine.

    ValueError for ``"cuda"`` without a usable GPU (``torch.cuda.is_available()`` is
    False) and for a CUDA index beyond ``torch.cuda.device_count()``.
    """
    resolved = parse_device(device)
    if resolved.type != "cuda":
        return resolved
    if not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} but CUDA is not available on this machine "
                         f"(no GPU or no driver): use device 'cpu'")
    count = torch.cuda.device_count()
    if resolved.index is not None and resolved.index >= count:
        raise ValueError(f"device {str(device)!r} but this machine has {count} CUDA "
                         f"device(s): use 'cuda:0'" + (f" … 'cuda:{count - 1}'" if count > 1
                                                        else ""))
    return resolved
