"""Resolve the command line's model, weights and dataset specs — or fail in one line.

Models: ``torchvision:NAME``, ``timm:NAME``, ``hf:CONFIG.json`` (a Hugging Face config file;
random weights), ``path/to/file.py:factory`` (calls ``factory()``; the file is *your* code
and is executed). Weights: ``.safetensors`` or a ``torch.save`` state dict read with
``torch.load(weights_only=True)`` — nothing is unpickled. Datasets: ``digits`` (embedded
scikit-learn digits), ``fashion-mnist`` or ``fashion-mnist:PATH`` (IDX files), and
``random:3x224x224`` (random inputs, no labels: measurement only).

Every failure raises :class:`SpecError` whose message says what is wrong and how to fix it.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import json
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn


class SpecError(ValueError):
    """A model, weights or dataset spec that cannot be used; the message says how to fix it."""


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=3)
    return f"did you mean {', '.join(close)}?" if close else f"{len(known)} names are available"


@dataclass
class ModelSpec:
    """A built model and how to feed it: ``kind`` is ``"image"`` or ``"tokens"``."""

    spec: str
    model: nn.Module
    kind: str = "image"
    default_shape: tuple[int, ...] = (3, 224, 224)
    vocab_size: int | None = None


def _torchvision(name: str) -> ModelSpec:
    import torchvision

    known = torchvision.models.list_models()
    if name not in known:
        raise SpecError(f"unknown torchvision model {name!r}: {_suggest(name, known)} "
                        f"(see torchvision.models.list_models())")
    shape = (3, 299, 299) if name == "inception_v3" else (3, 224, 224)
    return ModelSpec(f"torchvision:{name}", torchvision.models.get_model(name, weights=None),
                     default_shape=shape)


def _timm(name: str) -> ModelSpec:
    try:
        import timm
    except ImportError:
        raise SpecError("timm is not installed: pip install timm") from None
    known = timm.list_models()
    if name not in known:
        raise SpecError(f"unknown timm model {name!r}: {_suggest(name, known)} "
                        f"(see timm.list_models())")
    model = timm.create_model(name, pretrained=False)
    shape = tuple(model.pretrained_cfg.get("input_size", (3, 224, 224)))
    return ModelSpec(f"timm:{name}", model, default_shape=shape)


def _hf(path: str) -> ModelSpec:
    file = Path(path)
    try:
        config_dict = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise SpecError(f"cannot read Hugging Face config {path!r}: {err}; give the path of a "
                        f"config.json") from None
    try:
        from transformers import AutoConfig, AutoModel
    except ImportError:
        raise SpecError("transformers is not installed: pip install transformers") from None
    model_type = config_dict.pop("model_type", None) if isinstance(config_dict, dict) else None
    if model_type is None:
        raise SpecError(f"{path!r} has no 'model_type' field; it must be a Hugging Face "
                        f"config.json (e.g. saved with config.save_pretrained)")
    try:
        config = AutoConfig.for_model(model_type, **config_dict)
    except ValueError as err:
        raise SpecError(f"{path!r}: {err}") from None
    model = _run_user_code(f"building a model from {path!r}", AutoModel.from_config, config)
    return ModelSpec(f"hf:{path}", model, kind="tokens", default_shape=(32,),
                     vocab_size=int(getattr(config, "vocab_size", 1000)))


def _run_user_code(what: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Run the user's code; anything it raises — ``sys.exit`` included — is a SpecError
    naming ``what`` failed (bad input, exit 2), never a traceback or the file's own exit
    status. Ctrl-C still interrupts."""
    try:
        return fn(*args)
    except KeyboardInterrupt:
        raise
    except SystemExit as err:
        raise SpecError(f"{what} failed: it called sys.exit({err.code!r})") from None
    except BaseException as err:  # noqa: BLE001 - the user's code failing is a user error
        first = str(err).splitlines()[0][:200] if str(err) else ""
        raise SpecError(f"{what} failed: {type(err).__name__}"
                        + (f": {first}" if first else "")) from None


def _python_file(spec: str) -> ModelSpec:
    path, _, factory_name = spec.rpartition(":")
    file = Path(path)
    if not file.is_file():
        raise SpecError(f"model file {path!r} does not exist; use path/to/file.py:factory")
    digest = hashlib.sha1(str(file.resolve()).encode()).hexdigest()[:8]
    name = f"_prunekit_user_{file.stem}_{digest}"
    module_spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module  # dataclasses (and pickle) look their module up here
    try:
        _run_user_code(f"importing {path!r}", module_spec.loader.exec_module, module)
    except SpecError:
        sys.modules.pop(name, None)
        raise
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        known = [n for n, v in vars(module).items() if callable(v) and not n.startswith("_")]
        raise SpecError(f"{path!r} has no callable {factory_name!r}: "
                        f"{_suggest(factory_name, known)}")
    model = _run_user_code(f"calling {factory_name}() from {path!r}", factory)
    if not isinstance(model, nn.Module):
        raise SpecError(f"{spec}: factory returned {type(model).__name__}, "
                        f"not a torch.nn.Module")
    shape = tuple(getattr(module, "INPUT_SHAPE", (3, 224, 224)))
    return ModelSpec(spec, model, default_shape=shape)


MODEL_SOURCES: dict[str, Callable[[str], ModelSpec]] = {
    "torchvision": _torchvision, "timm": _timm, "hf": _hf,
}


def build_model(spec: str) -> ModelSpec:
    """Build the model named by ``spec`` (see the module docstring) with random weights."""
    source, sep, name = spec.partition(":")
    if source in MODEL_SOURCES and sep and name:
        return MODEL_SOURCES[source](name)
    if spec.rpartition(":")[0].endswith(".py"):
        return _python_file(spec)
    raise SpecError(f"cannot read model spec {spec!r}: use torchvision:NAME, timm:NAME, "
                    f"hf:CONFIG.json or path/to/file.py:factory")


def _state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ValueError(f"it holds a {type(state).__name__}, not a state dict")
    return state


def load_weights(model: nn.Module, path: str | Path) -> None:
    """Load a state dict into ``model`` (strict: every key must match)."""
    file = Path(path)
    if not file.is_file():
        raise SpecError(f"weights file {str(file)!r} does not exist")
    try:
        state = _state_dict(file)
    except Exception as err:  # corrupt file, pickle refused by weights_only, ...
        raise SpecError(f"cannot read weights {str(file)!r} ({type(err).__name__}: "
                        f"{str(err).splitlines()[0][:160]}); give a .safetensors file or a "
                        f"state dict saved with torch.save(model.state_dict(), path)") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise SpecError(f"weights {str(file)!r} do not fit the model: "
                        f"{str(err).splitlines()[1].strip()[:200]}") from None


@dataclass
class Dataset:
    """Tensors of a dataset spec; ``train``/``test`` are ``(X, y)`` or None (unlabeled)."""

    spec: str
    sample_shape: tuple[int, ...]
    train: tuple[torch.Tensor, torch.Tensor] | None = None
    test: tuple[torch.Tensor, torch.Tensor] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def labeled(self) -> bool:
        return self.train is not None

    def batch(self, size: int, seed: int = 0) -> torch.Tensor:
        """``size`` test inputs (random inputs of the sample shape when unlabeled); a
        SpecError before allocating when they would not fit in memory."""
        check_input_bytes(self.spec, (size, *self.sample_shape))
        if self.test is not None:
            x = self.test[0]
            reps = -(-size // len(x))
            return x.repeat(reps, *([1] * (x.dim() - 1)))[:size].clone()
        generator = torch.Generator().manual_seed(seed)
        return torch.randn(size, *self.sample_shape, generator=generator)


def available_memory() -> int | None:
    """Bytes of memory this machine can still give (``MemAvailable``), None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_input_bytes(what: str, shape: tuple[int, ...], itemsize: int = 4) -> None:
    """SpecError when a tensor of ``shape`` would take more than half the available memory
    (checked *before* allocating: torch would fail with a raw allocator error, or the
    machine would swap)."""
    need = math.prod(shape) * itemsize
    free = available_memory()
    if free is not None and need > free // 2:
        dims = "x".join(map(str, shape))
        raise SpecError(f"{what}: inputs of shape {dims} need {need / 2**30:.3g} GiB, more "
                        f"than half of the {free / 2**30:.3g} GiB of memory available; use a "
                        f"smaller shape or batch size")


def _digits(arg: str) -> Dataset:
    from prunekit.data import load_digits_tensors

    x_tr, y_tr, x_te, y_te = load_digits_tensors()
    return Dataset("digits", tuple(x_tr.shape[1:]), (x_tr, y_tr), (x_te, y_te))


def _fashion(arg: str) -> Dataset:
    from prunekit.data import load_fashion_mnist

    if arg and not Path(arg).exists():
        raise SpecError(f"Fashion-MNIST not found: {arg!r} does not exist; give the folder "
                        f"holding the IDX files, or plain fashion-mnist to search the defaults")
    try:
        x_tr, y_tr, x_te, y_te = load_fashion_mnist(arg or None)
    except FileNotFoundError as err:
        raise SpecError(f"Fashion-MNIST not found: {str(err).splitlines()[0]}") from None
    name = f"fashion-mnist:{arg}" if arg else "fashion-mnist"
    return Dataset(name, tuple(x_tr.shape[1:]), (x_tr, y_tr), (x_te, y_te))


def parse_shape(text: str) -> tuple[int, ...]:
    """``"3x224x224" -> (3, 224, 224)``; SpecError for anything else."""
    try:
        shape = tuple(int(part) for part in text.lower().split("x"))
    except ValueError:
        shape = ()
    if not shape or any(d < 1 for d in shape):
        raise SpecError(f"bad shape {text!r}: write dimensions without the batch, e.g. 3x224x224")
    return shape


def _random(arg: str) -> Dataset:
    data = Dataset(f"random:{arg}", parse_shape(arg))
    check_input_bytes(data.spec, (1, *data.sample_shape))  # one sample must fit
    return data


DATASETS: dict[str, Callable[[str], Dataset]] = {
    "digits": _digits, "fashion-mnist": _fashion, "random": _random,
}


def load_dataset(spec: str) -> Dataset:
    """Tensors for ``digits``, ``fashion-mnist[:PATH]`` or ``random:SHAPE``."""
    name, _, arg = spec.partition(":")
    if name not in DATASETS:
        raise SpecError(f"unknown dataset {spec!r}: use digits, fashion-mnist[:PATH] or "
                        f"random:3x224x224 ({_suggest(name, list(DATASETS))})")
    if name == "random" and not arg:
        raise SpecError("random data needs a shape, e.g. random:3x224x224")
    return DATASETS[name](arg)


def example_inputs(model: ModelSpec, data: Dataset, batch: int, seed: int = 0) -> Any:
    """Inputs for ``model``: image batches from ``data``; token ids for Hugging Face models."""
    if model.kind == "tokens":
        length = data.sample_shape[-1] if data.spec.startswith("random:") else 32
        check_input_bytes(data.spec, (batch, length), itemsize=8)
        generator = torch.Generator().manual_seed(seed)
        ids = torch.randint(0, model.vocab_size or 1000, (batch, length), generator=generator)
        return {"input_ids": ids}
    return data.batch(batch, seed)


def check_forward(model: ModelSpec, inputs: Any) -> None:
    """Run the model once; a failure (wrong input shape …) becomes a one-line SpecError."""
    from prunekit.inputs import call_model, inference_mode_of

    try:
        with inference_mode_of(model.model):
            call_model(model.model, inputs)
    except KeyboardInterrupt:
        raise
    except BaseException as err:  # noqa: BLE001 - model and data do not fit (or it exits)
        shape = tuple(inputs.shape) if isinstance(inputs, torch.Tensor) else "dict"
        first = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        raise SpecError(f"{model.spec} does not run on inputs of shape {shape}: {first}; "
                        f"choose a dataset that fits (e.g. --data random:3x224x224)") from None
