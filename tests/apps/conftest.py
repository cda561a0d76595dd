"""Shared fixtures: one BLAS thread (the CI machine has 2 cores shared by many jobs)."""

import pytest
from threadpoolctl import threadpool_limits


@pytest.fixture(autouse=True, scope="session")
def _one_blas_thread():
    with threadpool_limits(limits=1):
        yield
