"""Every result file the docs cite can be found by a reader (issue 21's clean-up cut
``benchmarks/results`` to the files a committed command wrote; a page must not keep
pointing at the rest).

A ``benchmarks/results/...`` path in README.md or docs/*.md (prose, tables and code
blocks alike; ``{a,b}`` and ``*`` expanded) either matches a file in the working tree, or
its sentence (its line, in a table) names a commit that holds every file it expands to,
as ``git cat-file -e <commit>:<path>`` confirms: "``benchmarks/results/x.json`` at commit
abc1234, pre-harness". A command that writes a file not committed yet says ``$R/x.json``
(as benchmarks/README.md does), not the full path.
"""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache

import pytest
from docs_run import ROOT, pages

CITATION = re.compile(r"benchmarks/results/[A-Za-z0-9_.{},*/-]*[A-Za-z0-9_}*/-]")
COMMIT = re.compile(r"\b[0-9a-f]{7,40}\b")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class Citation:
    """One cited path, where it stands, and the text that may vouch for it."""

    page: str
    line: int
    path: str
    sentence: str

    def __str__(self) -> str:
        return f"{self.page}:{self.line}: {self.path}"


def expand(pattern: str) -> list[str]:
    """``a_{x,y}.json`` → ``[a_x.json, a_y.json]`` (nested and repeated braces too)."""
    m = re.search(r"\{([^{}]*)\}", pattern)
    if m is None:
        return [pattern]
    head, tail = pattern[:m.start()], pattern[m.end():]
    return [p for alt in m.group(1).split(",") for p in expand(head + alt + tail)]


def _units(text: str) -> list[tuple[int, str]]:
    """(first line number, text) of each paragraph; a table row or a code line is its
    own unit, so a commit in one row cannot vouch for another."""
    units: list[tuple[int, str]] = []
    para: list[str] = []
    start = 0
    in_code = False
    for no, line in enumerate(text.splitlines(), 1):
        fence = line.lstrip().startswith("```")
        single = in_code or fence or line.lstrip().startswith("|")
        if single or not line.strip():
            if para:
                units.append((start, "\n".join(para)))
                para = []
            if single:
                units.append((no, line))
            in_code ^= fence
            continue
        if not para:
            start = no
        para.append(line)
    if para:
        units.append((start, "\n".join(para)))
    return units


def citations(page: str, text: str | None = None) -> list[Citation]:
    """Every ``benchmarks/results/...`` path of ``page`` with its sentence."""
    text = (ROOT / page).read_text() if text is None else text
    found = []
    for first, unit in _units(text):
        offset = 0
        for sentence in SENTENCE_END.split(unit):
            at = unit.index(sentence, offset)
            offset = at + len(sentence)
            for m in CITATION.finditer(sentence):
                line = first + unit.count("\n", 0, at + m.start())
                found.append(Citation(page, line, m.group(0), sentence))
    return found


def in_tree(pattern: str) -> bool:
    return any(ROOT.glob(pattern))


@cache
def _files_at(commit: str) -> frozenset[str] | None:
    """The result files of ``commit`` (None: not a commit this clone has)."""
    if subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=ROOT,
                      capture_output=True).returncode:
        return None
    out = subprocess.run(["git", "ls-tree", "-r", "--name-only", commit, "--",
                          "benchmarks/results/"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    return frozenset(out.split())


def at_commit(pattern: str, commit: str) -> bool:
    """``git cat-file -e commit:path`` for a plain path; a ``*`` pattern must match a file
    of that commit's tree."""
    if "*" not in pattern:
        return subprocess.run(["git", "cat-file", "-e", f"{commit}:{pattern}"], cwd=ROOT,
                              capture_output=True).returncode == 0
    files = _files_at(commit)
    return bool(files) and any(fnmatch.fnmatchcase(f, pattern) for f in files)


def vouched(cite: Citation) -> bool:
    """Some commit named in the citation's sentence holds every file it expands to."""
    missing = [p for p in expand(cite.path) if not in_tree(p)]
    return any(all(at_commit(p, c) for p in missing) for c in COMMIT.findall(cite.sentence))


ALL = [c for page in pages() for c in citations(page)]


def test_the_pages_cite_result_files():
    assert any(c.page == "README.md" for c in ALL) and len(ALL) > 20


def test_every_cited_result_file_exists_or_names_the_commit_that_has_it():
    missing = [c for c in ALL if not all(in_tree(p) for p in expand(c.path))]
    if not missing:
        return
    if not (ROOT / ".git").exists():
        pytest.skip(f"no .git: cannot check the commits named for {len(missing)} "
                    "result files that are no longer in the tree")
    if shutil.which("git") is None:
        pytest.skip("git is not installed: cannot check the commits the docs name")
    broken = [str(c) for c in missing if not vouched(c)]
    assert not broken, (
        "result files cited but neither in benchmarks/results nor at a commit named in the "
        "same sentence (write '`path` at commit <hash>, pre-harness'; a shallow clone needs "
        "its history fetched):\n" + "\n".join(broken))


# --- the checker itself ------------------------------------------------------------

def test_braces_expand_in_order():
    assert expand("r/a_{x,y}_{1,2}.json") == ["r/a_x_1.json", "r/a_x_2.json",
                                              "r/a_y_1.json", "r/a_y_2.json"]
    assert expand("r/plain.json") == ["r/plain.json"]


PAGE = """Intro. The run is in `benchmarks/results/gone.json` at commit abc1234, pre-harness.
Another sentence cites
`benchmarks/results/other_{a,b}.json` across a line break. Then deadbee here.

| row | `benchmarks/results/t.json` |
| row | abc1234 |

```
python x.py --out benchmarks/results/c*.json
```
"""


def test_a_citation_keeps_its_line_and_only_its_own_sentence():
    found = citations("page.md", PAGE)
    assert [(c.line, c.path) for c in found] == [
        (1, "benchmarks/results/gone.json"), (3, "benchmarks/results/other_{a,b}.json"),
        (5, "benchmarks/results/t.json"), (9, "benchmarks/results/c*.json")]
    first, second, row, code = found
    assert COMMIT.findall(first.sentence) == ["abc1234"]
    assert COMMIT.findall(second.sentence) == []   # deadbee is the next sentence's
    assert COMMIT.findall(row.sentence) == []      # abc1234 is the next row's


@pytest.mark.skipif(not (ROOT / ".git").exists() or shutil.which("git") is None,
                    reason="needs the git history")
def test_a_commit_vouches_only_for_files_it_has():
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                          capture_output=True, text=True, check=True).stdout.strip()
    real = Citation("p.md", 1, "benchmarks/results/*.json", f"at commit {head}")
    assert at_commit("benchmarks/results/*.json", head)
    assert vouched(real)
    fake = "benchmarks/results/never_written_by_anyone.json"
    assert not vouched(Citation("p.md", 1, fake, f"`{fake}` at commit {head}"))
    assert not vouched(Citation("p.md", 1, fake, f"`{fake}` at commit 0000000"))
    assert not vouched(Citation("p.md", 1, fake, f"`{fake}`, no commit"))
