"""Organoid thesis methods: contrastive losses, fine-tuning losses, frozen encoder, best fold."""

import math

import pandas as pd
import pytest
import torch

from cellrepro.losses import finetune_loss, global_contrastive, local_contrastive
from cellrepro.nets import SplitUNet
from cellrepro.semi.contrastive import StageConfig, best_fold, kfold_indices, local_stage

TINY = (4, 4, 8, 8, 16, 4)


def test_global_loss_is_nt_xent():
    z1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    z2 = torch.tensor([[1.0, 1.0], [1.0, -1.0]]) / math.sqrt(2)
    tau = 0.5
    views = [z1[0], z1[1], z2[0], z2[1]]  # i and i + 2 are positives
    total = 0.0
    for i in range(4):
        sims = [float(torch.dot(views[i], views[k]) / (views[i].norm() * views[k].norm())) for k in range(4)]
        pos = sims[(i + 2) % 4]
        total += -math.log(math.exp(pos / tau) / sum(math.exp(s / tau) for k, s in enumerate(sims) if k != i))
    assert float(global_contrastive(z1, z2, tau)) == pytest.approx(total / 4, rel=1e-6)


def brute_force_local(features, labels, tau, form="literal"):
    """Eq. 3.4-3.5 with explicit loops over anchors and pairs, one block covering the map.

    literal: log(sum_P exp / sum_N exp) / |P| (Eq. 3.4 as printed); hu: mean over positives of
    log(exp(s_ip) / sum_{k != i} exp(s_ik)) (Hu et al. 2021)."""
    b, d, h, w = features.shape
    pixels = [(i, y, x) for i in range(b) for y in range(h) for x in range(w)]
    anchors_loss = []
    for a in pixels:
        if labels[a] == 0:
            continue  # background pixels are never anchors: their positive pairs are filtered out
        fa = features[a[0], :, a[1], a[2]]
        sim = {p: float(fa @ features[p[0], :, p[1], p[2]] / tau) for p in pixels}
        pos = [sim[p] for p in pixels if p != a and labels[p] == 1]
        neg = [sim[p] for p in pixels if labels[p] == 0]
        if form == "literal" and pos and neg:
            anchors_loss.append(math.log(sum(map(math.exp, pos)) / sum(map(math.exp, neg))) / len(pos))
        if form == "hu" and pos:
            denominator = math.log(sum(math.exp(v) for p, v in sim.items() if p != a))
            anchors_loss.append(sum(v - denominator for v in pos) / len(pos))
    return -sum(anchors_loss) / len(anchors_loss)


@pytest.mark.parametrize("form", ["hu", "literal"])
def test_local_loss_equals_brute_force_and_ignores_background_pairs(form):
    torch.manual_seed(0)
    feats = torch.nn.functional.normalize(torch.randn(2, 3, 4, 4), dim=1)
    labels = (torch.rand(2, 4, 4) > 0.6).long()
    labels[0, 0, 0], labels[1, 3, 3] = 1, 0
    ours = float(local_contrastive(feats, labels, temperature=0.5, block_size=4, form=form))
    assert ours == pytest.approx(brute_force_local(feats, labels, 0.5, form), rel=1e-5)
    # moving background features around changes nothing among background pairs themselves:
    # the loss depends on background pixels only as negatives of organoid anchors
    bg = labels == 0
    swapped = feats.clone()
    idx = bg.nonzero()
    perm = idx[torch.randperm(len(idx))]
    swapped[idx[:, 0], :, idx[:, 1], idx[:, 2]] = feats[perm[:, 0], :, perm[:, 1], perm[:, 2]]
    assert float(local_contrastive(swapped, labels, 0.5, 4, form=form)) == pytest.approx(ours, rel=1e-5)


def test_the_two_local_forms_on_a_hand_computed_case():
    # 3 pixels: two organoid pixels at cosine 0.6 to each other, a background pixel at cosine 0 and 0.8
    f = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    feats = torch.zeros(1, 2, 2, 2)
    for k, (y, x) in enumerate([(0, 0), (0, 1), (1, 0)]):
        feats[0, :, y, x] = f[k]
    feats[0, :, 1, 1] = f[2]  # a second background pixel, same feature as the first
    labels = torch.tensor([[[1, 1], [0, 0]]])
    tau = 0.5
    # anchor 0: positive s=0.6, negatives 0, 0 ; anchor 1: positive s=0.6, negatives 0.8, 0.8
    lit0 = math.log(math.exp(0.6 / tau) / (2 * math.exp(0.0)))
    lit1 = math.log(math.exp(0.6 / tau) / (2 * math.exp(0.8 / tau)))
    hu0 = 0.6 / tau - math.log(math.exp(0.6 / tau) + 2)
    hu1 = 0.6 / tau - math.log(math.exp(0.6 / tau) + 2 * math.exp(0.8 / tau))
    literal = float(local_contrastive(feats, labels, tau, block_size=2, form="literal"))
    hu = float(local_contrastive(feats, labels, tau, block_size=2, form="hu"))
    assert literal == pytest.approx(-(lit0 + lit1) / 2, rel=1e-6)
    assert hu == pytest.approx(-(hu0 + hu1) / 2, rel=1e-6)
    assert hu > 0 and literal != pytest.approx(hu)
    assert -lit0 < 0 < -hu0  # anchor 0's literal term is below zero; a Hu term never is
    with pytest.raises(ValueError, match="unknown local loss form"):
        local_contrastive(feats, labels, tau, 2, form="eq34")


def test_local_loss_over_blocks_matches_block_by_block_and_has_gradients():
    torch.manual_seed(1)
    feats = torch.nn.functional.normalize(torch.randn(3, 4, 8, 8), dim=1).requires_grad_()
    labels = (torch.rand(3, 8, 8) > 0.5).long()
    for form in ("hu", "literal"):
        whole = local_contrastive(feats, labels, 0.2, block_size=4, form=form)
        # the same sums, one block position at a time (anchor-weighted mean over blocks)
        num = den = 0.0
        for by in range(2):
            for bx in range(2):
                f = feats[:, :, by * 4:(by + 1) * 4, bx * 4:(bx + 1) * 4].detach()
                y = labels[:, by * 4:(by + 1) * 4, bx * 4:(bx + 1) * 4]
                brute = brute_force_local(f, y, 0.2, form)
                n = int((y == 1).sum())
                num, den = num + brute * n, den + n
        assert float(whole) == pytest.approx(num / den, rel=1e-5)
        whole.backward()
        assert feats.grad is not None and torch.isfinite(feats.grad).all() and feats.grad.abs().sum() > 0
        feats.grad = None


@pytest.mark.parametrize("form", ["hu", "literal"])
def test_local_loss_closed_form_gradient_matches_finite_differences(form):
    torch.manual_seed(2)
    feats = torch.nn.functional.normalize(torch.randn(2, 3, 4, 4, dtype=torch.float64), dim=1)
    labels = (torch.rand(2, 4, 4) > 0.5).long()
    labels[0, 0, 0], labels[0, 0, 1], labels[1, 3, 3] = 1, 1, 0
    # the loss computes in float32 internally; check the closed form in float64 on two groups
    from cellrepro.losses.contrastive import _BlockContrast

    f = feats.permute(0, 2, 3, 1).reshape(2, -1, 3).clone().requires_grad_()
    fg = labels.reshape(2, -1).double()
    anchor = fg.clone()
    n_pos = fg.sum(-1) - 1
    assert torch.autograd.gradcheck(lambda g: _BlockContrast.apply(g, fg, anchor, n_pos, 0.5, form == "literal"), (f,))


def test_local_loss_keeps_each_chunk_of_similarities_within_its_budget(monkeypatch):
    # book scale: 2 views x 8 crops of 64 px, 16 x 16 blocks: 16 groups of 4,096 pixels. All
    # pairs would be 16 x 4096^2 floats (1 GB); the loss forms at most CHUNK_ELEMENTS of them at a
    # time (here lowered to two groups' worth), forward and backward, and gives the same value
    from torch.overrides import TorchFunctionMode

    import cellrepro.losses.contrastive as contrastive

    class Largest(TorchFunctionMode):
        numel = 0

        def __torch_function__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if isinstance(out, torch.Tensor):
                Largest.numel = max(Largest.numel, out.numel())
            return out

    torch.manual_seed(0)
    feats = torch.nn.functional.normalize(torch.randn(16, 8, 64, 64), dim=1).requires_grad_()
    labels = (torch.rand(16, 64, 64) > 0.7).long()
    group = 16 * 16 * 16
    whole = float(local_contrastive(feats, labels, 0.07, 16))
    monkeypatch.setattr(contrastive, "CHUNK_ELEMENTS", 2 * group * group)
    with Largest():
        loss = local_contrastive(feats, labels, 0.07, 16)
        loss.backward()
    assert Largest.numel <= 2 * group * group < 16 * group * group / 4
    assert float(loss) == pytest.approx(whole, rel=1e-5)


def test_ssim_mae_of_identical_masks_is_zero():
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 8:24, 8:24] = 1.0
    logits = (mask * 2 - 1) * 50.0  # sigmoid -> exactly the mask in float32
    terms = finetune_loss("ssim_mae_dice")(logits, mask)
    assert float(terms["ssim"]) == pytest.approx(0.0, abs=1e-6) and float(terms["mae"]) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="unknown loss"):
        finetune_loss("focal")


def test_frozen_encoder_stays_bit_identical_through_the_local_stage():
    torch.manual_seed(0)
    net = SplitUNet(features=TINY)
    x = torch.rand(8, 1, 32, 32)
    m = (torch.rand(8, 1, 32, 32) > 0.5).float()
    encoder = [p.detach().clone() for p in net.encoder_parameters()]
    decoder = [p.detach().clone() for n, p in net.named_parameters() if "upcat" in n]
    local_stage(net, x, m, StageConfig(epochs=2, batch=4, lr=1e-2, temperature=0.07, block_size=16), frozen=True,
                device="cpu")
    assert all(torch.equal(a, b) for a, b in zip(encoder, net.encoder_parameters()))
    assert any(not torch.equal(a, p) for a, (n, p) in zip(decoder, [(n, p) for n, p in net.named_parameters() if "upcat" in n]))
    assert all(p.requires_grad for p in net.encoder_parameters())  # unfrozen again afterwards
    local_stage(net, x, m, StageConfig(epochs=1, batch=4, lr=1e-2, temperature=0.07, block_size=16), frozen=False,
                device="cpu")
    assert any(not torch.equal(a, b) for a, b in zip(encoder, net.encoder_parameters()))


def test_best_fold_is_the_lowest_mean_validation_loss():
    histories = [pd.DataFrame({"val_loss": [0.9, None, 0.1]}),  # mean 0.5, lowest last value
                 pd.DataFrame({"val_loss": [0.4, None, 0.4]}),  # mean 0.4: chosen
                 pd.DataFrame({"val_loss": [0.6, None, 0.3]})]
    assert best_fold(histories) == 1
    folds = kfold_indices(10, 3, seed=0)
    assert sorted(i for _, v in folds for i in v) == list(range(10))
    assert all(set(t).isdisjoint(v) for t, v in folds)
