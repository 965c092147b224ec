"""cellrepro sweep: grids checked like `cellrepro run`, stable run names, real Snakemake sweeps.

The slow tests run the tiny fixture notebook through Snakemake's local executor on 2 cores.
Its parameters cell declares ``n: int``, ``scale`` (float), ``fail`` (bool) and ``seed``; it
logs ``total = scale * sum(i*i for i < n)`` and ``n_used = n``, so every row of the collected
table has a known answer.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cellrepro import CellreproError
from cellrepro.cli import main
from cellrepro.sweep import collect, parse_grid, plan_sweep, run_id, run_sweep
from cellrepro.sweep.command import split_passthrough
from cellrepro.sweep.execute import snakemake_command
from cellrepro.sweep.plan import resources_for


def total(n: int, scale: float) -> float:
    return scale * sum(i * i for i in range(n))


def record_mtimes(out: Path) -> dict[str, float]:
    return {p.parent.name: p.stat().st_mtime for p in out.glob("runs/*/tiny.record.json")}


# ---------------------------------------------------------------- grids, names, refusals


def test_grid_values_split_outside_brackets_and_quotes():
    grid = parse_grid(["n=2,3", "shape=[1, 2],[3]", "label='a,b',c"], seeds="0,1,2")
    assert grid == {"n": ["2", "3"], "shape": ["[1, 2]", "[3]"], "label": ["'a,b'", "c"], "seed": ["0", "1", "2"]}


@pytest.mark.parametrize("specs, seeds, message", [
    (["n"], None, "expected NAME=V1,V2"),
    (["=1,2"], None, "expected NAME=V1,V2"),
    (["n=1,,2"], None, "empty value"),
    (["n=1", "n=2"], None, "given twice"),
    (["seed=1"], "0,1", "given twice"),
])
def test_malformed_grids_are_refused(specs, seeds, message):
    with pytest.raises(CellreproError, match=message):
        parse_grid(specs, seeds)


def test_run_names_are_stable_hashes_of_notebook_profile_and_values(tiny):
    # The name of a run must never change: an existing sweep folder would be run again from scratch.
    assert run_id("demo/tiny", "smoke", {"n": 2, "scale": 1.0, "seed": 0}) == "3e4451903d"
    plan = plan_sweep(tiny, "demo/tiny", {"scale": ["5e-1"], "n": ["2"], "seed": ["0"]}, profile="smoke")
    same = plan_sweep(tiny, "demo/tiny", {"seed": ["0"], "n": ["2"], "scale": ["0.5"]}, profile="smoke")
    other = plan_sweep(tiny, "demo/tiny", {"seed": ["0"], "n": ["2"], "scale": ["0.5"]}, profile="book")
    assert [r.id for r in plan.runs] == [r.id for r in same.runs]
    assert plan.runs[0].id != other.runs[0].id
    assert plan.runs[0].parameters == {"scale": 0.5, "n": 2, "seed": 0}


def test_plan_expands_the_product_with_typed_values_and_profile_resources(tiny):
    plan = plan_sweep(tiny, "demo/tiny", parse_grid(["n=2,3", "scale=0.5,1"], "0,1"), profile="smoke")
    assert len(plan.runs) == 8 and len({r.id for r in plan.runs}) == 8
    assert plan.runs[0].parameters == {"n": 2, "scale": 0.5, "seed": 0}
    assert plan.runs[-1].parameters == {"n": 3, "scale": 1.0, "seed": 1}
    assert plan.runs[0].resolved == {"n": 2, "scale": 0.5, "seed": 0}  # the grid wins over the profile's n: 2
    assert plan.out == tiny.root / "_build" / "sweeps" / "smoke" / "demo" / "tiny"
    assert resources_for("paper", "demo/tiny")["gpu"] == 1 and resources_for("smoke", "demo/tiny")["gpu"] == 0


@pytest.mark.parametrize("grid, message", [
    ({"nn": ["2"]}, "unknown parameter 'nn' \\(from --grid nn\\)"),
    ({"n": ["2", "three"]}, "parameter 'n' \\(from --grid n\\): expected int, got 'three'"),
    ({"fail": ["True", "true"]}, "repeat a value once converted"),
    ({}, "at least one --grid"),
])
def test_invalid_grids_are_refused_before_anything_is_written(tiny, tmp_path, grid, message):
    with pytest.raises(CellreproError, match=message) as err:
        plan_sweep(tiny, "demo/tiny", grid, profile="smoke", out=tmp_path / "sweep")
    if grid and "repeat" not in message:
        assert "Valid parameters (name, type, default):" in str(err.value)  # as `cellrepro run -p` says it
    assert not (tmp_path / "sweep").exists()


def test_cli_refuses_an_unknown_parameter_with_status_2(tiny, tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(["--root", str(tiny.root), "sweep", "demo/tiny", "--grid", "epochs=1,2", "--out", str(out)]) == 2
    assert "unknown parameter 'epochs'" in capsys.readouterr().err
    assert not out.exists()


def test_arguments_after_double_dash_go_to_snakemake():
    assert split_passthrough(["sweep", "a/b", "--grid", "n=1", "--", "--executor", "slurm", "--", "x"]) == (
        ["sweep", "a/b", "--grid", "n=1"], ["--executor", "slurm", "--", "x"])
    assert split_passthrough(["list"]) == (["list"], [])


def test_snakemake_command_local_and_cluster(tiny, tmp_path):
    plan = plan_sweep(tiny, "demo/tiny", {"n": ["2"]}, profile="paper", out=tmp_path / "sweep")
    local = snakemake_command(plan, cores=2, gpus=0)
    assert local[1:3] == ["-m", "snakemake"] and "--keep-going" in local and "--rerun-incomplete" in local
    assert local[local.index("--cores") + 1] == "2" and "--resources" not in local and "--jobs" not in local
    assert local[-2:] == ["--config", f"manifest={tmp_path / 'sweep' / 'sweep.json'}"]
    one_gpu = snakemake_command(plan, gpus=4)  # runs on one machine would all pick cuda:0: one at a time
    assert one_gpu[one_gpu.index("--resources") + 1] == "gpu=1" and "all" in one_gpu
    slurm = snakemake_command(plan, jobs=7, executor="slurm", dry_run=True, extra=["--forcerun", "notebook"])
    assert slurm[slurm.index("--executor") + 1] == "slurm" and slurm[slurm.index("--jobs") + 1] == "7"
    assert "--cores" not in slurm and "--dry-run" in slurm and slurm[-2:] == ["--forcerun", "notebook"]
    with pytest.raises(CellreproError, match="cellrepro sweep --executor NAME"):
        snakemake_command(plan, extra=["--executor", "slurm"])


def test_a_locked_sweep_folder_is_refused_before_the_manifest_changes(tiny, tmp_path):
    plan = plan_sweep(tiny, "demo/tiny", {"n": ["2"]}, profile="smoke", out=tmp_path / "sweep")
    (tmp_path / "sweep" / ".snakemake" / "locks").mkdir(parents=True)
    (tmp_path / "sweep" / ".snakemake" / "locks" / "0.input.lock").write_text("x")
    with pytest.raises(CellreproError, match="is locked.*-- --unlock"):
        run_sweep(plan, cores=1)
    assert not (tmp_path / "sweep" / "sweep.json").exists()


# ---------------------------------------------------------------- real sweeps through Snakemake


@pytest.mark.slow
def test_sweep_runs_each_run_once_and_only_new_runs_after_a_change(tiny, tmp_path):
    out = tmp_path / "sweep"
    argv = ["--root", str(tiny.root), "sweep", "demo/tiny", "--grid", "n=2,3", "--grid", "scale=0.5,1",
            "--seeds", "0,1", "--profile", "smoke", "--cores", "2", "--out", str(out)]
    assert main([*argv, "--collect"]) == 0

    assert len(list(out.glob("runs/*/tiny.ipynb"))) == 8
    first = record_mtimes(out)
    assert len(first) == 8
    table = collect(out)
    assert len(table) == 8 and set(table.status) == {"ok"} and table.in_grid.all()
    assert list(table.columns[:7]) == ["run", "notebook", "profile", "status", "n", "scale", "seed"]
    assert sorted(zip(table.n, table.scale, table.seed)) == sorted(
        (n, s, seed) for n in (2, 3) for s in (0.5, 1.0) for seed in (0, 1))
    assert all(row.total == pytest.approx(total(row.n, row.scale)) for row in table.itertuples())
    assert (table.n_used == table.n).all()
    assert (out / "results.csv").read_text().count("\n") == 9  # header and 8 runs

    # Again: Snakemake finds every output up to date and runs nothing.
    plan = plan_sweep(tiny, "demo/tiny", parse_grid(["n=2,3", "scale=0.5,1"], "0,1"), profile="smoke", out=out)
    again = run_sweep(plan, cores=2)
    assert again.returncode == 0 and again.executed == [] and len(again.ok) == 8
    assert record_mtimes(out) == first

    # One grid value changed (scale 1 -> 2): only its 4 runs are new, the 4 at scale 0.5 are kept.
    plan = plan_sweep(tiny, "demo/tiny", parse_grid(["n=2,3", "scale=0.5,2"], "0,1"), profile="smoke", out=out)
    changed = run_sweep(plan, cores=2)
    new = {r.id for r in plan.runs if r.parameters["scale"] == 2.0}
    assert changed.returncode == 0 and set(changed.executed) == new and len(new) == 4
    now = record_mtimes(out)
    assert {run: now[run] for run in first} == first and len(now) == 12
    table = collect(out)
    assert table.in_grid.sum() == 8 and set(table[~table.in_grid].scale) == {1.0}
    assert all(row.total == pytest.approx(total(row.n, row.scale)) for row in table.itertuples())


@pytest.mark.slow
def test_a_failing_run_keeps_its_partial_notebook_and_log_and_the_others_finish(tiny, tmp_path, capfd):
    out = tmp_path / "sweep"
    status = main(["--root", str(tiny.root), "sweep", "demo/tiny", "--grid", "fail=False,True", "--profile", "smoke",
                   "--cores", "2", "--out", str(out), "--collect"])
    printed = capfd.readouterr()
    assert status == 1
    assert "1 ok, 1 failed" in printed.out
    assert "Trying to restart job" in printed.err  # retried once, then given up
    plan = plan_sweep(tiny, "demo/tiny", {"fail": ["False", "True"]}, profile="smoke", out=out)
    good, bad = (r.id for r in plan.runs)
    assert (out / "logs" / f"{bad}.failed.log").is_file()  # the failed attempt's log survives the retry
    assert (out / "runs" / good / "tiny.record.json").is_file()
    assert not (out / "runs" / bad / "tiny.record.json").exists()
    log = (out / "logs" / f"{bad}.log").read_text()
    assert "ValueError: asked to fail" in log and "kept logs/" in log  # the last attempt's log
    failed = json.loads((out / "logs" / f"{bad}.failed.json").read_text())
    assert failed["status"] == "failed" and "ValueError: asked to fail" in failed["error"]
    partial = json.loads((out / "logs" / f"{bad}.failed.ipynb").read_text())
    assert any("asked to fail" in str(cell.get("outputs")) for cell in partial["cells"])
    table = collect(out).set_index("fail")
    assert table.loc[False, "status"] == "ok" and table.loc[True, "status"] == "failed"
    assert "asked to fail" in table.loc[True, "error"]

    # Fix the notebook and run the same sweep again: its source is newer than every result, so
    # both runs run again; both succeed and the failed run's kept files are cleared.
    source = tiny.root / "notebooks" / "demo" / "tiny.md"
    source.write_text(source.read_text().replace('raise ValueError("asked to fail")', "pass"))
    again = run_sweep(plan, cores=2)
    assert again.returncode == 0 and sorted(again.executed) == sorted([good, bad]) and again.failed == []
    assert not (out / "logs" / f"{bad}.failed.json").exists() and not (out / "logs" / f"{bad}.failed.ipynb").exists()
    assert set(collect(out).status) == {"ok"}


@pytest.mark.slow
def test_slurm_dry_run_prints_each_job_with_its_gpu_request(tiny, tmp_path, capfd):
    pytest.importorskip("snakemake_executor_plugin_slurm")
    out = tmp_path / "sweep"
    status = main(["--root", str(tiny.root), "sweep", "demo/tiny", "--grid", "n=2,3", "--seeds", "0", "--profile",
                   "paper", "--executor", "slurm", "--dry-run", "--out", str(out), "--",
                   "--default-resources", "slurm_account=lab", "slurm_partition=gpu"])
    printed = capfd.readouterr()
    text = printed.out + printed.err
    assert status == 0
    jobs = [block for block in text.split("rule notebook:")[1:]]
    assert len(jobs) == 2
    assert all("gpu=1" in job and "runtime=1440" in job and "mem_mb=64000" in job for job in jobs)
    assert "slurm_account=lab" in text
    assert not (out / "runs").exists()  # nothing ran
