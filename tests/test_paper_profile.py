"""The `paper` profile holds the papers' own hyper-parameters, every one they report."""

import pytest

from cellrepro.publish import report
from cellrepro.publish.profile import overrides_for
from cellrepro.publish.project import Project

ORGANOID = ["organoid/pipeline", "organoid/ablation-data", "organoid/ablation-loss", "organoid/ablation-frozen"]
# (table, row, column) of cellrepro/reported/organoid.csv -> the notebooks' parameter
ORGANOID_SETTINGS = {
    ("4.1", "global stage", "learning rate"): "global_lr",
    ("4.1", "global stage", "batch size"): "global_batch",
    ("4.1", "global stage", "epochs"): "global_epochs",
    ("4.1", "global stage", "temperature"): "global_temperature",
    ("4.2", "local stage", "learning rate"): "local_lr",
    ("4.2", "local stage", "batch size"): "local_batch",
    ("4.2", "local stage", "epochs"): "local_epochs",
    ("4.2", "local stage", "block size"): "block_size",
    ("4.2", "local stage", "temperature"): "local_temperature",
}
# values the thesis gives in its prose (Sec. 4.1-4.3), not in a table
ORGANOID_PROSE = {"crop": 320, "folds": 5, "global_steps": None, "local_steps": None}  # the thesis counts epochs
PROPORTIONS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]


@pytest.fixture(scope="module")
def project():
    return Project.find()


def test_every_reported_organoid_setting_has_a_parameter():
    settings = report.reported("organoid")
    settings = settings[settings["note"] == "setting"]
    assert {(t, r, c) for t, r, c in settings[["table", "row", "column"]].itertuples(index=False)} == \
        set(ORGANOID_SETTINGS)


@pytest.mark.parametrize("key", ORGANOID)
def test_organoid_paper_profile_matches_the_thesis(project, key):
    over = overrides_for(project, "paper", project.notebook(key))  # also validates names and types
    for (table, row, column), name in ORGANOID_SETTINGS.items():
        assert over[name] == pytest.approx(report.reported_value("organoid", table, row, column)), (key, name)
    for name, value in ORGANOID_PROSE.items():
        assert over[name] == value, (key, name)
    assert over["features"][4] == 512  # "the output dimensions ... (50, 512, ...)", Sec. 4.2.1
    assert over["n_labelled"] is None  # every fine-tuning crop is labelled in the thesis
    if key == "organoid/ablation-data":
        assert over["global_fractions"] == PROPORTIONS and over["local_fractions"] == PROPORTIONS
    if key == "organoid/ablation-loss":  # Table 5.1 averages over all 36 pre-trained models
        assert sorted(map(tuple, over["settings"])) == [(g, lf) for g in PROPORTIONS for lf in PROPORTIONS]
    if key == "organoid/ablation-frozen":  # Table 5.2's two settings and three losses
        assert over["losses"] == ["bce_dice", "ssim_dice", "ssim_mae_dice"]
        assert over["settings"] == [[0.4, 0.6], [0.6, 0.1]]
    assert over["n_global"] + over["n_local"] + over["n_tune"] == 44  # ~35k pre-training + ~35k fine-tuning crops


def test_paper_profile_differs_from_the_book(project):
    """`paper` is not the book profile under another name."""
    for key in ORGANOID:
        assert overrides_for(project, "paper", project.notebook(key)), key
