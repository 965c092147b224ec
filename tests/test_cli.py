"""The `cellrepro` command: list, run and book, and their refusals (exit status 2)."""

import pytest

from cellrepro.cli import main


def test_list_shows_every_paper_and_notebook(repo, capsys):
    assert main(["--root", str(repo.root), "list"]) == 0
    out = capsys.readouterr().out
    for paper in ("spheroid", "multimodal", "mmcs", "brightfield", "organoid"):
        assert paper in out
    for key in repo.notebooks():
        assert key in out


def test_list_shows_parameters_and_last_runs(tiny, capsys):
    assert main(["--root", str(tiny.root), "list"]) == 0
    out = capsys.readouterr().out
    assert "demo/tiny" in out and "n: int = 3" in out and "data_root: str | None = None" in out
    assert "smoke never run" in out


@pytest.mark.slow
def test_run_then_list_reports_the_run(tiny, capsys):
    assert main(["--root", str(tiny.root), "run", "demo/tiny", "--profile", "smoke", "-q", "-p", "scale", "1"]) == 0
    assert "total = 1.0" in capsys.readouterr().out
    assert main(["--root", str(tiny.root), "list", "--json"]) == 0
    assert '"status": "ok"' in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "demo/none"], "unknown notebook 'demo/none'"),
        (["run", "demo/tiny", "-p", "nn", "1"], "unknown parameter 'nn'"),
        (["run", "demo/tiny", "-p", "n", "1.5"], "expected int, got 1.5"),
    ],
)
def test_refusals_exit_2_with_a_message(tiny, capsys, argv, message):
    assert main(["--root", str(tiny.root), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_no_project_is_a_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CELLREPRO_ROOT", raising=False)
    assert main(["list"]) == 2
    assert "no cellrepro project found" in capsys.readouterr().err
