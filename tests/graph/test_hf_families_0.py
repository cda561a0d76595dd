"""Hugging Face families, shard 0 of 3 (the checks: ``_hf_families_check.py``)."""

from _hf_families_check import (
    make_tests,
    test_at_least_30_families,  # noqa: F401
)

globals().update(make_tests(0, 3))
