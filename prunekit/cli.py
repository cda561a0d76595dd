"""The ``prunekit`` command: a thin typer layer over :mod:`prunekit.recipes` and friends.

``prunekit demo`` · ``prunekit prune MODEL --recipe R.yaml`` · ``prunekit bench MODEL``
· ``prunekit report RUN_DIR``. Each run is saved atomically under ``runs/<timestamp>/``.

Exit status: **0** done, every check passed (or failed checks were allowed with
``--allow-collapse``); **2** bad input — unknown model, unreadable weights, recipe typo or
out-of-range value, missing dataset, bad device, a model file that raises or exits, a
bad option: one line ``error: <what is wrong and how to fix it>`` on stderr, no traceback,
nothing under ``runs/``; **3** a collapse/quality check failed (:mod:`prunekit.measure.guards`:
chance accuracy, constant outputs, an all-zero layer) — a dense baseline that fails stops
before pruning (nothing written), a pruned model that fails is saved with its report
marked failed; **1** an unexpected crash (a traceback: a bug to report).
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

EXIT_BAD_INPUT = 2
EXIT_CHECKS_FAILED = 3


def _click_types(name: str) -> tuple[type, ...]:
    """``name`` from typer (≥ 0.16 vendors click: ``TyperException``, ``Abort``) and from
    click where installed, so either generation of typer is handled."""
    found = [getattr(typer, {"ClickException": "TyperException"}.get(name, name), None)]
    with contextlib.suppress(ImportError):
        import click

        found.append(getattr(click, name, None))
    return tuple(t for t in found if isinstance(t, type))


class _OneLineErrors(TyperGroup):
    """Usage errors (a bad option value, a missing argument) as one ``error:`` line and
    exit 2, like every other bad input, instead of click's multi-line panel."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except _click_types("ClickException") as err:
            if type(err).__name__ == "NoArgsIsHelpError":  # bare `prunekit`: the help
                err.show()
                sys.exit(err.exit_code)
            ctx = getattr(err, "ctx", None)
            where = f" (see {ctx.command_path} --help)" if ctx is not None else ""
            err_console.print(f"[bold red]error:[/] {escape(err.format_message() + where)}",
                              soft_wrap=True, markup=True)
            sys.exit(err.exit_code)
        except _click_types("Abort"):
            err_console.print("aborted")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  cls=_OneLineErrors, help="Structured pruning that is measured to be faster.")
err_console = Console(stderr=True, highlight=False)

RunsDir = Annotated[Path, typer.Option("--runs-dir", help="where runs/<timestamp>/ goes")]
JsonOut = Annotated[bool, typer.Option("--json", help="print one JSON object on stdout")]
NoProgress = Annotated[bool, typer.Option("--no-progress", help="hide progress bars")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars and no log "
                                                           "lines: only the results")]
Threads = Annotated[int, typer.Option(help="CPU threads while timing", min=1, max=1024)]
AllowCollapse = Annotated[bool, typer.Option(
    "--allow-collapse", help="record failed collapse checks (chance accuracy, constant "
                             "outputs, all-zero layers) instead of failing with exit 3")]


def _one_line(err: BaseException) -> str:
    return str(err).splitlines()[0] if str(err).strip() else type(err).__name__


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Input errors → ``error: …`` on stderr, exit 2; failed quality checks → exit 3."""
    from prunekit.measure.guards import QualityError
    from prunekit.recipes.schema import RecipeError
    from prunekit.recipes.specs import SpecError

    try:
        yield
    except QualityError as err:
        err_console.print(f"[bold red]failed:[/] {escape(_one_line(err))}", soft_wrap=True,
                          markup=True)
        raise typer.Exit(EXIT_CHECKS_FAILED) from None
    except (SpecError, RecipeError, ValueError, FileNotFoundError, TypeError) as err:
        err_console.print(f"[bold red]error:[/] {escape(_one_line(err))}", soft_wrap=True,
                          markup=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None


def _print_checks(checks: dict[str, Any] | None, console: Console) -> None:
    """The run's check status: a red line per failure (yellow when allowed)."""
    if not checks:
        return
    if checks["status"] == "passed":
        console.print("[green]checks passed[/]: no collapse (accuracy above chance, outputs "
                      "vary, no all-zero layer)")
        return
    color, word = ("yellow", "allowed") if checks["status"] == "allowed" else ("red", "FAILED")
    for failure in checks["failures"]:
        err_console.print(f"[bold {color}]{word}:[/] {escape(failure)}", soft_wrap=True)


def _exit_on_failed_checks(checks: dict[str, Any] | None) -> None:
    if checks and not checks["ok"]:
        err_console.print(f"[bold red]the run failed its collapse checks (exit "
                          f"{EXIT_CHECKS_FAILED}); --allow-collapse records them instead[/]")
        raise typer.Exit(EXIT_CHECKS_FAILED)


@contextlib.contextmanager
def progress_shown(on: bool) -> Iterator[None]:
    """Progress bars on stderr for every long step inside (prunekit.progress.showing), when
    ``on`` and stderr is a terminal: piped or captured, stderr keeps to log lines and the
    one-line ``error:`` contract."""
    from prunekit.progress import showing

    with showing(on and err_console.is_terminal):
        yield


def _log(enabled: bool) -> Any:
    return (lambda message: err_console.print(f"[dim]›[/] {message}")) if enabled else (
        lambda message: None)


def _summary(result: Any, files: dict[str, Path], run_dir: Path) -> dict[str, Any]:
    c = result.comparison
    return {"run": str(run_dir), **c.ratios(), "params_dense": c.params_dense,
            "params_pruned": c.params_pruned, "macs_dense": c.macs_dense,
            "macs_pruned": c.macs_pruned, "latency_ms_dense": c.latency_dense.median_ms,
            "latency_ms_pruned": c.latency_pruned.median_ms, "energy_source": c.energy_source,
            "ok": result.ok, "checks": result.checks.status, "failures": result.failures,
            "measured_speedup_interval": c.speedup_interval, "speedup_verdict": c.speedup_verdict,
            "timing_stable": c.timing_stable,
            "files": {k: str(run_dir / Path(v).name) for k, v in files.items()}}


def _finish(job: Any, result: Any, runs_dir: Path, as_json: bool) -> None:
    """Save the run atomically, print the tables (or the JSON summary) and the checks;
    exit 3 when the pruned model failed them (the run is saved, marked failed)."""
    from prunekit.progress import stage
    from prunekit.recipes.runner import save_job
    from prunekit.recipes.runs import new_run
    from prunekit.report import print_report

    with new_run(runs_dir) as run, stage("saving the model, plots and report.html"):
        files = save_job(result, job, run.path)
    summary = _summary(result, files, run.final)
    checks = result.report.get("checks")
    if as_json:
        typer.echo(json.dumps(summary, indent=1, default=str))
    else:
        print_report(result.report, Console())
        Console().print(f"saved [bold]{run.final}[/] (open {run.final / 'report.html'})")
    _print_checks(checks, err_console if as_json else Console())
    _exit_on_failed_checks(checks)


@app.command()
def demo(
    epochs: Annotated[int, typer.Option(help="dense training epochs", min=1, max=1000)] = 6,
    target_speedup: Annotated[float, typer.Option(
        help="measured speedup to reach on this machine (> 1)")] = 2.0,
    finetune_epochs: Annotated[int, typer.Option(help="fine-tuning epochs", min=0,
                                                 max=1000)] = 6,
    batch_size: Annotated[int, typer.Option(help="batch size timed", min=1,
                                            max=1_000_000)] = 1024,
    repeats: Annotated[int, typer.Option(help="timed passes per model", min=2,
                                         max=10000)] = 30,
    threads: Annotated[int, typer.Option(help="CPU threads while timing", min=1,
                                         max=1024)] = 1,
    seed: Annotated[int, typer.Option(min=0, max=2**32 - 1)] = 0,
    runs_dir: RunsDir = Path("runs"),
    as_json: JsonOut = False,
    no_progress: NoProgress = False,
    quiet: Quiet = False,
) -> None:
    """Train a small CNN on digits, prune it until it is *measured* 2× faster on this machine,
    fine-tune, measure, report."""
    from prunekit.demo import DemoConfig, run_demo

    show = not (no_progress or quiet)
    with user_errors(), progress_shown(show):
        config = DemoConfig(epochs=epochs, target_speedup=target_speedup,
                            finetune_epochs=finetune_epochs, batch_size=batch_size,
                            threads=threads, repeats=repeats, seed=seed)
        job, result = run_demo(config, progress=show, log=_log(not (as_json or quiet)))
        _finish(job, result, runs_dir, as_json)


def _resolve(model: str, weights: Path | None, data: str | None, recipe: Any) -> Any:
    """Device, model, weights, dataset and a forward check — before anything is written."""
    import torch

    from prunekit.measure.devices import validate_device
    from prunekit.recipes.specs import (
        build_model,
        check_forward,
        example_inputs,
        load_dataset,
        load_weights,
    )

    validate_device(recipe.measure.device)
    torch.manual_seed(recipe.seed)  # random initial weights: the same run after run
    spec = build_model(model)
    if weights is not None:
        load_weights(spec.model, weights)
    shape = "x".join(map(str, spec.default_shape))
    dataset = load_dataset(data or f"random:{shape}")
    check_forward(spec, example_inputs(spec, dataset, 1, recipe.seed))
    return spec, dataset


@app.command()
def prune(
    model: Annotated[str, typer.Argument(help="torchvision:NAME, timm:NAME, hf:CONFIG.json "
                                              "or file.py:factory")],
    recipe: Annotated[Path | None, typer.Option(help="YAML recipe (default: one-shot, "
                                                     "keep 50% of MACs)")] = None,
    weights: Annotated[Path | None, typer.Option(help=".safetensors or torch.save "
                                                      "state dict")] = None,
    data: Annotated[str | None, typer.Option(help="digits, fashion-mnist[:PATH] or "
                                                  "random:3x224x224")] = None,
    allow_collapse: AllowCollapse = False,
    runs_dir: RunsDir = Path("runs"),
    as_json: JsonOut = False,
    no_progress: NoProgress = False,
    quiet: Quiet = False,
) -> None:
    """Prune MODEL with a recipe; fine-tune, check, measure and save the run."""
    from prunekit.recipes.runner import Job, job_config, run_job
    from prunekit.recipes.schema import load_recipe, parse_recipe

    no_progress = no_progress or quiet
    with user_errors(), progress_shown(not no_progress):
        rec = load_recipe(recipe) if recipe is not None else parse_recipe({})
        if allow_collapse:
            rec = rec.model_copy(update={"checks": rec.checks.model_copy(
                update={"allow_collapse": True})})
        spec, dataset = _resolve(model, weights, data, rec)
        config = job_config(model, dataset.spec, rec, weights=weights and str(weights),
                            recipe_file=recipe and str(recipe))
        job = Job(spec, dataset, rec, title=f"prunekit prune {model}", config=config,
                  progress=not no_progress)
        result = run_job(job, _log(not (as_json or quiet)))
        _finish(job, result, runs_dir, as_json)


def _bench_report(spec: Any, dense: Any, pruned: Any, inputs: Any, eval_fn: Any,
                  options: dict[str, Any], notes: dict[str, Any]) -> dict[str, Any]:
    from prunekit.measure import compare
    from prunekit.progress import stage
    from prunekit.report import build_report, layer_stats

    comparison = compare(dense, pruned, inputs, eval_fn=eval_fn, **options)
    with stage("per-layer parameters and MACs"):
        layers = layer_stats(dense, pruned, inputs)
    return build_report(f"prunekit bench {spec.spec}", comparison, layers, None,
                        {"bench": {**options, **notes}})


def _bench_checks(spec: Any, data: Any, dense: Any, pruned: Any, eval_fn: Any,
                  allow: bool) -> dict[str, Any]:
    """Collapse checks of both models before any timing; QualityError (exit 3) on a
    failure unless ``allow``."""
    from prunekit.measure.guards import CHANCE_MARGIN, Checks, QualityError
    from prunekit.recipes.runner import check

    checks = Checks(allow_collapse=allow)
    for role, model in (("dense", dense), ("pruned", pruned)):
        score = eval_fn(model) if eval_fn is not None else None
        checks.add(check(spec, data, model, role, score, CHANCE_MARGIN))
    if not checks.ok:
        raise QualityError(f"{checks.failures[0]}; nothing was timed (--allow-collapse "
                           f"times it anyway)", checks)
    return checks.to_dict()


def _fast_pools(dense: Any, pruned: Any, inputs: Any, device: str,
                threads: int) -> dict[str, list[str]]:
    """``--fast-pool``: index-free max pooling in both models where it measures faster
    (:func:`prunekit.hardware.replace_max_pool`); which pools each model had replaced."""
    from prunekit.hardware import replace_max_pool
    from prunekit.recipes.specs import SpecError

    if device != "cpu":
        raise SpecError(f"--fast-pool times and replaces pools on the CPU; got --device {device}")
    return {name: replace_max_pool(m, inputs, threads=threads)["replaced"]
            for name, m in (("dense", dense), ("pruned", pruned))}


@app.command()
def bench(
    model: Annotated[str, typer.Argument(help="the dense model spec (as for prune)")],
    pruned: Annotated[Path | None, typer.Option(help="a run directory from `prunekit prune` "
                                                     "(default: the model against itself)")
                      ] = None,
    weights: Annotated[Path | None, typer.Option(help="dense weights")] = None,
    data: Annotated[str | None, typer.Option(help="dataset spec")] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=4096)] = 32,
    repeats: Annotated[int, typer.Option(min=2, max=10000)] = 30,
    device: Annotated[str, typer.Option(help="cpu or cuda[:INDEX]")] = "cpu",
    threads: Threads = 2,
    fast_pool: Annotated[bool, typer.Option(
        "--fast-pool", help="time both models with index-free max pooling where it measures "
                            "faster (prunekit.hardware.replace_max_pool; CPU)")] = False,
    allow_collapse: AllowCollapse = False,
    runs_dir: RunsDir = Path("runs"),
    as_json: JsonOut = False,
    quiet: Quiet = False,
) -> None:
    """Check, then measure dense vs pruned: parameters, MACs (theory), latency, ρ, memory,
    energy."""
    import copy

    import prunekit
    from prunekit.measure.devices import validate_device
    from prunekit.progress import stage
    from prunekit.recipes.runs import new_run
    from prunekit.recipes.schema import parse_recipe
    from prunekit.recipes.specs import SpecError, build_model, example_inputs
    from prunekit.report import print_report, write_report

    with user_errors(), progress_shown(not quiet):
        validate_device(device)
        with stage(f"building {model} and checking a forward pass"):
            spec, dataset = _resolve(model, weights, data, parse_recipe({}))
        other = copy.deepcopy(spec.model)
        if pruned is not None:
            if not (pruned / "model").is_dir():
                raise SpecError(f"{str(pruned)!r} is not a prunekit run (no model/ inside); "
                                f"give a directory written by `prunekit prune`")
            with stage(f"loading the pruned model from {pruned}"):
                other = prunekit.load(pruned / "model", lambda: build_model(model).model)
        inputs = example_inputs(spec, dataset, batch_size)
        options = {"device": device, "threads": threads, "repeats": repeats}
        dense, notes = spec.model, {}
        if fast_pool:  # on copies: the dense spec model stays as built
            dense = copy.deepcopy(spec.model)
            notes["fast_pool"] = _fast_pools(dense, other, inputs, device, threads)
        eval_fn = None
        if dataset.labeled:
            from prunekit.methods import evaluate

            eval_fn = lambda m: evaluate(m, dataset.test)  # noqa: E731
        checks = _bench_checks(spec, dataset, spec.model, other, eval_fn, allow_collapse)
        _log(not (as_json or quiet))(
            f"timing dense vs pruned ({device}, {threads} threads, batch {batch_size}, "
            f"{repeats} passes each in alternating rounds, re-timed while IQR/median > 10 %)")
        report = _bench_report(spec, dense, other, inputs, eval_fn, options, notes)
        report["checks"] = checks
        with new_run(runs_dir) as run, stage("writing plots and report.html"):
            write_report(run.path, report)
        if as_json:
            typer.echo(json.dumps({"run": str(run.final), **notes, **report["comparison"],
                                   "ok": checks["ok"], "checks": checks["status"],
                                   "failures": checks["failures"]}, default=str))
        else:
            print_report(report, Console())
            Console().print(f"saved [bold]{run.final}[/]")
        _print_checks(checks, err_console if as_json else Console())


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="a runs/<timestamp> directory")],
    as_json: JsonOut = False,
) -> None:
    """Show a saved run and re-render its plots and report.html."""
    from prunekit.report import load_report, print_report, render_run

    with user_errors():
        data = load_report(run_dir)
        written = render_run(run_dir)
        if as_json:
            typer.echo(json.dumps(data, default=str))
        else:
            print_report(data, Console())
            Console().print(f"rendered [bold]{written['html']}[/]")
        _print_checks(data.get("checks"), err_console if as_json else Console())


def main() -> None:
    """Entry point of the ``prunekit`` console script."""
    app()


if __name__ == "__main__":
    main()
