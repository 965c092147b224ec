"""The claims list matches the register; verdicts go into run records and come back out of them."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import pytest
import yaml

from cellrepro import CellreproError
from cellrepro.publish import report, verdicts
from cellrepro.publish.claims import chapter_status, claim_status, claims, inconsistencies, recorded_verdicts
from cellrepro.publish.record import read_logged

REGISTER = Path(__file__).resolve().parents[1].parent / "shared" / "claims-register.md"
COUNTS = {"spheroid": 10, "multimodal": 13, "mmcs": 13, "brightfield": 20, "organoid": 11}


def test_claim_counts_per_paper_are_the_registers():
    assert {p: len(claims(p)) for p in COUNTS} == COUNTS
    ids = [c["id"] for c in claims()]
    assert len(ids) == len(set(ids)) == 67
    for paper, n in COUNTS.items():  # ids are <paper>-C1 .. <paper>-Cn, in order
        assert [c["id"] for c in claims(paper)] == [f"{paper}-C{i}" for i in range(1, n + 1)]
    assert [i["n"] for i in inconsistencies()] == list(range(1, 22))


@pytest.mark.skipif(not REGISTER.is_file(), reason="the claims register is not beside this checkout")
def test_claim_ids_and_inconsistency_numbers_match_the_register_text():
    text = REGISTER.read_text(encoding="utf-8")
    register_ids = re.findall(r"^\| ([a-z]+-C\d+) \|", text, flags=re.M)
    assert register_ids == [c["id"] for c in claims()]
    section0 = text.split("## 0.")[1].split("## 1.")[0]
    numbers = [int(n) for n in re.findall(r"^\| (\d+) \| [a-z]+ \|", section0, flags=re.M)]
    papers = re.findall(r"^\| \d+ \| ([a-z]+) \|", section0, flags=re.M)
    assert numbers == [i["n"] for i in inconsistencies()]
    assert papers == [i["paper"] for i in inconsistencies()]


def test_sections_named_in_the_claims_list_exist_in_the_book(repo):
    labels = {"-".join(Path(f).parts[1:]) for f in repo.toc_files()}
    for c in claims():
        assert not c["section"] or c["section"] in labels, c["id"]


def test_record_verdict_writes_the_record_and_the_table_never_says_nan(tmp_path, monkeypatch):
    metrics = tmp_path / "metrics.jsonl"
    monkeypatch.setenv("CELLREPRO_METRICS", str(metrics))
    monkeypatch.setenv("CELLREPRO_PROFILE", "book")
    monkeypatch.setattr(verdicts, "_SESSION", {})
    effect = report.paired_effect([0.01, 0.02, 0.03])  # mean 0.02, t(0.975, 2) * 0.01 / sqrt(3) = 0.0248
    shown = report.record_verdict("organoid-C6", effect, report.verdict(effect), metric="F1", threshold="CI > 0",
                                  paper_effect=0.008)
    report.record_verdict("organoid-C9", report.paired_effect([0.01]), "inconclusive", metric="F1")
    assert shown["shown"] == "inconclusive"
    logged = read_logged(metrics)
    entry = logged["verdict/organoid-C6"]
    assert entry["verdict"] == "inconclusive" and entry["profile"] == "book" and entry["n"] == 3
    assert entry["low"] == pytest.approx(0.02 - 0.02484, abs=1e-4)
    assert logged["verdict/organoid-C9"]["low"] is None  # NaN never reaches the JSON
    html = report.verdict_table()._repr_html_()
    assert "cellrepro-verdicts" in html and "nan" not in html.lower()
    assert "no interval: n = 1 &lt; 2 seeds" in html and "[-0.005, +0.045] over 3 seeds" in html


def test_smoke_profile_shows_no_verdicts(monkeypatch):
    monkeypatch.delenv("CELLREPRO_METRICS", raising=False)
    monkeypatch.setenv("CELLREPRO_PROFILE", "smoke")
    monkeypatch.setattr(verdicts, "_SESSION", {})
    out = report.record_verdict("spheroid-C2", 0.9, "holds", metric="median AUC", threshold=0.8)
    assert out["shown"] == "not judged in the smoke profile"
    text = report.verdict_table().to_string()
    assert "not judged in the smoke profile" in text and "holds" not in text


def test_record_verdict_refuses_unknown_claims_and_words():
    with pytest.raises(CellreproError, match=r"unknown claim 'organoid-C99'.*organoid-C11"):
        report.record_verdict("organoid-C99", 0.1, "holds", metric="F1")
    with pytest.raises(CellreproError, match="must be one of"):
        report.record_verdict("organoid-C1", 0.1, "passes", metric="F1")


def _record(path: Path, notebook: str, profile: str, verdicts: dict[str, str], started: str = "2026-01-01") -> None:
    metrics = {f"verdict/{c}": {"claim": c, "verdict": v, "effect": 0.01} for c, v in verdicts.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"notebook": notebook, "profile": profile, "status": "ok", "started": started,
                                "device": "CPU", "metrics": metrics}))


def test_claim_status_reads_records_skips_smoke_and_says_why(tmp_path):
    _record(tmp_path / "organoid" / "a.record.json", "organoid/a", "book", {"organoid-C1": "holds", "organoid-C2": "fails"})
    _record(tmp_path / "organoid" / "b.record.json", "organoid/b", "smoke", {"organoid-C3": "holds"})
    assert set(recorded_verdicts(tmp_path)) == {"organoid-C1", "organoid-C2"}
    rows = {r["id"]: r for r in claim_status(tmp_path)}
    assert rows["organoid-C1"]["verdict"]["verdict"] == "holds" and rows["organoid-C1"]["why"] == ""
    assert "no published verdict" in rows["organoid-C3"]["why"]  # it has a section, judged only in smoke
    assert "private data" in rows["organoid-C4"]["why"]
    assert "no chapter section" in rows["brightfield-C11"]["why"]
    assert "public data set" in rows["mmcs-C12"]["why"]
    status = chapter_status(list(rows.values()), "organoid")
    assert (status["judged"], status["testable"], status["old"]) == (2, 10, 2)
    assert status["classes"]["old rule, no class"] == 2  # no interval stored: no class implied
    assert chapter_status(list(rows.values()), "mmcs")["judged"] == 0


def test_judge_decides_by_the_registration_and_stores_its_hash(tmp_path, monkeypatch):
    from cellrepro.publish.claims import registration, registration_hash
    from cellrepro.publish.decision import gate

    metrics = tmp_path / "metrics.jsonl"
    monkeypatch.setenv("CELLREPRO_METRICS", str(metrics))
    monkeypatch.setenv("CELLREPRO_PROFILE", "book")
    monkeypatch.setattr(verdicts, "_SESSION", {})
    reg = registration("organoid-C6")
    gates = [gate(g["name"], 1.0, at_least=0.5) for g in reg["gates"]]
    out = verdicts.judge("organoid-C6", [0.02, 0.025, 0.03], gates=gates, seconds_per_unit=140.0)
    assert out["verdict"] == "holds" and out["test"] == reg["test"] == "superiority"
    assert out["registration"] == registration_hash("organoid-C6") and out["protocol"] == 2
    assert out["paper_effect"] == reg["paper_effect"]
    entry = read_logged(metrics)["verdict/organoid-C6"]
    assert entry["mde"] > 0 and entry["gates"][0]["passed"] is True
    # a registered gate the notebook did not measure fails: not testable here, named
    out = verdicts.judge("organoid-C6", [0.02, 0.025, 0.03], gates=gates[1:])
    assert out["verdict"] == "not testable here"
    assert out["failed_gates"][0]["name"] == reg["gates"][0]["name"] and out["failed_gates"][0]["value"] == "not measured"


def test_judge_refuses_what_is_shown_not_judged():
    with pytest.raises(CellreproError, match="shown, not judged"):
        verdicts.judge("organoid-C4", [0.1, 0.2])  # untestable: private data


def test_a_changed_registration_marks_its_verdict_stale_and_old_verdicts_are_labelled(tmp_path, monkeypatch):
    from cellrepro.publish import claims as mod

    entry = {"claim": "organoid-C6", "verdict": "holds", "effect": 0.02, "low": 0.01, "high": 0.03, "n": 3,
             "registration": mod.registration_hash("organoid-C6")}
    old = {"claim": "organoid-C1", "verdict": "inconclusive", "effect": 0.005, "low": -0.004, "high": 0.014, "n": 3,
           "threshold": "CI > 0", "paper_effect": 0.05}
    path = tmp_path / "organoid" / "a.record.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"notebook": "organoid/a", "profile": "book", "status": "ok", "started": "2026",
                                "metrics": {"verdict/organoid-C6": entry, "verdict/organoid-C1": old}}))
    rows = {r["id"]: r for r in claim_status(tmp_path)}
    assert rows["organoid-C6"]["protocol"] == "registered" and not rows["organoid-C6"]["stale"]
    assert rows["organoid-C1"]["protocol"] == "old protocol"
    assert rows["organoid-C1"]["class"] == "smaller than the paper's"  # [-0.004, 0.014] excludes 0.05
    assert rows["organoid-C1"]["implied"]["mde"] > 0
    changed = dict(mod._registrations())
    changed["organoid-C6"] = {**changed["organoid-C6"], "paper_effect": 0.02}
    monkeypatch.setattr(mod, "_registrations", lambda: changed)
    rows = {r["id"]: r for r in claim_status(tmp_path)}
    assert rows["organoid-C6"]["stale"]
    assert chapter_status(list(rows.values()), "organoid")["stale"] == 1


def test_each_notebook_that_records_a_verdict_is_the_claims_section(repo):
    """claims.yml names, for every claim a notebook judges, that notebook's section (and no other)."""
    judged = {}
    for nb in repo.notebooks().values():
        for cid in re.findall(r'(?:record_verdict|judge)\(\s*"([a-z]+-C\d+)"', nb.source.read_text(encoding="utf-8")):
            judged[cid] = nb.key.replace("/", "-")
    sections = {c["id"]: c["section"] for c in claims()}
    assert {cid: sections[cid] for cid in judged} == judged


def test_old_conjunctive_rules_never_imply_holds():
    from cellrepro.publish.claims import implied

    holding = {"claim": "multimodal-C7", "effect": 0.05, "low": 0.02, "high": 0.08, "n": 3,
               "threshold": "CI > 0 and style A not below PC", "paper_effect": None}
    out = implied(holding)
    assert out["class"] is None and "further conditions" in out["why"] and out["mde"] > 0
    failing = {**holding, "effect": -0.05, "low": -0.08, "high": -0.02}
    assert implied(failing)["class"] == "fails"
    assert implied({**holding, "threshold": "ratio CI > 1"})["mde"] is None  # not a mean difference


def test_old_verdicts_without_a_numeric_effect_use_the_registered_one():
    from cellrepro.publish.claims import implied, registration

    entry = {"claim": "mmcs-C11", "effect": 0.0207, "low": -0.0200, "high": 0.0615, "n": 3, "threshold": "CI > 0",
             "paper_effect": "+0.289, +0.264"}
    out = implied(entry)
    assert out["paper_effect"] == registration("mmcs-C11")["paper_effect"]
    assert out["class"] == "smaller than the paper's" and "as registered" in out["why"]


def test_a_revised_rule_shows_the_earlier_verdict_beside_the_new_one(tmp_path, monkeypatch):
    from cellrepro.publish import claims as mod
    from cellrepro.publish.sphinx_claims import _class_text

    before = mod.registration_hash("organoid-C6")
    changed = dict(mod._registrations())
    revision = {"date": "2026-12-06", "reason": "margin fixed after the pilot", "previous_hash": before,
                "previous_verdict": "underpowered", "previous_effect": "+0.020 [-0.004, +0.043]"}
    changed["organoid-C6"] = {**changed["organoid-C6"], "revisions": [revision]}
    monkeypatch.setattr(mod, "_registrations", lambda: changed)
    assert mod.registration_hash("organoid-C6") == before  # recording a revision is not itself a change of rule
    entry = {"claim": "organoid-C6", "verdict": "holds", "effect": 0.02, "low": 0.01, "high": 0.03, "n": 6,
             "registration": before}
    path = tmp_path / "organoid" / "a.record.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"notebook": "organoid/a", "profile": "book", "status": "ok", "started": "2026",
                                "metrics": {"verdict/organoid-C6": entry}}))
    row = {r["id"]: r for r in claim_status(tmp_path)}["organoid-C6"]
    text = _class_text(row)
    assert text.startswith("holds") and "margin fixed after the pilot" in text and "gave 'underpowered'" in text


def test_a_revision_without_its_reason_is_refused(monkeypatch):
    from cellrepro.publish import claims as mod

    raw = yaml.safe_load(resources.files(mod.__name__).joinpath("registrations.yml").read_text(encoding="utf-8"))
    raw["organoid-C6"]["revisions"] = [{"date": "2026-12-06", "previous_hash": "x", "previous_verdict": "fails"}]
    monkeypatch.setattr(mod.yaml, "safe_load", lambda text: raw)
    mod._registrations.cache_clear()
    try:
        with pytest.raises(CellreproError, match="missing reason"):
            mod._registrations()
    finally:
        monkeypatch.undo()
        mod._registrations.cache_clear()
