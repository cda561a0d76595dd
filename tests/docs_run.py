"""Run the code blocks of README.md and docs/*.md (used by ``tests/docs/test_docs_*.py``).

Conventions (what a page author needs to know):

* A ```` ```python ```` block runs. The blocks of one page run **in order, in one
  namespace** (a later block uses what an earlier one defined), in a temporary directory
  of the page's own (files a block writes land there), with ``torch.manual_seed(0)``, one
  torch thread between blocks, ``$PRUNEKIT_CACHE`` in that directory and matplotlib's Agg
  backend. A ``DeprecationWarning`` raised by a block's own line fails it: the docs use
  the current API. If a block fails, the later blocks of its page are skipped (they build
  on it) and the failure names the block.
* Speed targets run for real (layer and whole-model timings, the measured search), except
  the width probe: the cache is seeded with a probe result (multiple 8, from an injected
  staircase timer, :func:`seed_width_probe`). The real probe times two ops at 65 widths,
  about a minute per machine before it is cached; ``tests/hardware`` tests it.
* A block that only illustrates (a loop body left to the reader) is fenced
  ```` ```python no-run ```` and :data:`NO_RUN` must say why, keyed by ``page:line`` (the
  line of the fence). An unexplained ``no-run`` fails ``tests/test_docs_run.py``; so does
  an explanation whose block is gone.
* Where a page must show a large model, :data:`SUBSTITUTIONS` rewrites the text before it
  runs (and a recipe file a documented command reads: the command reads a rewritten copy).
  Every rule names its pages or files; a rule that matches nothing there fails
  ``tests/test_docs_run.py``, so the table cannot rot.
* ```` ```bash ```` lines that start with ``prunekit `` are CLI commands (``\\``
  continuations joined, ``#`` comments dropped); they run in-process (typer's runner,
  exit status 0 expected) with the extra options :data:`CLI_EXTRA` gives them, unless
  :data:`CLI_SKIPPED` says why not. Paths that name files of this repository
  (``examples/recipes/…``, ``prunekit/demo.py:…``) are resolved against its root; the
  placeholder run directory ``runs/20261123-201500`` becomes the run an earlier ``prunekit
  prune`` of the same model made on the page (else the page's latest pruning run).
* A bare ```` ``` ```` block whose first line starts with ``$ prunekit`` is a transcript:
  each command runs and the lines after it must appear in its output (exit status 2 for
  ``error:`` lines). Files a transcript reads are in :data:`CLI_FILES`.
* ```` ```yaml ```` blocks on pages about recipes are validated as recipes
  (:func:`prunekit.recipes.schema.parse_recipe`). Other blocks (bash benchmark command
  lines that take minutes to hours, formulas, trees) are not run.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```(\S*)(.*)$")
RUN_PLACEHOLDER = "runs/20261123-201500"


@dataclass(frozen=True)
class Rule:
    """Replace ``old`` by ``new`` in the blocks of ``pages`` before they run."""

    pages: tuple[str, ...]
    old: str
    new: str
    why: str


def _no_gpu() -> bool:
    import torch

    return not torch.cuda.is_available()


SUBSTITUTIONS: list[Rule] = [
    Rule(("README.md",), "resnet50", "resnet18",
         "the quickstart shows ResNet-50; ResNet-18 exercises the same calls in a fraction "
         "of the time"),
    Rule(("README.md", "docs/speedup.md"), "224, 224", "64, 64",
         "at 224×224 every forward pass a speed target times costs 12x the MACs"),
    Rule(("README.md", "docs/speedup.md", "docs/architecture.md", "docs/measure.md"),
         "threads=2", "threads=1",
         "the suite runs two workers on two cores: a 2-thread timing beside the other "
         "worker spins (OpenMP busy-waits; measured 10-30x the CPU on a loaded box)"),
    # recipe files a documented command reads: a substituted copy is read instead
    Rule(("examples/recipes/resnet18_one_shot.yaml", "examples/recipes/digits_proximal.yaml"),
         "threads: 2", "threads: 1", "as threads=2 above, for the recipes' measure step"),
]
# applied only when no CUDA device is present (the text names the GPU case on purpose)
GPU_SUBSTITUTIONS: list[Rule] = [
    Rule(("README.md",), 'device="cuda"', 'device="cpu", threads=1',
         "the width-or-depth example is about a GPU; without one it is timed on the CPU, "
         "on one thread as the threads=2 rule explains"),
]

NO_RUN: dict[str, str] = {}

TINY_IMAGES = ["--data", "random:3x32x32"]  # ResNet-18 on 32×32 random inputs
CLI_EXTRA: dict[str, list[str]] = {
    "prunekit prune torchvision:resnet18 --recipe examples/recipes/resnet18_one_shot.yaml":
        [*TINY_IMAGES, "--no-progress"],
    "prunekit prune prunekit/demo.py:digits_cnn --data digits "
    "--recipe examples/recipes/digits_proximal.yaml": ["--no-progress"],
    f"prunekit bench torchvision:resnet18 --pruned {RUN_PLACEHOLDER}":
        [*TINY_IMAGES, "--repeats", "2", "--batch-size", "2", "--threads", "1"],
    f"prunekit bench torchvision:resnet18 --pruned {RUN_PLACEHOLDER} --fast-pool":
        [*TINY_IMAGES, "--repeats", "2", "--batch-size", "2", "--threads", "1"],
    f"prunekit report {RUN_PLACEHOLDER}": [],
}
CLI_SKIPPED: dict[str, str] = {
    "prunekit demo": "trains, prunes, fine-tunes and times for a minute or more; "
                     "tests/cli/test_demo.py runs it with tiny settings",
}
CLI_FILES: dict[str, str] = {
    "typo.yaml": "method: prune\nfinetune: {epoch: 2}\n",
    "big.yaml": "measure: {repeats: 1e23}\n",
    "model.py": "from torch import nn\n\n\ndef make():\n    return nn.Sequential(nn.Flatten(), "
                "nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))\n",
    "exits.py": "import sys\n\nsys.exit(3)\n",
}
RECIPE_PAGES = ("docs/cli.md",)


@dataclass(frozen=True)
class Block:
    """One fenced code block: ``page:line`` names it (``line`` = the opening fence)."""

    page: str
    line: int
    lang: str
    options: str
    text: str

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def kind(self) -> str | None:
        """How the block is checked: python, no-run, cli, transcript, recipe, or None."""
        if self.lang == "python":
            return "no-run" if "no-run" in self.options.split() else "python"
        if self.lang == "bash" and cli_commands(self.text):
            return "cli"
        if self.lang == "" and self.text.lstrip().startswith("$ prunekit"):
            return "transcript"
        if self.lang == "yaml" and self.page in RECIPE_PAGES:
            return "recipe"
        return None

    def __str__(self) -> str:
        return self.id


def pages() -> list[str]:
    """README.md and every docs/*.md, as paths relative to the repository root."""
    return ["README.md", *sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md"))]


def blocks(page: str, text: str | None = None) -> list[Block]:
    """Every fenced block of ``page`` (or of ``text``, named ``page``) in order; an
    unterminated fence is a ValueError."""
    lines = ((ROOT / page).read_text() if text is None else text).splitlines()
    out, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == "```"), None)
        if end is None:
            raise ValueError(f"{page}:{i + 1}: code fence never closed")
        out.append(Block(page, i + 1, m.group(1), m.group(2).strip(),
                         "\n".join(lines[i + 1:end]) + "\n"))
        i = end + 1
    return out


def checked(page: str) -> list[Block]:
    """The blocks of ``page`` that run or are validated, in order."""
    return [b for b in blocks(page) if b.kind not in (None, "no-run")]


def skipped_commands(page: str) -> list[tuple[str, str]]:
    """``(page:line command, reason)`` of the CLI commands of ``page`` that do not run."""
    return [(f"{b.id} {c}", CLI_SKIPPED[c]) for b in checked(page) if b.kind == "cli"
            for c in cli_commands(b.text) if c in CLI_SKIPPED]


def rules_for(page: str) -> list[Rule]:
    gpu = GPU_SUBSTITUTIONS if _no_gpu() else []
    return [r for r in SUBSTITUTIONS + gpu if page in r.pages]


def substituted(block: Block) -> str:
    text = block.text
    for rule in rules_for(block.page):
        text = text.replace(rule.old, rule.new)
    return text


def cli_commands(text: str) -> list[str]:
    """``prunekit …`` command lines of a bash block: continuations joined, comments cut."""
    joined = re.sub(r"\\\n\s*", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.split(" #")[0].strip()
        if line.startswith("prunekit "):
            out.append(" ".join(line.split()))
    return out


def seed_width_probe(threads: tuple[int, ...] = (1, 2)) -> None:
    """Store a width-probe result for the CPU at these thread counts in ``$PRUNEKIT_CACHE``
    (a staircase with steps of 8 channels, so the probe picks multiple 8 without timing)."""
    from prunekit.hardware import DeviceSpec, probe_widths

    for n in threads:
        probe_widths(DeviceSpec("cpu", threads=n), timer=lambda op, w: float(-(-w // 8)))


@dataclass
class PageRun:
    """The shared state of one page: namespace, directory, latest CLI run, first failure."""

    page: str
    workdir: Path
    namespace: dict[str, Any] = field(default_factory=dict)
    failed: str | None = None
    runs: dict[str | None, Path] = field(default_factory=dict)  # model spec -> its run

    def run(self, block: Block) -> None:
        import pytest

        if self.failed:
            pytest.skip(f"builds on {self.failed}, which failed")
        try:
            with self._environment():
                {"python": self._python, "cli": self._cli, "transcript": self._transcript,
                 "recipe": self._recipe}[block.kind](block)
        except BaseException:  # a skip too: whatever it was, later blocks cannot build on it
            self.failed = block.id
            raise

    @contextlib.contextmanager
    def _environment(self) -> Iterator[None]:
        import torch

        old_cwd, old_threads = os.getcwd(), torch.get_num_threads()
        old_env = {k: os.environ.get(k) for k in ("PRUNEKIT_CACHE", "MPLBACKEND")}
        os.environ.update(PRUNEKIT_CACHE=str(self.workdir / ".cache"), MPLBACKEND="Agg")
        if not (self.workdir / ".cache").exists():
            seed_width_probe()
        os.chdir(self.workdir)
        torch.set_num_threads(1)
        try:
            yield
        finally:
            os.chdir(old_cwd)
            torch.set_num_threads(old_threads)
            for k, v in old_env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def _python(self, block: Block) -> None:
        import torch

        if not self.namespace:
            torch.manual_seed(0)
            self.namespace["__name__"] = f"docs:{self.page}"
        code = compile(substituted(block), block.id, "exec")
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always", DeprecationWarning)
            exec(code, self.namespace)  # noqa: S102 (the repository's own docs)
        ours = [w for w in seen if w.filename == block.id
                and issubclass(w.category, DeprecationWarning)]
        assert not ours, f"{block.id} uses a deprecated API: {ours[0].message}"

    def _cli(self, block: Block) -> None:
        """Every command of the block in order (those in CLI_SKIPPED are reported as
        skipped tests of their own: :func:`skipped_commands`)."""
        for command in cli_commands(block.text):
            if command in CLI_SKIPPED:
                continue
            assert command in CLI_EXTRA, (
                f"{block.id}: new CLI command {command!r}: give it tiny settings in "
                "docs_run.CLI_EXTRA or a reason in docs_run.CLI_SKIPPED")
            result = self._invoke(command, CLI_EXTRA[command])
            assert result.exit_code == 0, f"{block.id}: {command}\n{result.output}"

    def _transcript(self, block: Block) -> None:
        for name, text in CLI_FILES.items():
            (self.workdir / name).write_text(text)
        steps = re.split(r"^\$ ", block.text, flags=re.M)[1:]
        for step in steps:
            command, *expected = step.strip().splitlines()
            result = self._invoke(command, [])
            want = 2 if any(line.startswith("error:") for line in expected) else 0
            assert result.exit_code == want, f"{block.id}: {command}\n{result.output}"
            output = " ".join(result.output.split())
            for line in expected:
                assert " ".join(line.split()) in output, (
                    f"{block.id}: {command!r} printed\n{result.output}\nnot\n{line}")

    def _invoke(self, command: str, extra: list[str]) -> Any:
        from typer.testing import CliRunner

        from prunekit.cli import app

        words = shlex.split(command, comments=True)[1:]  # `# ...` is a shell comment
        spec = words[1] if len(words) > 1 and words[0] in ("prune", "bench") else None
        args = [self._resolve(a, spec) for a in words] + extra
        runs = self.workdir / "runs"
        before = set(runs.iterdir()) if runs.is_dir() else set()
        result = CliRunner().invoke(app, args, catch_exceptions=False)
        new = sorted(set(runs.iterdir()) - before) if runs.is_dir() else []
        if words[0] == "prune" and new:  # the run a later `--pruned runs/…` of it means
            self.runs[spec] = self.runs[None] = new[-1]
        return result

    def _resolve(self, arg: str, spec: str | None) -> str:
        if arg == RUN_PLACEHOLDER:  # the page's run of this model, else its latest prune
            run = self.runs.get(spec) or self.runs.get(None)
            assert run is not None, f"{arg}: no earlier command of the page pruned a model"
            return str(run)
        path = arg.split(":")[0]
        if "/" not in path or not (ROOT / path).exists():
            return arg
        rules = rules_for(path)
        if not rules:
            return str(ROOT / arg)
        text = (ROOT / path).read_text()
        for rule in rules:
            text = text.replace(rule.old, rule.new)
        copy = self.workdir / "substituted" / path
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(text)
        return str(copy) + arg[len(path):]

    def _recipe(self, block: Block) -> None:
        import yaml

        from prunekit.recipes.schema import parse_recipe

        data = yaml.safe_load(block.text)
        assert isinstance(data, dict), f"{block.id}: not a YAML mapping"
        parse_recipe(data)  # RecipeError names the bad field
