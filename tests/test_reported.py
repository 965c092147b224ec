"""The papers' numbers: every result table transcribed, and compare() beside this run's."""

import math

import pandas as pd
import pytest

from cellrepro import PAPERS, CellreproError
from cellrepro.publish.report import compare, reported, reported_value

# Values per table and their sum as printed, from the claims register's table inventory
# (section 7), an independent count of the same tables.
INVENTORY = {
    "spheroid": {"1": (40, 31.648), "2": (4, 256.94)},
    "multimodal": {"3": (26, 21.4949), "4": (10, 6.0012)},
    "mmcs": {"1": (4, 3.2029), "2": (4, 2.7632), "3": (4, 2.7896), "4": (8, 5.9529), "5": (16, 12.1722),
             "6": (7, 5.4160), "7": (6, 4.8822), "8": (3, 1.9195)},
    "brightfield": {"5.1": (20, 18.1349), "5.2": (15, 13.4772), "5.3": (30, 10.1860), "5.4": (15, 13.7318),
                    "5.5": (15, 13.7278), "5.6": (15, 5.0017), "5.7": (36, 1143.2), "5.8": (30, 722.5),
                    "5.9": (18, 698.2), "5.10": (12, 510.5), "5.11": (18, 1145.1)},
    # organoid 4.1-4.2 are the stage settings (lr, batch, epochs, temperature[, block size])
    "organoid": {"4.1": (4, 100.5001), "4.2": (5, 32.0701), "5.1": (6, 3.039), "5.2a": (12, 6.064), "5.2b": (12, 6.021),
                 "Fig. 5.8": (3, 2.121)},  # values quoted in the prose under Fig. 5.8
}


@pytest.mark.parametrize("paper", PAPERS)
def test_every_table_has_its_values(paper):
    df = reported(paper)
    assert (df["paper"] == paper).all()
    got = {t: (len(g), round(g["value"].sum(), 4)) for t, g in df.groupby("table")}
    assert got == {t: (n, round(s, 4)) for t, (n, s) in INVENTORY[paper].items()}
    assert not df.duplicated(["table", "row", "column"]).any()


def test_total_result_cells_match_the_register():
    results = sum(n for paper in INVENTORY.values() for t, (n, _) in paper.items() if t not in ("4.1", "4.2", "Fig. 5.8"))
    assert results == 386


def test_harmonic_mean_check_flags_only_the_known_typo():
    """Brightfield F1 = HM(P, R) within 0.0004 except the Table 5.1 base row (register #7)."""
    df = reported("brightfield")
    wide = df[df["table"].isin(["5.1", "5.2", "5.3", "5.4", "5.5", "5.6"])].pivot_table(
        index=["table", "row"], columns="column", values="value")
    hm = 2 * wide["precision"] * wide["recall"] / (wide["precision"] + wide["recall"])
    bad = wide.index[(hm - wide["F1"]).abs() > 0.0004].tolist()
    assert bad == [("5.1", "SEU-Net (base), cytoplasm")]


def test_compare_side_by_side():
    ours = {("Mask R-CNN, R50-FPN", "mask mAP@[.5:.95]"): 0.5, ("Mask R-CNN, R50-FPN", "mask AP50"): 0.9}
    out = compare(ours, paper="spheroid", table="1")
    row = out.loc[("Mask R-CNN, R50-FPN", "mask mAP@[.5:.95]")]
    assert row["paper"] == 0.620 and row["this run"] == 0.5 and math.isclose(row["difference"], -0.12)
    assert len(out) == 40 and out["this run"].notna().sum() == 2
    frame = pd.DataFrame({"row": ["Mask R-CNN, R50-FPN"], "column": ["mask AP50"], "value": [0.9]})
    assert compare(frame, "spheroid", "1")["this run"].notna().sum() == 1


def test_compare_with_per_seed_values_adds_their_interval():
    key = ("Mask R-CNN, R50-FPN", "mask AP50")
    out = compare({key: [0.6, 0.7, 0.8], ("Mask R-CNN, R50-FPN", "mask mAP@[.5:.95]"): 0.5}, "spheroid", "1")
    assert list(out.columns[:4]) == ["paper", "this run", "95% interval", "difference"]
    assert math.isclose(out.loc[key, "this run"], 0.7)
    half = 4.302653 * 0.1 / math.sqrt(3)  # t(0.975, 2) * SD / sqrt(n)
    assert out.loc[key, "95% interval"] == f"[{0.7 - half:+.4f}, {0.7 + half:+.4f}]"
    assert out.loc[("Mask R-CNN, R50-FPN", "mask mAP@[.5:.95]"), "95% interval"] == ""


def test_an_interval_of_a_fraction_stays_in_0_1_and_says_it_was_clipped():
    """Issue 33: Table 1 showed AP50 in [+0.4523, +1.0702]. The t-interval is clipped to the
    metric's range, and the cell says so; an interval inside the range is untouched."""
    from cellrepro.publish.report import metric_range, paired_effect

    key = ("Mask R-CNN, R50-FPN", "mask AP50")
    half = 4.302653 * 0.1 / math.sqrt(3)
    out = compare({key: [0.8, 0.9, 1.0]}, "spheroid", "1")
    assert out.loc[key, "95% interval"] == f"[{0.9 - half:+.4f}, +1.0000] clipped to [0, 1]"
    pct = compare({("SBS + Mask R-CNN (baseline)", "mask mAP@[.5:.95] (%)"): [80.0, 90.0, 100.0]}, "spheroid", "2")
    assert pct.iloc[:, 2].str.endswith("+100.0000] clipped to [0, 100]").any()
    assert compare({key: [0.8, 0.9, 1.0]}, "spheroid", "1", bounds=(-math.inf, math.inf)).loc[
        key, "95% interval"] == f"[{0.9 - half:+.4f}, {0.9 + half:+.4f}]"  # no range: the plain t-interval
    e = paired_effect([0.8, 0.9, 1.0], bounds=(0, 1))
    assert e["high"] == 1.0 and e["clipped"] and math.isclose(e["low"], 0.9 - half, rel_tol=1e-6)
    assert paired_effect([0.6, 0.7, 0.8], bounds=(0, 1))["clipped"] is False
    assert "clipped" not in paired_effect([0.6, 0.7, 0.8]) and paired_effect([0.9], bounds=(0, 1))["clipped"] is False
    # every result table of every paper has a range, the stage settings none
    for paper in PAPERS:
        for (table, column), _ in reported(paper).groupby(["table", "column"]):
            settings = table in ("4.1", "4.2", "Fig. 5.8")
            assert (metric_range(paper, table, column) is None) == settings, (paper, table, column)


DEVELOPER_WORDS = ("ocr", "extraction", "cyrillic", "transcri", "collapsed layout", "misread")


@pytest.mark.parametrize("paper", PAPERS)
def test_reader_tables_carry_no_transcription_notes(paper):
    """Issue 33: "extraction shows Cyrillic Х and an OCR'd 1" showed in a reader's table. How a
    value was read off the PDF lives in the CSV's ``transcription`` column, which no rendered
    table shows; the ``note`` beside the paper's value is for readers."""
    from cellrepro.publish.report import style, table

    df = reported(paper)
    for t in dict.fromkeys(df["table"]):
        shown = compare({}, paper, t)
        assert "transcription" not in shown.columns
        for rendered in (style(shown).to_html(), table(shown).to_html(), style(shown).to_string()):
            low = rendered.lower()
            assert not [w for w in DEVELOPER_WORDS if w in low], (paper, t, [w for w in DEVELOPER_WORDS if w in low])
    assert not df["note"].str.contains("|".join(DEVELOPER_WORDS), case=False).any()


def test_transcription_notes_are_kept_for_developers():
    notes = reported("multimodal", "3").set_index(["row", "column"])["transcription"]
    assert "Cyrillic" in notes[("mDice", "fluorescence, labeled only")]
    assert reported("brightfield", "5.1")["transcription"].str.contains("collapsed layout").any()


def test_compare_refuses_cells_the_paper_does_not_have():
    with pytest.raises(CellreproError, match="has no cell"):
        compare({("Mask R-CNN, R50", "mask AP50"): 0.9}, paper="spheroid", table="1")
    with pytest.raises(CellreproError, match="tables: 1, 2"):
        reported("spheroid", "3")
    with pytest.raises(CellreproError, match="unknown paper"):
        reported("nature")


def test_reported_value():
    assert reported_value("mmcs", "5", "w=0.4", "dataset1 F1 (fixed lr 0.1)") == 0.7904


def test_style_rounds_each_table_as_its_paper_prints_it_and_never_says_nan():
    import pandas as pd

    from cellrepro.publish.report import style

    one = compare({("Mask R-CNN, R50-FPN", "mask AP50"): 0.91234}, paper="spheroid", table="1")
    two = compare({}, paper="spheroid", table="2")
    table = style(pd.concat([one, two], keys=["Table 1", "Table 2"]))
    frame = table.frame.set_index(["table", "row", "column"])
    assert frame.loc[("Table 1", "Mask R-CNN, R50-FPN", "mask AP50"), "this run"] == "0.912"  # 3 decimals
    assert frame.loc[("Table 2", "SBS + Mask R-CNN (baseline)", "mask mAP@[.5:.95] (%)"), "paper"] == "62.32"
    html = table.to_html()
    assert "nan" not in html.lower() and "not run" in html and "..." not in html
