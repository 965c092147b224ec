"""Run records: atomic writes, git state, banners, metric logging."""

import json
import subprocess

import pytest

from cellrepro._io import atomic_path, atomic_write_json
from cellrepro.publish.record import METRICS_ENV, banner_markdown, format_duration, git_state, log_metrics, read_logged



def test_atomic_write_keeps_old_file_when_interrupted(tmp_path):
    target = tmp_path / "rec.json"
    atomic_write_json(target, {"v": 1})
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_text('{"v": 2, "half')
            raise KeyboardInterrupt  # simulated kill in the middle of a write
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["rec.json"]  # no temporary left behind


def test_git_state_tracks_commit_and_dirtiness(tiny, tmp_path):
    state = git_state(tiny.root)
    head = subprocess.run(["git", "-C", str(tiny.root), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    assert state["commit"] == head.strip() and state["dirty"] is False
    published = next((tiny.root / "book").glob("*/*.md"))  # a chapter page stands in: track a fake output
    output = published.with_suffix(".record.json")
    output.write_text("{}")
    subprocess.run(["git", "-C", str(tiny.root), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(tiny.root), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "o"], check=True)
    output.write_text('{"rerun": true}')  # a published result rewritten by the run before: still clean
    assert git_state(tiny.root)["dirty"] is False
    (tiny.root / "book" / "intro.md").write_text("# changed\n")
    assert git_state(tiny.root)["dirty"] is True
    assert git_state(tmp_path / "nowhere") == {"commit": None, "dirty": None, "package_tree": None}
    assert state["package_tree"] is None  # the fixture has no cellrepro/ folder


def test_log_metrics_appends_plain_values(tmp_path, monkeypatch):
    np = pytest.importorskip("numpy")
    path = tmp_path / "m.jsonl"
    monkeypatch.setenv(METRICS_ENV, str(path))
    log_metrics(f1=np.float32(0.5), counts=np.array([1, 2]))
    log_metrics(f1=0.75, device="cuda:0")
    assert read_logged(path) == {"f1": 0.75, "counts": [1, 2], "device": "cuda:0"}
    monkeypatch.delenv(METRICS_ENV)
    log_metrics(ignored=1)  # outside a run: no error, nothing written
    assert len(path.read_text().splitlines()) == 2


@pytest.mark.parametrize("seconds, text", [(0.4, "0 s"), (59.6, "1 min 00 s"), (75.3, "1 min 15 s"), (3725, "1 h 02 min")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_banner_names_what_produced_the_page():
    rec = {"profile": "book", "overrides": {"epochs": 2}, "device": "NVIDIA H100 80GB HBM3", "wall_time_s": 431.0,
           "git": {"commit": "0123456789abcdef", "dirty": True}, "started": "2026-11-21T10:00:00+00:00",
           "seed": 3, "dataset": "organoid (synthetic stand-in)"}
    text = banner_markdown(rec)
    for part in ("`book`", "`epochs=2`", "NVIDIA H100 80GB HBM3", "7 min 11 s", "`0123456789`",
                 "uncommitted changes", "2026-11-21", "**seed** 3", "organoid (synthetic stand-in)", "cellrepro-banner"):
        assert part in text, part
    assert text.startswith(":::{admonition}") and text.endswith(":::")


def test_atomic_writes_get_ordinary_permissions(tmp_path):
    from cellrepro._io import default_mode

    path = atomic_write_json(tmp_path / "r.json", {})
    assert path.stat().st_mode & 0o777 == default_mode()
