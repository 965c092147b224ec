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


def brute_force_local(features, labels, tau):
    """Eq. 3.4-3.5 with explicit loops over anchors and pairs, one block covering the map."""
    b, d, h, w = features.shape
    pixels = [(i, y, x) for i in range(b) for y in range(h) for x in range(w)]
    anchors_loss = []
    for a in pixels:
        if labels[a] == 0:
            continue  # background pixels are never anchors: their positive pairs are filtered out
        fa = features[a[0], :, a[1], a[2]]
        pos = [float(torch.exp(fa @ features[p[0], :, p[1], p[2]] / tau)) for p in pixels if p != a and labels[p] == 1]
        neg = [float(torch.exp(fa @ features[p[0], :, p[1], p[2]] / tau)) for p in pixels if labels[p] == 0]
        if pos and neg:
            anchors_loss.append(math.log(sum(pos) / sum(neg)) / len(pos))
    return -sum(anchors_loss) / len(anchors_loss)


def test_local_loss_equals_brute_force_and_ignores_background_pairs():
    torch.manual_seed(0)
    feats = torch.nn.functional.normalize(torch.randn(2, 3, 4, 4), dim=1)
    labels = (torch.rand(2, 4, 4) > 0.6).long()
    labels[0, 0, 0], labels[1, 3, 3] = 1, 0
    ours = float(local_contrastive(feats, labels, temperature=0.5, block_size=4))
    assert ours == pytest.approx(brute_force_local(feats, labels, 0.5), rel=1e-5)
    # moving background features around changes nothing among background pairs themselves:
    # the loss depends on background pixels only as negatives of organoid anchors
    bg = labels == 0
    swapped = feats.clone()
    idx = bg.nonzero()
    perm = idx[torch.randperm(len(idx))]
    swapped[idx[:, 0], :, idx[:, 1], idx[:, 2]] = feats[perm[:, 0], :, perm[:, 1], perm[:, 2]]
    assert float(local_contrastive(swapped, labels, 0.5, 4)) == pytest.approx(ours, rel=1e-5)


def test_local_loss_blocks_and_degenerate_cases():
    feats = torch.nn.functional.normalize(torch.randn(1, 3, 8, 8), dim=1)
    assert float(local_contrastive(feats, torch.zeros(1, 8, 8), 0.07, 4)) == 0.0  # no anchors
    with pytest.raises(ValueError, match="multiple of the block size"):
        local_contrastive(feats, torch.zeros(1, 8, 8), 0.07, 3)


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
