"""MMCS method pieces against known answers: diameters, temporal ensembling, Eq. 1, the LR schedule,
the two-channel input, the rescaling, the synthetic family, and a tiny two-phase run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cellrepro.chapters.mmcs import schedule
from cellrepro.chapters.mmcs import train as mt
from cellrepro.data.crops import CropSampler
from cellrepro.data.synthetic import mmcs
from cellrepro.instances.diameter import image_diameter, mean_roi_diameter, rescale_labels, roi_diameters
from cellrepro.semi.temporal import TemporalEnsemble, ensemble_loss, ensemble_update, weighted_loss


def discs(radii, size=200):
    m = np.zeros((size, size), np.int32)
    yy, xx = np.mgrid[:size, :size]
    for i, r in enumerate(radii, start=1):
        cy, cx = 30 + 60 * ((i - 1) // 3), 30 + 60 * ((i - 1) % 3)
        m[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = i
    return m


def test_diameters_of_discs_of_known_radius():
    m = discs([8, 12, 20])
    d = roi_diameters(m)
    assert np.allclose(d, [16, 24, 40], atol=0.6)
    assert image_diameter(m) == pytest.approx(24, abs=0.6)
    # the self-adaptive diameter is the mean over every ROI of every image, not of per-image medians
    assert mean_roi_diameter([m, discs([10])]) == pytest.approx((16 + 24 + 40 + 20) / 4, abs=0.6)
    with pytest.raises(ValueError, match="no instance"):
        mean_roi_diameter([np.zeros((5, 5), int)])
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        roi_diameters(np.zeros((2, 3, 4), int))


def test_rescaled_labels_scale_the_diameter():
    m = discs([10, 15])
    assert np.allclose(roi_diameters(rescale_labels(m, 1.5)), 1.5 * roi_diameters(m), rtol=0.03)


def test_temporal_ensembling_matches_a_hand_computed_sequence():
    # Z0 = 1 (initial prediction); predictions 0, 1, 0.5 with alpha 0.6:
    # 0.6, 0.6 * 0.6 + 0.4 = 0.76, 0.6 * 0.76 + 0.4 * 0.5 = 0.656
    z = torch.ones(2)
    seq = []
    for p in (0.0, 1.0, 0.5):
        z = ensemble_update(z, torch.full((2,), p), 0.6)
        seq.append(round(float(z[0]), 6))
    assert seq == [0.6, 0.76, 0.656]
    # the class: flows averaged as they are, logits averaged as probabilities
    out0 = torch.zeros(3, 4, 4)
    out0[2] = 10.0  # sigmoid ~ 1
    ens = TemporalEnsemble([out0], alpha=0.5)
    out1 = torch.zeros(3, 4, 4)
    out1[0] = 2.0
    out1[2] = -10.0  # sigmoid ~ 0
    ens.update([out1])
    assert ens.updates == 1
    assert torch.allclose(ens.targets[0][0], torch.full((4, 4), 1.0))
    assert torch.allclose(ens.targets[0][2], torch.full((4, 4), 0.5), atol=1e-4)
    with pytest.raises(ValueError, match="outputs for 1"):
        ens.update([out1, out1])
    with pytest.raises(ValueError, match="alpha"):
        ensemble_update(torch.ones(1), torch.ones(1), 1.0)


def test_weighted_loss_is_eq_1():
    lab, unl = torch.tensor(3.0), torch.tensor(1.0)
    for w in (0.0, 0.05, 0.4, 0.7, 1.0):
        assert float(weighted_loss(lab, unl, w)) == pytest.approx((1 - w) * 3 + w * 1)
    with pytest.raises(ValueError, match="w must be"):
        weighted_loss(lab, unl, 1.5)


def test_ensemble_loss_is_smallest_at_the_target():
    t = torch.zeros(1, 3, 6, 6)
    t[:, :2] = 0.7
    t[:, 2] = 0.8
    best = torch.cat((t[:, :2], torch.logit(t[:, 2:])), 1)
    worse = best.clone()
    worse[:, 2] += 1.0
    assert float(ensemble_loss(best, t)) < float(ensemble_loss(worse, t))
    entropy = -(0.8 * np.log(0.8) + 0.2 * np.log(0.2))
    assert float(ensemble_loss(best, t)) == pytest.approx(entropy, abs=1e-5)


def test_lr_schedule_values_at_given_epochs():
    # Sec. 4.1 warm-up over ten epochs from zero; Table 10: halving every 100 epochs from the start, floor 0.0016
    assert schedule.lr_at(0) == 0.0
    assert schedule.lr_at(9) == pytest.approx(0.1)
    assert schedule.lr_at(3999) == pytest.approx(0.1)  # no decay: fixed 0.1 (Table 5's dataset1 column)
    values = {e: schedule.lr_at(e, decay_start=1500) for e in (1499, 1500, 1599, 1600, 1700, 2000, 2400)}
    assert values == pytest.approx({1499: 0.1, 1500: 0.05, 1599: 0.05, 1600: 0.025, 1700: 0.0125, 2000: 0.0016,
                                    2400: 0.0016})
    net = torch.nn.Linear(2, 2)
    opt = schedule.sgd(net.parameters())
    sched = schedule.scheduler(opt, warmup=3, decay_start=5, halve_every=2)
    seen = []
    for _ in range(9):
        seen.append(round(opt.param_groups[0]["lr"], 6))
        opt.step()
        sched.step()
    assert seen == [0.0, 0.05, 0.1, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025]
    assert opt.param_groups[0]["momentum"] == 0.9 and opt.param_groups[0]["weight_decay"] == 1e-5


def test_synthetic_family_carries_the_nucleus_and_the_diameters():
    lab, unl = mmcs.generate(24, 6, 160, seed=3)
    assert len(lab) == 24 and len(unl) == 6 and all(im.labels is None for im in unl)
    with_nucleus = [im for im in lab if im.nucleus.any()]
    assert 8 <= len(with_nucleus) <= 22  # two images in three
    assert all(im.modality == "fluorescence" for im in with_nucleus)
    assert all(not im.nucleus.any() for im in lab if im.modality != "fluorescence")
    # touching cells: some pairs of different instances are 4-neighbours
    m = lab[0].labels
    touching = ((m[:, 1:] != m[:, :-1]) & (m[:, 1:] > 0) & (m[:, :-1] > 0)).sum()
    assert touching > 0
    rho = mean_roi_diameter(im.labels for im in lab)
    assert 30 < rho < 50  # dataset1's self-adaptive diameter is about 40 px
    ext, _ = mmcs.generate(6, 0, 160, seed=3, style="external")
    assert mean_roi_diameter(im.labels for im in ext) < rho
    again, _ = mmcs.generate(2, 0, 160, seed=3)
    assert np.array_equal(again[1].image, lab[1].image)
    with pytest.raises(ValueError, match="style must be"):
        mmcs.generate(1, 0, 160, style="cyto3")


def test_two_channel_input_and_rescaling():
    lab, _ = mmcs.generate(6, 0, 128, seed=1)
    im = next(i for i in lab if i.nucleus.any())
    x = mt.mmcs_input(im)
    assert x.shape == (2, 128, 128)
    assert torch.allclose(x[0], torch.from_numpy(im.image[..., 1] / 255.0).float())
    assert float(x[1].abs().sum()) > 0
    assert float(mt.mmcs_input(im, nucleus=False)[1].abs().sum()) == 0.0
    small = mt.rescaled(im, 0.5, min_side=96)
    assert small.image.shape[:2] == (96, 96) and small.labels.shape == (96, 96)  # 64 px, padded to 96
    assert small.labels[64:].max() == 0
    assert image_diameter(small.labels) == pytest.approx(0.5 * image_diameter(im.labels), rel=0.1)


def test_crop_sampler_takes_given_targets_and_flips_them_as_flows():
    lab, _ = mmcs.generate(1, 0, 64, seed=0)
    target = torch.zeros(3, 64, 64)
    target[1] = 1.0  # dx = +1 everywhere
    s = CropSampler("cellpose", lab, 32, flips=True, to_tensor=mt.mmcs_input, targets=[(target,)])
    torch.manual_seed(0)
    signs = set()
    for _ in range(20):
        x, t = s.sample(torch.tensor([0]))
        assert x.shape == (1, 2, 32, 32)
        signs.add(float(t[0, 1, 0, 0]))
    assert signs == {1.0, -1.0}  # an x-flip negates dx


def test_phase1_then_phase2_runs_and_keeps_rho():
    lab, unl = mmcs.generate(3, 3, 96, seed=2)
    s = mt.Settings(steps=3, batch=2, crop=64, device="cpu", refresh_every=1)
    net = mt.train_phase1(lab, s, seed=0)
    assert net.diam_mean == pytest.approx(mean_roi_diameter(im.labels for im in lab))
    net2 = mt.train_phase2(net, lab, unl, s, seed=0)
    assert net2.diam_mean == net.diam_mean and net2.ensemble_updates == 2  # refreshed before updates 2 and 3
    assert {"labelled", "unlabelled", "loss"} <= set(net2.train_history.columns)
    control = mt.train_phase2(net, lab, [], mt.Settings(steps=2, batch=2, crop=64, device="cpu", w=0.0), seed=0)
    assert "unlabelled" not in control.train_history.columns
    pred = mt.predict(net2, lab[0], diameter=net.diam_mean * 1.5)
    assert pred.shape == lab[0].labels.shape
    with pytest.raises(ValueError, match="needs unlabelled"):
        mt.train_phase2(net, lab, [], s, seed=0)
    with pytest.raises(ValueError, match="crop must be a multiple"):
        mt.Settings(crop=30)


def test_phase1_evaluates_on_held_out_images_every_n_updates():
    lab, _ = mmcs.generate(2, 0, 96, seed=4)
    test, _ = mmcs.generate(2, 0, 96, seed=5)
    s = mt.Settings(steps=4, batch=2, crop=64, device="cpu")
    net = mt.train_phase1(lab, s, seed=0, eval_images=test, eval_every=2)
    f1 = net.train_history["val_f1"]
    assert f1.notna().sum() == 2 and f1.dropna().between(0, 1).all()  # after updates 2 and 4


def test_phase2_scores_named_sets_at_checkpoints_for_the_schedule_tables():
    from cellrepro.chapters.mmcs import protocol

    lab, unl = mmcs.generate(2, 2, 96, seed=6)
    val, _ = mmcs.generate(1, 0, 96, seed=7)
    test, _ = mmcs.generate(2, 0, 96, seed=8)
    s = mt.Settings(steps=2, batch=2, crop=64, device="cpu", features=(4, 8), refresh_every=1, warmup=0)
    net = mt.train_phase1(lab, s, seed=0)
    run = protocol.schedule(s, epochs=3000, decay_from=2000, updates_per_1000=2, w=0.4)
    assert (run.steps, run.decay_start, run.halve_every, run.w) == (6, 4, 1, 0.4)
    curve = protocol.schedule_run(net, lab, unl, run, 0, val, test, eval_every=2, arm="decay")
    assert curve["step"].tolist() == [2, 4, 6] and curve["arm"].eq("decay").all()
    assert curve[["val_f1", "test_f1"]].stack().between(0, 1).all()
    assert curve["lr"].iloc[-1] < curve["lr"].iloc[0]  # halving from update 4
    no_val = protocol.schedule_run(net, lab, unl, protocol.schedule(s, 1000, None, 2, 0.05), 0, [], test, 1)
    assert no_val["val_f1"].isna().all() and no_val["step"].tolist() == [1, 2]


@pytest.mark.parametrize("arch, head", [("unet", "flows"), ("unet", "semantic"), ("swinunetr", "semantic")])
def test_table8_baselines_train_and_predict_instances(arch, head):
    lab, _ = mmcs.generate(2, 0, 64, seed=9)
    s = mt.Settings(steps=2, batch=2, crop=64, device="cpu", features=(4, 8), arch=arch, head=head)
    net = mt.train_phase1(lab, s, seed=0)
    assert (net.arch, net.head) == (arch, head)
    pred = mt.predict(net, lab[0])
    assert pred.shape == lab[0].labels.shape and pred.dtype == np.int32
    if head == "semantic":
        with pytest.raises(ValueError, match="flows head"):
            mt.train_phase2(net, lab, lab, s, seed=0)


def test_architecture_settings_are_checked():
    from cellrepro.chapters.mmcs import architectures

    with pytest.raises(ValueError, match="multiple of 32"):
        mt.Settings(crop=48, arch="swinunetr")
    with pytest.raises(ValueError, match="arch must be one of"):
        mt.Settings(arch="resnet")
    with pytest.raises(ValueError, match="head must be 'flows'"):
        architectures.build("cpnet", "semantic")
    net = architectures.build("unet", "flows", 2, (4, 8, 16))
    assert net.size_multiple == 4 and net(torch.zeros(1, 2, 32, 32)).shape == (1, 3, 32, 32)


def test_a_test_image_at_its_true_diameter_reaches_the_net_as_its_training_counterpart(monkeypatch):
    lab, _ = mmcs.generate(3, 0, 128, seed=2)
    im = lab[0]
    net = torch.nn.Identity()
    net.diam_mean = 33.3
    seen = []

    def capture(net_, image, nucleus, device=None):
        seen.append(mt.mmcs_input(image, nucleus))
        return torch.zeros(3, *np.asarray(image.image).shape[:2])

    monkeypatch.setattr(mt, "_net_output", capture)
    mt.predict(net, im, diameter=mt.TRUE_DIAMETER)
    training = mt._at_rho(im, image_diameter(im.labels), net.diam_mean, 0)  # what _train feeds the net
    assert torch.equal(seen[0], mt.mmcs_input(training, True))
    assert mt.inference_factor(net, im, mt.TRUE_DIAMETER) == pytest.approx(33.3 / image_diameter(im.labels))
    assert mt.inference_factor(net, im, None) == 1.0 and mt.inference_factor(net, im, 33.3) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="needs the image's labels"):
        mt.predict(net, mt.dataclasses.replace(im, labels=None), diameter=mt.TRUE_DIAMETER)
    with pytest.raises(ValueError, match="a number, None"):
        mt.predict(net, im, diameter="rho")
