"""`cellrepro run`: a tiny fixture notebook executed through papermill in the smoke profile."""

import json

import nbformat
import pytest

from cellrepro import CellreproError
from cellrepro.publish.runner import BANNER_TAG, CITE_TAG, NotebookFailed, run_notebook

from book_html import progress_output

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
    assert rec["cpu_time_s"] > 0  # the kernel's own CPU seconds (POSIX), independent of other load

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


def test_failure_outside_a_cell_names_the_step_and_the_call(tiny, tmp_path, monkeypatch):
    import nbformat as nbf

    def no_disk(*args, **kwargs):
        raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setattr(nbf, "write", no_disk)
    with pytest.raises(NotebookFailed, match=r"(?s)demo/tiny failed while writing the source notebook: "
                       r"FileNotFoundError: \[Errno 2\] No such file or directory\ntraceback \(last frames\):.*no_disk"):
        run_notebook(tiny, "demo/tiny", profile="smoke", out_dir=tmp_path, progress=False)
    assert json.loads((tmp_path / "tiny.failed.json").read_text())["error"].startswith("while writing the source notebook")


def test_a_kernel_that_cannot_start_is_reported_as_such(tiny, tmp_path, monkeypatch):
    import cellrepro.publish.runner as runner

    monkeypatch.setitem(runner.KERNEL, "name", "no-such-kernel")
    with pytest.raises(NotebookFailed, match=r"(?s)failed while starting the kernel: NoSuchKernel.*traceback \(last frames\)"):
        run_notebook(tiny, "demo/tiny", profile="smoke", out_dir=tmp_path, progress=False)


def test_no_library_chatter_from_papermill_or_the_kernel(tiny, tmp_path, capfd, caplog):
    """data_root's annotation hides it from papermill (a false "unknown parameter"), and a TCP
    kernel warns that it is unencrypted: neither reaches the output of a run."""
    run_notebook(tiny, "demo/tiny", profile="smoke", parameters={"data_root": "/data"}, out_dir=tmp_path, progress=False)
    err = capfd.readouterr().err
    assert "without encryption" not in err and "IProgress" not in err
    assert not [r for r in caplog.records if "unknown parameter" in r.getMessage()]


def test_kernel_warning_filter_silences_tqdms_ipywidgets_warning():
    import os
    import subprocess
    import sys

    from cellrepro.publish.runner import KERNEL_WARNINGS

    code = ("import warnings; warnings.warn('IProgress not found. Please update jupyter and ipywidgets.'); "
            "warnings.warn('another warning')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONWARNINGS": KERNEL_WARNINGS})
    assert "IProgress" not in proc.stderr and "another warning" in proc.stderr


def test_record_holds_the_source_hash_and_staleness_follows_code_and_profile(tiny, tmp_path):
    from cellrepro.publish.record import source_hash, stale

    result = run_notebook(tiny, "demo/tiny", profile="smoke", out_dir=tmp_path, progress=False)
    nb, rec = tiny.notebook("demo/tiny"), result.record
    assert rec["source_hash"] == source_hash(nb.source, rec["parameters"]) and not stale(tiny, nb, rec)
    assert f"`{rec['source_hash']}`" in result.notebook.read_text()  # the banner shows it
    text = nb.source.read_text()
    nb.source.write_text(text.replace("# A tiny notebook", "# A tiny notebook, retitled"))
    assert not stale(tiny, tiny.notebook("demo/tiny"), rec)  # narrative edits do not count
    nb.source.write_text(text.replace("* scale)", "* scale * 2)"))
    assert stale(tiny, tiny.notebook("demo/tiny"), rec)  # a code edit does
    nb.source.write_text(text)
    (tiny.profiles_dir / "smoke.yml").write_text("demo/tiny:\n  n: 5\n")
    assert stale(tiny, tiny.notebook("demo/tiny"), rec)  # so does a profile's parameter
    assert stale(tiny, nb, {k: v for k, v in rec.items() if k != "source_hash"})  # an old record


PROGRESS_CELLS = '''
```{code-cell} ipython3
import os
from tqdm import tqdm
from cellrepro.engine.progress import bar

for _ in bar(range(3), desc="ours", disable=None):
    pass
for _ in bar(range(3), desc="ours, always on"):
    pass
for _ in tqdm(range(3), desc="a library's"):
    pass
print("wait policy:", os.environ.get("OMP_WAIT_POLICY"))
```
'''


def test_executed_notebooks_carry_no_progress_bars_and_a_passive_wait_policy(tiny, tmp_path, monkeypatch):
    source = tiny.notebooks_dir / "demo" / "tiny.md"
    source.write_text(source.read_text() + PROGRESS_CELLS)
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    result = run_notebook(tiny, "demo/tiny", profile="smoke", out_dir=tmp_path / "out", progress=False)
    nb = nbformat.read(result.notebook, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    text = "".join(o.get("text", "") for o in outputs) + json.dumps([o.get("data", {}) for o in outputs])
    assert "wait policy: PASSIVE" in text
    assert not progress_output(text), progress_output(text)
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")  # a user's own choice is kept
    result = run_notebook(tiny, "demo/tiny", profile="smoke", out_dir=tmp_path / "again", progress=False)
    nb = nbformat.read(result.notebook, as_version=4)
    assert "wait policy: ACTIVE" in "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))



TABLE_CELLS = """
```{code-cell} ipython3
import pandas as pd
from cellrepro.publish import report

if n > 0:
    report.table(pd.DataFrame({"inside": [1.5]}), caption="a table inside an if")
print("between")
report.table(pd.DataFrame({"last": [2.5]}), caption="a table on the last line")
```
"""


def test_every_table_a_notebook_computes_is_shown_once(tiny, tmp_path):
    source = tiny.notebooks_dir / "demo" / "tiny.md"
    source.write_text(source.read_text() + TABLE_CELLS)
    result = run_notebook(tiny, "demo/tiny", profile="smoke", out_dir=tmp_path / "out", progress=False)
    nb = nbformat.read(result.notebook, as_version=4)
    html = [o["data"]["text/html"] for c in nb.cells for o in c.get("outputs", []) if "text/html" in o.get("data", {})]
    assert sum("a table inside an if" in h for h in html) == 1
    assert sum("a table on the last line" in h for h in html) == 1
