"""The code blocks of docs/cli.md run as written (conventions: tests/docs_run.py)."""

import pytest
from docs_run import checked, skipped_commands

PAGE = "docs/cli.md"
pytestmark = pytest.mark.slow  # real timings (a speed target, CLI runs): seconds each


@pytest.mark.parametrize("block", checked(PAGE), ids=str)
def test_block(block, page_run):
    page_run.run(block)


@pytest.mark.parametrize(("command", "reason"), skipped_commands(PAGE),
                         ids=[c for c, _ in skipped_commands(PAGE)])
def test_command_not_run(command, reason):
    pytest.skip(reason)
