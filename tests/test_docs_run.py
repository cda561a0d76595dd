"""The docs-run machinery (``tests/docs_run.py``) and its tables stay honest.

The blocks themselves run in ``tests/docs/test_docs_<page>.py`` (one module per page, so
``pytest -n 2 --dist loadfile`` spreads the pages over the workers; one test id per
``page:line``). Here: every page has its module, every ``no-run`` block a reason, every
substitution rule and CLI entry still matches the text it was written for, and a failing
block fails loudly, naming itself.
"""

from __future__ import annotations

import ast
import warnings

import pytest
from docs_run import (
    CLI_EXTRA,
    CLI_SKIPPED,
    GPU_SUBSTITUTIONS,
    NO_RUN,
    ROOT,
    SUBSTITUTIONS,
    Block,
    PageRun,
    blocks,
    checked,
    cli_commands,
    pages,
)


def _module(page: str) -> str:
    name = "readme" if page == "README.md" else page.removeprefix("docs/").removesuffix(".md")
    return f"tests/docs/test_docs_{name}.py"


@pytest.mark.parametrize("page", pages())
def test_every_page_has_a_module_that_runs_it(page):
    path = ROOT / _module(page)
    assert path.exists(), f"add {_module(page)} (copy another page's module)"
    tree = ast.parse(path.read_text())
    consts = [n.value.value for n in tree.body if isinstance(n, ast.Assign)
              and n.targets[0].id == "PAGE"]
    assert consts == [page]


def test_every_python_block_runs_or_says_why_not():
    no_run = {b.id for p in pages() for b in blocks(p) if b.kind == "no-run"}
    assert no_run <= set(NO_RUN), f"no-run blocks without a reason: {no_run - set(NO_RUN)}"
    assert set(NO_RUN) <= no_run, f"NO_RUN names blocks that are gone: {set(NO_RUN) - no_run}"
    python = [b for p in pages() for b in blocks(p) if b.lang == "python"]
    assert python and all(b.kind in ("python", "no-run") for b in python)
    assert len(no_run) <= max(2, len(python) // 10), "no-run is for the odd illustration"


@pytest.mark.parametrize("rule", SUBSTITUTIONS + GPU_SUBSTITUTIONS, ids=lambda r: r.old)
def test_every_substitution_still_matches_its_pages(rule):
    assert rule.why and rule.old != rule.new
    for page in rule.pages:
        texts = ([b.text for b in checked(page)] if page.endswith(".md")
                 else [(ROOT / page).read_text()])  # a file a documented command reads
        assert any(rule.old in t for t in texts), f"{rule.old!r} no longer in {page}"


def test_every_cli_command_of_the_docs_is_run_or_skipped_with_a_reason():
    commands = {c for p in pages() for b in checked(p) if b.kind == "cli"
                for c in cli_commands(b.text)}
    assert commands, "docs/cli.md shows prunekit commands"
    assert commands == set(CLI_EXTRA) | set(CLI_SKIPPED), (
        f"unlisted: {commands - set(CLI_EXTRA) - set(CLI_SKIPPED)}; "
        f"stale: {set(CLI_EXTRA) | set(CLI_SKIPPED) - commands}")
    assert all(CLI_SKIPPED.values()) and not set(CLI_EXTRA) & set(CLI_SKIPPED)


PAGE = """# A page
```python
a = 1
```
text
```python no-run
illustration(...)
```
```bash
prunekit bench m.py:f \\
    --data digits   # a comment
echo not prunekit
```
```python
b = a + 1
```
```python
raise RuntimeError("boom")
```
```python
c = b
```
"""


def test_blocks_are_parsed_with_their_line_and_kind():
    found = blocks("page.md", PAGE)
    assert [(b.line, b.kind) for b in found] == [(2, "python"), (6, "no-run"), (9, "cli"),
                                                 (14, "python"), (17, "python"),
                                                 (20, "python")]
    assert found[0].id == "page.md:2" and found[0].text == "a = 1\n"
    assert cli_commands(found[2].text) == ["prunekit bench m.py:f --data digits"]
    with pytest.raises(ValueError, match="page.md:1: code fence never closed"):
        blocks("page.md", "```python\nx = 1\n")


def test_blocks_share_a_namespace_and_a_failure_names_itself(tmp_path):
    run = PageRun("page.md", tmp_path)
    first, _, _, second, boom, after = blocks("page.md", PAGE)
    run.run(first)
    run.run(second)
    assert run.namespace["b"] == 2
    with pytest.raises(RuntimeError, match="boom") as err:
        run.run(boom)
    assert any(entry.path == "page.md:17" for entry in err.traceback)  # the block's own id
    with pytest.raises(pytest.skip.Exception, match="builds on page.md:17"):
        run.run(after)


def test_a_block_that_uses_a_deprecated_api_fails(tmp_path):
    code = "import warnings\nwarnings.warn('old', DeprecationWarning, stacklevel=1)\n"
    with warnings.catch_warnings():
        with pytest.raises(AssertionError, match="page.md:1 uses a deprecated API: old"):
            PageRun("page.md", tmp_path).run(Block("page.md", 1, "python", "", code))
