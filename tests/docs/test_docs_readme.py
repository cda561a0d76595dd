"""The code blocks of README.md run as written (conventions: tests/docs_run.py)."""

import pytest
from docs_run import checked

PAGE = "README.md"
pytestmark = pytest.mark.slow  # real timings (a speed target, CLI runs): seconds each


@pytest.mark.parametrize("block", checked(PAGE), ids=str)
def test_block(block, page_run):
    page_run.run(block)
