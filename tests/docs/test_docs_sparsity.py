"""The code blocks of docs/sparsity.md run as written (conventions: tests/docs_run.py)."""

import pytest
from docs_run import checked

PAGE = "docs/sparsity.md"


@pytest.mark.parametrize("block", checked(PAGE), ids=str)
def test_block(block, page_run):
    page_run.run(block)
