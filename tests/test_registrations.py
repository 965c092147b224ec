"""Each claim's registration: complete, consistent with decide(), its planned n recomputable, its hash stable."""

import pytest

from cellrepro.publish.claims import REGISTRATION_TESTS, claims, registration, registration_hash
from cellrepro.publish.decision import MARGIN_TESTS
from cellrepro.publish.power import planned_n

PLANNED = ("superiority", "non-inferiority", "equivalence", "non-superiority", "sweep")


def test_every_claim_has_exactly_one_registration_of_a_known_test():
    for c in claims():
        reg = registration(c["id"])
        assert reg["test"] in REGISTRATION_TESTS, c["id"]
        assert (reg["test"] == "untestable") == (c["needs"] != "syn"), c["id"]


@pytest.mark.parametrize("cid", [c["id"] for c in claims()])
def test_registration_is_complete_and_its_planned_n_recomputes(cid):
    reg = registration(cid)
    if reg["test"] not in PLANNED:
        return
    for key in ("arms", "metric", "unit", "paper_effect", "margin", "planned_n", "planned_n_why", "gates"):
        assert key in reg, f"{cid}: no {key}"
    assert set(reg["arms"]) == {"treatment", "reference"}
    if reg["test"] in MARGIN_TESTS:
        assert reg["margin"] > 0
    if not reg["arms"]["reference"].startswith("fixed bar"):  # a bar has no floor or ceiling to sit on
        assert any("reference" in g["name"] for g in reg["gates"]), f"{cid}: no floor/ceiling gate on the reference"
    sd = reg["seed_sd"] if reg["seed_sd"] is not None else reg["assumed_sd"]
    if reg["test"] == "superiority":
        effect = abs(reg["paper_effect"]) if reg["paper_effect"] is not None else reg["planning_effect"]
    else:
        effect = reg["margin"]
    formula = planned_n(sd, effect, test=reg["test"])
    assert reg["planned_n"] == planned_n(sd, effect, reg.get("budget_cap"), test=reg["test"]), cid
    assert f"formula {formula}" in reg["planned_n_why"], cid
    capped = reg.get("budget_cap") is not None and formula > reg["budget_cap"]
    assert capped == ("underpowered planned" in reg["planned_n_why"]), cid


def test_registration_hash_changes_with_the_entry(monkeypatch):
    from cellrepro.publish import claims as mod

    before = registration_hash("organoid-C6")
    assert before == registration_hash("organoid-C6")
    changed = dict(mod._registrations())
    changed["organoid-C6"] = {**changed["organoid-C6"], "margin": 0.02}
    monkeypatch.setattr(mod, "_registrations", lambda: changed)
    assert registration_hash("organoid-C6") != before
