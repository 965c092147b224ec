"""Cross pseudo supervision (cellrepro.semi.cps), the CDNet loss and network: hand-computed values,
one training step through cellrepro.engine.train.fit, and shapes."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from cellrepro.instances.cdnet import stack_targets
from cellrepro.losses.cdnet import cdnet_loss
from cellrepro.nets.cdnet import CDNet
from cellrepro.semi.cps import CPS_ALPHA, SemiBatches, cps_loss, cps_step, cross_pseudo_supervision
from cellrepro.engine.train import TensorLoader, fit

TINY = (2, 2, 4, 4, 8, 2)


def logits(*probs_per_pixel: tuple[float, ...]) -> torch.Tensor:
    """(1, C, 1, N) logits whose softmax at pixel i is probs_per_pixel[i]."""
    return torch.log(torch.tensor(probs_per_pixel, dtype=torch.float64)).T[None, :, None, :].contiguous()


def test_cross_pseudo_supervision_hand_computed():
    # pixel 1: net A (1/4, 3/4) -> pseudo label 1; net B (4/5, 1/5) -> pseudo label 0
    # pixel 2: net A (9/10, 1/10) -> 0;            net B (1/5, 4/5) -> 1
    a = logits((0.25, 0.75), (0.9, 0.1)).requires_grad_()
    b = logits((0.8, 0.2), (0.2, 0.8)).requires_grad_()
    la, lb = cross_pseudo_supervision(a, b)
    la_value, lb_value = float(la.detach()), float(lb.detach())
    # L_u^(1) = mean(-log p_A[label of B]) = (-log 1/4 - log 1/10) / 2; L_u^(2) = (-log 1/5 - log 1/5) / 2
    assert la_value == pytest.approx((math.log(4) + math.log(10)) / 2)
    assert lb_value == pytest.approx(math.log(5))
    assert la_value + lb_value == pytest.approx(1.5 * math.log(10))  # = log(1000) / 2
    la.backward()  # the pseudo labels carry no gradient: L_u^(1) trains net A only
    assert b.grad is None and a.grad.abs().sum() > 0


def test_cps_loss_sums_both_directions_per_classification_head():
    uniform = torch.zeros(1, 9, 1, 2)
    out_a = {"mask": logits((0.25, 0.75), (0.9, 0.1)), "direction": uniform, "point": torch.ones(1, 1, 1, 2)}
    out_b = {"mask": logits((0.8, 0.2), (0.2, 0.8)), "direction": uniform, "point": torch.zeros(1, 1, 1, 2)}
    terms = cps_loss(out_a, out_b)
    assert set(terms) == {"cps_mask", "cps_direction"}  # the point map takes no cross term by default
    assert float(terms["cps_mask"]) == pytest.approx(1.5 * math.log(10))
    assert float(terms["cps_direction"]) == pytest.approx(2 * math.log(9))  # uniform: CE = log 9 whatever the label
    weighted = cps_loss(out_a, out_b, heads={"mask": 2.0}, point_weight=0.5)
    assert float(weighted["cps_mask"]) == pytest.approx(3 * math.log(10))
    assert float(weighted["cps_point"]) == pytest.approx(0.5 * (1 + 1))  # MSE(1, 0) both ways
    with pytest.raises(ValueError, match="heads names 'edges'"):
        cps_loss(out_a, out_b, heads={"edges": 1.0})
    with pytest.raises(ValueError, match="logits_a and logits_b"):
        cross_pseudo_supervision(torch.zeros(1, 3, 2, 2), torch.zeros(1, 2, 2, 2))


def test_cdnet_loss_hand_computed():
    out = {"mask": torch.zeros(1, 3, 2, 2), "direction": torch.zeros(1, 9, 2, 2), "point": torch.zeros(1, 1, 2, 2)}
    tgt = {"mask": torch.tensor([[[0, 1], [2, 1]]]), "direction": torch.tensor([[[0, 3], [8, 1]]]),
           "point": torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])}
    terms = cdnet_loss(out, tgt)
    assert float(terms["mask_ce"]) == pytest.approx(math.log(3), rel=1e-6)
    assert float(terms["direction_ce"]) == pytest.approx(math.log(9), rel=1e-6)
    assert float(terms["point_mse"]) == pytest.approx(0.25)
    # Dice with p = 1/3 everywhere: classes 0 and 2 (1 pixel) give 1 - (2/3)/(4/3 + 1) = 5/7,
    # class 1 (2 pixels) gives 1 - (4/3)/(4/3 + 2) = 3/5; the mean over classes is 71/105
    assert float(terms["mask_dice"]) == pytest.approx(71 / 105, rel=1e-4)
    halved = cdnet_loss(out, tgt, mask_weight=0.5, dice_weight=0, point_weight=0)
    assert set(halved) == {"mask_ce", "direction_ce"}
    assert float(halved["mask_ce"]) == pytest.approx(math.log(3) / 2, rel=1e-6)
    with pytest.raises(ValueError, match=r"targets\['mask'\]"):
        cdnet_loss(out, {**tgt, "mask": torch.zeros(1, 3, 3, dtype=torch.long)})
    with pytest.raises(ValueError, match="missing"):
        cdnet_loss({"mask": out["mask"]}, tgt)


def test_cdnet_shapes_and_parameters():
    net = CDNet(in_channels=3, features=TINY)
    out = net(torch.rand(2, 3, 32, 48))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "mask": (2, 3, 32, 48), "direction": (2, 9, 32, 48), "point": (2, 1, 32, 48)}
    plain = CDNet(in_channels=1, features=TINY, direction_guided=False)
    assert sum(p.numel() for p in plain.parameters()) < sum(p.numel() for p in CDNet(1, TINY).parameters())
    with pytest.raises(ValueError, match="features must be six"):
        CDNet(features=(4, 8, 16))
    with pytest.raises(ValueError, match=r"x must have shape \(B, 3, H, W\)"):
        net(torch.rand(2, 1, 32, 32))
    with pytest.raises(ValueError, match="at least 32 x 16 pixels"):
        net(torch.rand(2, 3, 16, 16))


def data(n: int = 2, size: int = 32, seed: int = 0):
    """n labelled images of two touching squares (with targets) and n unlabelled images."""
    rng = np.random.default_rng(seed)
    labels = []
    for _ in range(n):
        m = np.zeros((size, size), np.int32)
        r = int(rng.integers(2, 12))
        m[r:r + 16, 2:16], m[r:r + 16, 16:30] = 1, 2
        labels.append(m)
    images = torch.from_numpy(np.stack(labels) > 0).float()[:, None] + 0.1 * torch.rand(n, 1, size, size)
    return (images, *stack_targets(labels)), torch.rand(n, 1, size, size)


def nets(seed: int = 0):
    torch.manual_seed(seed)
    return CDNet(1, TINY), CDNet(1, TINY)  # different initialisations, as the paper's f1 and f2


def test_one_fit_step_logs_eq5_and_trains_both_nets():
    (x, mask, direction, point), xu = data()
    a, b = nets()
    before = [copy.deepcopy(n.state_dict()) for n in (a, b)]
    frozen = {"a": torch.optim.SGD(a.parameters(), lr=0.0), "b": torch.optim.SGD(b.parameters(), lr=0.0)}
    history = fit({"a": a, "b": b}, frozen,
                  cps_step(), SemiBatches(TensorLoader(x, mask, direction, point, batch_size=2, shuffle=False),
                                          TensorLoader(xu, batch_size=2, shuffle=False)),
                  max_steps=1, device="cpu", progress=False)
    row = history.iloc[0]
    # Eq. 5 recomputed outside the loop (lr = 0 keeps the weights as they were)
    with torch.no_grad():
        images = torch.cat([x, xu])
        oa, ob = a(images), b(images)
        targets = {"mask": mask, "direction": direction, "point": point}
        sup = sum(cdnet_loss({k: v[:2] for k, v in o.items()}, targets)[t] for o in (oa, ob)
                  for t in ("mask_ce", "mask_dice", "direction_ce", "point_mse"))
        cross = sum(cps_loss({k: v[2:] for k, v in oa.items()}, {k: v[2:] for k, v in ob.items()}).values())
    assert row["loss"] == pytest.approx(float(sup + CPS_ALPHA * cross), rel=1e-5)
    assert row["cps_mask"] + row["cps_direction"] == pytest.approx(float(CPS_ALPHA * cross), rel=1e-5)
    for net, state in zip((a, b), before):  # every parameter of both nets received a gradient
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
        assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())

    adam = {"a": torch.optim.Adam(a.parameters(), lr=1e-2), "b": torch.optim.Adam(b.parameters(), lr=1e-2)}
    history = fit({"a": a, "b": b}, adam,
                  cps_step(on_labelled=True), SemiBatches(TensorLoader(x, mask, direction, point, batch_size=2),
                                                          TensorLoader(xu, batch_size=2)),
                  max_steps=1, device="cpu", progress=False)
    for net, state in zip((a, b), before):
        assert any(not torch.equal(v, state[k]) for k, v in net.state_dict().items())
    assert {"a_mask_ce", "b_point_mse", "cps_mask", "cps_direction", "loss"} <= set(history.columns)


class _Ctx:
    """The part of cellrepro.engine.train.StepContext a step function uses."""

    def __init__(self, models):
        self.models = models

    def optimize(self, terms):
        total = sum(terms.values())
        total.backward()
        return total


def test_cross_terms_alone_train_both_nets_but_not_the_point_head():
    (x, mask, direction, point), xu = data()
    a, b = nets(1)
    step = cps_step(supervised=lambda out, tgt: {}, augment=lambda im: 1.0 - im)
    values = step(_Ctx({"a": a, "b": b}), ((x, mask, direction, point), (xu,)))
    assert set(values) == {"cps_mask", "cps_direction", "loss"}
    for net in (a, b):
        for head in (net.mask_head, net.direction_head, net.trunk):
            assert sum(float(p.grad.abs().sum()) for p in head.parameters()) > 0
        assert all(p.grad is None for p in net.point_head.parameters())
    with pytest.raises(ValueError, match="CPS batch"):
        step(_Ctx({"a": a, "b": b}), (x, mask))
    with pytest.raises(ValueError, match="alpha"):
        cps_step(alpha=-1)


def test_semi_batches_restart_the_unlabelled_loader():
    pairs = SemiBatches(TensorLoader(torch.arange(6), batch_size=2, shuffle=False),
                        TensorLoader(torch.arange(10, 13), batch_size=2, shuffle=False))
    assert len(pairs) == 3
    assert [u[0].tolist() for _, u in pairs] == [[10, 11], [12], [10, 11]]
