"""Hugging Face families, shard 1 of 3 (the checks: ``_hf_families_check.py``)."""

from _hf_families_check import make_tests

globals().update(make_tests(1, 3))
