"""Copy-paste synthesis and pix2pix of the brightfield chapter (known answers)."""

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from cellrepro.chapters.brightfield import pix2pix as P
from cellrepro.chapters.brightfield import synthesis as S
from cellrepro.data.synthetic import brightfield as B


@pytest.fixture(scope="module")
def sources():
    return B.generate(n=4, n_pool=0, size=96, seed=3)[0]


def test_generator_render_is_what_make_field_uses(sources):
    f = sources[0]
    assert f.phase.dtype == np.float32 and f.bf_low.shape == (96, 96)
    low, high = B.render(np.zeros((32, 32), np.float32), np.random.default_rng(0))[1:]
    assert abs(float(low.mean()) - 1.0) < 0.2 and abs(float(high.mean()) - 1.0) < 0.2  # empty field: light only


def test_bank_keeps_only_cells_that_overlap_no_other(sources):
    bank = S.cell_bank(sources)
    assert bank
    for cell in bank:
        f = next(f for f in sources if f.name == cell.field)
        count = f.amodal.sum(0)
        # the crop's mask is one whole cell of the field whose pixels are covered once
        assert cell.mask.sum() in {int(m.sum()) for m in f.amodal if (count[m] == 1).all()}
        assert not (cell.nucleus & ~cell.mask).any()


def test_overlap_ratio_bound_holds_for_every_pasted_cell(sources):
    settings = S.PasteSettings(cells=(6, 10), max_overlap=0.2)
    fields = S.paste_fields(sources, n=4, size=96, seed=0, settings=settings)
    for f in fields:
        taken = np.zeros(f.amodal.shape[1:], bool)
        for m in f.amodal:  # in pasting order: each against the cells pasted before it
            assert S.overlap_ratio(m, taken) <= 0.2 + 1e-9
            taken |= m
        assert f.bf_low is None and f.phase.shape == (96, 96)
    zero = S.paste_fields(sources, n=2, size=96, seed=0, settings=dataclasses.replace(settings, max_overlap=0.0))
    assert all(f.amodal.sum(0).max() <= 1 for f in zero)


def test_phase_paste_adds_and_brightfield_paste_occludes(sources):
    # no random geometry, no fade, a field exactly as large as the transformed crop: every copy of the
    # one source cell lands at (0, 0) on top of the others
    bank = S.cell_bank(sources)[:1]
    fixed = S.PasteSettings(cells=(1, 1), max_overlap=1.0, rotate=False, scale=(1, 1), elastic_magnitude=(0, 0),
                            edge_sigma=0)
    side = S._transform(bank[0], fixed, np.random.default_rng(0))["mask"].shape[0]
    twice = dataclasses.replace(fixed, cells=(2, 2))
    for mode in S.MODES:
        one = S.paste_field(bank, side, np.random.default_rng(5), fixed, mode=mode)
        two = S.paste_field(bank, side, np.random.default_rng(5), twice, mode=mode)
        assert len(one.amodal) == 1 and len(two.amodal) == 2 and np.array_equal(two.amodal[0], two.amodal[1])
        m = one.amodal[0]
        np.testing.assert_allclose(two.phase[m], 2 * one.phase[m], rtol=1e-5)  # phase contrast adds
        if mode == "brightfield":  # the second copy hides the first: brightfield does not add
            np.testing.assert_allclose(two.bf_low[m], one.bf_low[m], rtol=1e-5)


def test_exact_translator_without_noise_and_light_is_the_smooth_render(sources):
    default = S.translate_exact(sources[:2], seed=1)
    assert all(np.array_equal(a.bf_low, b.bf_low) for a, b in zip(default, S.translate_exact(sources[:2], seed=1, optics=B.Optics())))
    clean = S.translate_exact(sources[:2], seed=1, optics=B.Optics(noise=0.0, light=0.0))
    rough = lambda f: float(np.abs(np.diff(f.bf_low, axis=1)).mean())  # noqa: E731
    assert all(rough(c) < rough(d) for c, d in zip(clean, default))


def test_exact_translator_fills_both_planes(sources):
    fields = S.translate_exact(S.paste_fields(sources, n=2, size=96, seed=1), seed=0)
    assert all(f.bf_low.shape == (96, 96) and f.bf_high.dtype == np.float32 for f in fields)


def test_paste_refuses_unannotated_sources(sources):
    with pytest.raises(ValueError, match="no annotation"):
        S.cell_bank([dataclasses.replace(sources[0], amodal=None)])
    with pytest.raises(ValueError, match="max_overlap"):
        S.PasteSettings(max_overlap=1.5)


class _ConstantDisc(nn.Module):
    def forward(self, x):
        return [torch.zeros(x.shape[0], 1, 2, 2) + 0 * x.sum()]


def test_one_pix2pix_step_loss_terms_by_hand():
    x, y = torch.zeros(2, 1, 8, 8), torch.full((2, 2, 8, 8), 0.5)
    fake = torch.zeros(2, 2, 8, 8, requires_grad=True)
    d = P.d_losses(_ConstantDisc(), x, y, fake)
    g = P.g_losses(_ConstantDisc(), x, y, fake)
    log2 = float(np.log(2))
    assert d["d_real"].item() == pytest.approx(log2 / 2) and d["d_fake"].item() == pytest.approx(log2 / 2)
    assert g["g_gan"].item() == pytest.approx(log2) and g["g_l1"].item() == pytest.approx(100 * 0.5)
    ae = P.g_losses(None, x, y, fake)
    assert ae["mse"].item() == pytest.approx(0.25)
    assert ae["bce"].item() > P.g_losses(None, x, y, y)["bce"].item()  # smallest where the output is the target
    g["g_l1"].backward()
    assert fake.grad is not None and float(fake.grad.abs().sum()) > 0


def test_pix2pix_trains_and_translates(sources):
    settings = P.Settings(steps=2, batch=2, crop=32, features=(4, 8, 16, 32), disc_channels=4, device="cpu",
                          progress=False)
    tr = P.train(sources, settings, seed=0)
    assert set(tr.history.columns) >= {"d_real", "d_fake", "g_gan", "g_l1"} and len(tr.history) == 2
    out = tr(sources[:1], seed=0)
    assert out[0].bf_low.shape == (96, 96) and np.isfinite(out[0].bf_high).all()
    again = tr(sources[:1], seed=1)
    assert not np.array_equal(out[0].bf_low, again[0].bf_low)  # dropout stays on at inference
    fixed = [tr(sources[:1], seed=s, dropout=False)[0].bf_low for s in (0, 1)]
    assert np.array_equal(*fixed) and not np.array_equal(fixed[0], out[0].bf_low)
    ae = P.train(sources, dataclasses.replace(settings, adversarial=False), seed=0)
    assert {"mse", "bce"} <= set(ae.history.columns) and "g_gan" not in ae.history.columns and ae.disc is None
    assert 0 <= P.discriminator_accuracy(tr, sources[:2]) <= 1
    with pytest.raises(ValueError, match="without a discriminator"):
        P.discriminator_accuracy(ae, sources[:2])
    assert np.isnan(P.loss_drop(tr))  # fewer than 10 updates: no tenths to compare
    longer = P.train(sources, dataclasses.replace(settings, steps=20), seed=0)
    assert np.isfinite(P.loss_drop(longer)) and P.loss_drop(longer) < 1
    with pytest.raises(ValueError, match="source"):
        P.Settings(source="fluorescence")


def test_both_paste_modes_place_the_same_cells(sources):
    phase = S.paste_fields(sources, n=2, size=96, seed=4, mode="phase")
    bright = S.paste_fields(sources, n=2, size=96, seed=4, mode="brightfield")
    for a, b in zip(phase, bright):
        assert np.array_equal(a.amodal, b.amodal) and np.array_equal(a.nuclei, b.nuclei)
        assert np.array_equal(a.phase, b.phase)


def test_two_sample_test_tells_blur_from_real_but_not_real_from_real():
    """The classifier two-sample test: real fields of another draw (an A/A test) are
    indistinguishable; the same planes blurred are not."""
    from dataclasses import replace

    from scipy import ndimage as ndi

    from cellrepro.chapters.brightfield.fidelity import two_sample_test

    real = B.generate(n=8, n_pool=0, size=64, seed=5)[0]
    again = B.generate(n=8, n_pool=0, size=64, seed=6)[0]
    blurred = [replace(f, bf_low=ndi.gaussian_filter(f.bf_low, 2), bf_high=ndi.gaussian_filter(f.bf_high, 2)) for f in real]
    same = two_sample_test(real, again, steps=150, seed=0)
    blur = two_sample_test(real, blurred, steps=150, seed=0)
    assert blur["accuracy"] > 0.8 and blur["auc"] > 0.9
    assert abs(same["accuracy"] - 0.5) < 0.2 and same["n"] == 2 * 4 * 16
    assert two_sample_test(real, blurred, steps=150, seed=0) == blur  # deterministic
    assert two_sample_test(real, blurred, steps=150, seed=0, smooth=3.0)["accuracy"] < blur["accuracy"]  # both blurred
    with pytest.raises(ValueError, match="standardise"):
        two_sample_test(real, blurred, standardise="field")


def test_the_bce_term_is_smallest_where_the_output_is_the_target():
    y = torch.tensor([[-1.0, 0.0, 2.0]])
    out = torch.zeros_like(y, requires_grad=True)
    opt = torch.optim.SGD([out], lr=5.0)
    for _ in range(300):
        loss = P.g_losses(None, None, y, out)["bce"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    np.testing.assert_allclose(out.detach().numpy(), y.numpy(), atol=1e-2)


def test_default_discriminator_patches_are_smaller_than_the_default_crop():
    assert P.receptive_field(P.Settings()) < P.Settings().crop


def test_structure_is_zero_for_a_translator_that_ignores_its_input_and_one_for_the_truth(sources):
    from cellrepro.chapters.brightfield.fidelity import mean_planes, pixel_scores

    flat = mean_planes(sources, sources)
    assert pixel_scores(flat, sources, flat[0])["structure"] == 0.0
    assert pixel_scores(sources, sources, flat[0])["structure"] == pytest.approx(1.0)
    assert np.isnan(pixel_scores(sources, sources)["structure"])


def test_synthetic_seed_run_trains_every_arm_with_the_half_updates_arm_halved(tmp_path, monkeypatch):
    from cellrepro.chapters.brightfield import synthetic_data as SD
    from cellrepro.chapters.brightfield import train as bt

    monkeypatch.setenv("CELLREPRO_CACHE", str(tmp_path))
    fields = B.generate(n=3, n_pool=2, size=64, seed=1)
    settings = bt.Settings(steps=4, batch=2, crop=32, features=(4, 8, 16, 32), device="cpu", progress=False)
    gan = P.Settings(steps=2, batch=2, crop=32, features=(4, 8, 16, 32), disc_channels=4, device="cpu", progress=False)
    rows, extra = SD.seed_run(0, fields[0][:2], fields[0][2:], settings, fields[1], gan, n_extra=2)
    assert list(dict.fromkeys(rows["arm"])) == [a for a in SD.ARMS if a != SD.REAL]  # no oracle without real_extra
    rows, extra = SD.seed_run(0, fields[0][:2], fields[0][2:], settings, fields[1], gan, n_extra=2,
                              real_extra=fields[0][1:3])
    assert list(dict.fromkeys(rows["arm"])) == list(SD.ARMS) and len(rows) == len(SD.ARMS) * len(SD.HEADS)
    assert set(rows.loc[rows["arm"] == SD.PIX2PIX, "n_train"]) == {4} and set(rows.loc[rows["arm"] == SD.ORIGINAL, "n_train"]) == {2}
    assert rows[["structure", "exact_structure", "paste_agreement", "ap"]].notna().all().all()
    direct, exact = extra["extra"][SD.DIRECT], extra["extra"][SD.EXACT]
    assert all(np.array_equal(a.amodal, b.amodal) for a, b in zip(direct, exact))  # same cells, same places
    assert any(tmp_path.rglob("*.pkl"))  # the translator went through the shared-work cache
    with pytest.raises(ValueError, match="unknown arm"):
        SD.seed_run(0, fields[0][:2], fields[0][2:], settings, fields[1], gan, n_extra=2, arms=["synthetic (large)"])


def test_brightfield_paste_agrees_with_the_additive_render_away_from_overlaps_as_a_fresh_render_does(sources):
    phase = S.paste_fields(sources, n=3, size=96, seed=4, mode="phase")
    additive = S.translate_exact(phase, 0)
    assert S.paste_agreement(S.translate_exact(phase, 1), additive, 0) == pytest.approx(1.0, abs=0.1)
    shifted = [dataclasses.replace(f, bf_low=f.bf_low + 0.5, bf_high=f.bf_high - 0.5) for f in additive]
    assert S.paste_agreement(shifted, additive, 0) > 3
