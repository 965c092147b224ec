"""Book figures are legible: 150 dpi, and no text under 8 pt at the size the book shows them."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from cellrepro import data  # noqa: E402
from cellrepro.publish import report  # noqa: E402
from cellrepro.data import gallery  # noqa: E402
from cellrepro.stacking.figures import figure3, k_curves, knob_figure  # noqa: E402


@pytest.fixture(autouse=True)
def book_style():
    with matplotlib.rc_context():
        report.use_book_style()
        yield
    plt.close("all")


def test_book_style_is_150_dpi():
    assert matplotlib.rcParams["figure.dpi"] >= 150 and matplotlib.rcParams["savefig.dpi"] >= 150


def test_rendered_font_known_answer():
    fig = plt.figure(figsize=(4, 2))
    fig.text(0, 0, "a", fontsize=8)
    assert report.rendered_font_pt(fig) == pytest.approx(8 * 150 / 96)  # 600 px < the column: shown 1:1
    fig.set_figwidth(2 * report.COLUMN_PX / 150)  # twice the column wide: shown at half size
    assert report.rendered_font_pt(fig) == pytest.approx(8 * 150 / 96 / 2)


def test_gallery_and_stacking_figures_keep_fonts_of_8_pt():
    stacks = data.load("dic-spheroid", n=1, size=64, seed=0)
    cells, _ = data.load("multimodal", n_labeled=8, n_unlabeled=0, size=64, seed=0)
    fields, _ = data.load("brightfield-overlap", n=1, n_pool=0, size=64, seed=0)
    organoids = data.load("organoid", n=1, size=128, seed=0)
    stack = stacks[0].stack
    sweeps = pd.DataFrame({"k": [1, 2, 3] * 4, "ssim_cells": np.linspace(0, 1, 12), "psnr_cells": np.arange(12.0),
                           "contour": np.ones(12), "stack": ([0] * 3 + [1] * 3) * 2,
                           "selection": ["HiFST"] * 6 + ["random"] * 6})
    knobs = pd.DataFrame({"knob": ["noise"] * 2 + ["bits"] * 2, "value": [0.01, 0.06, "none", 8],
                          "oracle gain": [0.05, 0.02, 0.04, 0.05], "SBS gain": [0.0, -0.1, 0.01, 0.0],
                          "AUC": [0.8, 0.7, 0.8, 0.8], "rho": [0.5, -0.2, 0.4, 0.3]}).set_index(["knob", "value"])
    figs = {"zstack": gallery.zstack_figure(stacks[0]), "cells": gallery.cells_figure(cells),
            "field": gallery.field_figure(fields[0]), "organoid": gallery.organoid_figure(organoids[0]),
            "figure3": figure3(stack, stack, stack.mean((1, 2)), stack[0], stack[1]),
            "k_curves": k_curves(sweeps, k_paper=2), "knobs": knob_figure(knobs, 8)}
    for name, fig in figs.items():
        assert report.rendered_font_pt(fig) >= 8, name


def test_organoid_figures_keep_fonts_of_8_pt():
    import torch

    from cellrepro.chapters.organoid import figures as org

    x = torch.rand(4, 1, 32, 32)
    m = (x > 0.5).float()
    probs = {name: np.random.rand(4, 32, 32) for name in ("pre-trained", "supervised", "classical")}
    hist = pd.DataFrame({"step": [1, 2], "epoch": [0, 0], "loss": [1.0, 0.5], "val_loss": [0.9, 0.6]})
    grid = pd.DataFrame({"seed": [0, 0, 0, 0], "global_fraction": [0.1, 0.1, 0.6, 0.6],
                         "local_fraction": [0.1, 0.6, 0.1, 0.6], "f1": [0.8, 0.85, 0.81, 0.86]})
    figs = {"augment": org.augmentation_examples(x, n=3), "pairs": org.pair_examples(x[0], m[0]),
            "predictions": org.predictions(x, m, probs, [0, 1, 2], true=m),
            "curves": org.curves({"global": hist, "local": hist, "fine-tuning": hist}),
            "panels": org.proportion_panels(grid, "global_fraction", "local_fraction", pd.Series([0.8])),
            "toy": org.axes_grid(1, 3, 2.4)[0]}
    for name, fig in figs.items():
        assert fig.get_figwidth() <= org.WIDTH + 1e-9, name
        assert report.rendered_font_pt(fig) >= 8, name


def test_multimodal_routing_figure_keeps_fonts_of_8_pt():
    from cellrepro.chapters.multimodal import figures as mm
    from cellrepro.chapters.multimodal.routing import confusion

    truth = ["brightfield", "fluorescence", "phase contrast", "dic"] * 3
    fig = mm.routing_figure(np.random.rand(12, 6), truth, confusion(truth, truth[::-1]))
    assert fig.get_figwidth() <= mm.WIDTH + 1e-9
    assert report.rendered_font_pt(fig) >= 8


def test_an_all_white_mask_panel_has_a_frame():
    """Issue 33: the organoid predictions figure's "true mask" column was nearly all white and
    drawn without a frame, so on the white page it looked missing. Every image panel of the
    chapter's grid has a thin grey frame; the pixels along the panel's edge are not white."""
    import torch

    from cellrepro.chapters.organoid import figures as org

    x = torch.rand(2, 1, 32, 32)
    white = torch.ones(2, 1, 32, 32)  # an annotation and a true mask with no background at all
    fig = org.predictions(x, white, {"pre-trained": np.ones((2, 32, 32))}, [0, 1], true=white)
    fig.canvas.draw()
    pixels = np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(int)
    height = pixels.shape[0]
    for ax in fig.axes:
        assert ax.axison and all(s.get_visible() for s in ax.spines.values()), ax.get_title()
        assert ax.get_xticks().size == 0 and ax.get_yticks().size == 0, ax.get_title()
        box = ax.get_window_extent()
        row = height - int(round((box.y0 + box.y1) / 2))  # a pixel row through the panel's middle
        left = pixels[row, int(box.x0) - 1:int(box.x0) + 2]
        assert (left.sum(-1) < 3 * 250).any(), f"{ax.get_title()}: no frame on the left edge"
