"""Smoke test of ``examples/lstm_text.py`` at a tiny setting (seconds)."""

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "lstm_text.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("example_lstm_text", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


def test_lstm_example_prunes_fine_tunes_and_reloads(example):
    torch.set_num_threads(1)
    cfg = example.Config(hidden=8, width=8, epochs=3, finetune_epochs=1, batch_size=128,
                         lr=5e-2, repeats=2)
    out = example.run(cfg, verbose=False)
    dense, tuned = out["dense"], out["finetuned"]
    assert (out["hidden_size"], out["input_size"]) == (4, 4)
    assert tuned["params"] < 0.4 * dense["params"] and tuned["macs"] < 0.4 * dense["macs"]
    assert dense["accuracy"] > 0.2  # 10 classes: learned something in three epochs
    assert out["skipped"] == [] and out["reload_identical"] is True


@pytest.mark.parametrize("field,value", [("hidden", 0), ("ratio", 1.0), ("lr", 0.0),
                                         ("finetune_epochs", -1)])
def test_example_config_rejects_bad_values(example, field, value):
    with pytest.raises(ValueError, match=field):
        example.Config(**{field: value})
