"""`cellrepro run`: a tiny fixture notebook executed through papermill in the smoke profile."""

import json

import nbformat
import pytest

from cellrepro import CellreproError
from cellrepro.runner import BANNER_TAG, CITE_TAG, NotebookFailed, run_notebook

pytestmark = pytest.mark.slow


def test_smoke_run_writes_notebook_and_record(tiny, tmp_path):
    out = tmp_path / "out"
    result = run_notebook(tiny, "demo/tiny", profile="smoke", parameters={"scale": "2"}, out_dir=out, progress=False)

    assert result.notebook == out / "tiny.ipynb" and result.record_path == out / "tiny.record.json"
    rec = json.loads(result.record_path.read_text())
    # profile (n=2) then -p (scale=2): total = (0 + 1) * 2
    assert rec["profile"] == "smoke" and rec["status"] == "ok"
    assert rec["overrides"] == {"n": 2, "scale": 2.0}
    assert rec["parameters"]["n"] == 2 and rec["parameters"]["label"] == "demo"
    assert rec["metrics"] == {"total": 2.0, "n_used": 2}
    assert rec["device"] == "test-device"  # logged by the notebook
    assert rec["seed"] == 0 and rec["notebook"] == "demo/tiny"
    assert rec["source"] == "notebooks/demo/tiny.md"
    assert len(rec["git"]["commit"]) == 40 and rec["git"]["dirty"] is False
    assert {"python", "cellrepro", "torch", "monai", "kornia"} <= set(rec["versions"])
    assert rec["wall_time_s"] > 0 and rec["started"].endswith("+00:00")

    nb = nbformat.read(result.notebook, as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "total=2.0 label=demo" in text
    assert BANNER_TAG in nb.cells[1].metadata["tags"] and "# A tiny notebook" in nb.cells[0].source
    assert "`smoke`" in nb.cells[1].source and "test-device" in nb.cells[1].source
    assert CITE_TAG in nb.cells[-1].metadata["tags"]
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "n = 2" in injected[0].source


def test_default_output_folder_is_under_build_runs(tiny):
    result = run_notebook(tiny, str(tiny.root / "notebooks/demo/tiny.md"), profile="smoke", progress=False)
    assert result.notebook == tiny.root / "_build/runs/smoke/demo/tiny.ipynb"


@pytest.mark.parametrize(
    "name, params, match",
    [
        ("demo/nope", {}, r"(?s)unknown notebook 'demo/nope'.*demo/tiny"),
        ("demo/tiny", {"epochs": "3"}, r"(?s)unknown parameter 'epochs'.*n\s+int\s+3"),
        ("demo/tiny", {"n": "three"}, r"(?s)parameter 'n' \(from -p\): expected int, got 'three'.*scale\s+float"),
        ("demo/tiny", {"data_root": "1"}, None),  # str | None accepts text: not a refusal
    ],
)
def test_refusals_happen_before_execution(tiny, tmp_path, name, params, match):
    out = tmp_path / "out"
    if match is None:
        run_notebook(tiny, name, profile="smoke", parameters=params, out_dir=out, progress=False)
        return
    with pytest.raises(CellreproError, match=match) as err:
        run_notebook(tiny, name, profile="smoke", parameters=params, out_dir=out, progress=False)
    assert not isinstance(err.value, NotebookFailed)
    assert not out.exists()  # nothing ran, nothing was written


def test_bad_profile_override_is_refused(tiny, tmp_path):
    (tiny.profiles_dir / "smoke.yml").write_text("demo/tiny:\n  n: lots\n")
    with pytest.raises(CellreproError, match=r"from profile smoke\): expected int"):
        run_notebook(tiny, "demo/tiny", profile="smoke", out_dir=tmp_path, progress=False)


def test_failing_cell_is_named_and_good_result_kept(tiny, tmp_path):
    good = run_notebook(tiny, "demo/tiny", profile="smoke", out_dir=tmp_path, progress=False)
    before = good.notebook.read_bytes()
    with pytest.raises(NotebookFailed, match=r"demo/tiny failed in cell \d+ .*ValueError: asked to fail"):
        run_notebook(tiny, "demo/tiny", profile="smoke", parameters={"fail": "true"}, out_dir=tmp_path, progress=False)
    assert good.notebook.read_bytes() == before  # the last good result is untouched
    failed = json.loads((tmp_path / "tiny.failed.json").read_text())
    assert failed["status"] == "failed" and "asked to fail" in failed["error"]
    assert (tmp_path / "tiny.failed.ipynb").is_file()
    # a later success clears the failure files
    run_notebook(tiny, "demo/tiny", profile="smoke", out_dir=tmp_path, progress=False)
    assert not (tmp_path / "tiny.failed.json").exists()
