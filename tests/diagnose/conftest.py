"""One torch thread per test process: CI runs two workers on two cores, and spinning
OpenMP threads on an oversubscribed machine only burn CPU time."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
