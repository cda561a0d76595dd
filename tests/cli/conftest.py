"""A tiny model file for the CLI (``tiny.py:make``) and a fast recipe."""

import pytest

TINY = '''
from torch import nn

INPUT_SHAPE = (1, 8, 8)


def make():
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 64, 10),
    )


def not_a_model():
    return 3
'''

FAST = """
method: prune
target:
  ratio: 0.5
train:
  epochs: 2
  lr: 5.0e-3
finetune:
  epochs: 1
  batch_size: 128
measure:
  batch_size: 8
  repeats: 2
  energy: false
"""


@pytest.fixture
def tiny(tmp_path):
    (tmp_path / "tiny.py").write_text(TINY)
    (tmp_path / "fast.yaml").write_text(FAST)
    return tmp_path
