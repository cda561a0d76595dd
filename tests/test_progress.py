"""prunekit.progress: one helper, off by default, on in a scope, quiet when asked."""

import pytest

from prunekit import progress
from prunekit.progress import enabled, showing, stage, stages, task, track


def test_default_follows_the_terminal_and_a_scope_decides(monkeypatch):
    monkeypatch.setattr(progress, "interactive", lambda: False)
    assert enabled() is False and enabled(True) is True
    with showing(True):
        assert enabled() is True and enabled(False) is False
        with showing(False):
            assert enabled() is False
    assert enabled() is False
    monkeypatch.setattr(progress, "interactive", lambda: True)
    assert enabled() is True and enabled(False) is False  # an interactive session sees it
    with showing(False):  # --quiet
        assert enabled() is False


def test_captured_stderr_is_not_interactive():
    assert progress.interactive() is False  # pytest captures stderr


def test_hidden_progress_prints_nothing(capsys):
    assert list(track(range(3), "x", progress=False)) == [0, 1, 2]
    with stage("y", progress=False), task("z", 3) as bar:
        bar.advance()
    with stages(False) as say:
        assert say is None
    assert capsys.readouterr() == ("", "")


def test_shown_progress_goes_to_stderr_with_each_step(capsys):
    with showing(True):
        assert list(track([1, 2], "searching the MAC target")) == [1, 2]
        with stage("tracing the model"):
            pass
        with stages() as say:
            say("measuring the dense model")
            say("measured search")
    out, err = capsys.readouterr()
    assert out == ""  # stdout stays clean for --json
    for line in ("searching the MAC target", "2/2", "tracing the model",
                 "measuring the dense model", "measured search"):
        assert line in err
    assert err.count("✓") == 4


def test_nested_tasks_share_one_display_and_it_stops():
    with task("outer", 2, progress=True) as outer:
        for _ in track(range(2), "inner", progress=True):
            outer.advance()
        assert progress._LIVE["depth"] == 1
    assert progress._LIVE["progress"] is None and progress._LIVE["depth"] == 0


def test_an_error_inside_stages_propagates_and_stops_the_display(capsys):
    with pytest.raises(RuntimeError, match="boom"), stages(True) as say:
        say("a step that fails")
        raise RuntimeError("boom")
    assert progress._LIVE["progress"] is None
    assert "✓" not in capsys.readouterr().err  # a failed step is not marked done
