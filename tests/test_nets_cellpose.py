"""Cellpose-style network (cellrepro.nets.cellpose) and the Cellpose loss (cellrepro.losses.flows):
shapes, the style vector, a hand-computed loss, and instances recovered from perfect flows."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from cellrepro.instances import masks_to_flows
from cellrepro.losses.flows import FLOW_SCALE, CellposeLoss, cellpose_loss, cellpose_loss_terms, flow_targets
from cellrepro.nets.cellpose import CellposeNet, outputs_to_masks, predict_instances


def tiny(**kw) -> CellposeNet:
    torch.manual_seed(0)
    return CellposeNet(**{"in_channels": 2, "features": (8, 16, 32), **kw})


def three_cells() -> np.ndarray:
    """Two touching rectangles and a separate disc, labels 4, 9, 2, on a 30 x 37 image (not a
    multiple of the network's size_multiple, to exercise padding)."""
    m = np.zeros((30, 37), np.int32)
    m[3:13, 3:13] = 4
    m[3:13, 13:24] = 9
    yy, xx = np.mgrid[:30, :37]
    m[(yy - 21) ** 2 + (xx - 27) ** 2 <= 30] = 2
    return m


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """True when two label images hold the same instances up to renumbering."""
    if not np.array_equal(a > 0, b > 0):
        return False
    pairs = set(zip(a[a > 0].tolist(), b[b > 0].tolist()))
    return len(pairs) == len({p[0] for p in pairs}) == len({p[1] for p in pairs})


# ---- network -----------------------------------------------------------------------------------

@pytest.mark.parametrize("in_channels, features, size", [(2, (8, 16), 16), (3, (8, 16, 32), 32), (1, (4,), 5)])
def test_output_and_style_shapes(in_channels, features, size):
    net = CellposeNet(in_channels=in_channels, features=features).eval()
    out, style = net.forward_with_style(torch.rand(2, in_channels, size, size))
    assert out.shape == (2, 3, size, size)
    assert style.shape == (2, features[-1])
    assert torch.allclose(style.norm(dim=1), torch.ones(2), atol=1e-6)
    assert net.size_multiple == 2 ** (len(features) - 1)
    assert net(torch.zeros(1, in_channels, size, size)).shape == (1, 3, size, size)


def test_paper_widths_have_the_expected_parameter_count():
    """Cellpose's widths (32, 64, 128, 256) with 2 input channels: 6,600,843 parameters (counted
    once; a change of architecture shows here)."""
    net = CellposeNet(in_channels=2)
    assert sum(p.numel() for p in net.parameters()) == 6_600_843


def test_make_style_is_the_normalised_spatial_mean():
    deepest = torch.arange(1.0, 4.0).reshape(1, 3, 1, 1).expand(2, 3, 4, 5).clone()  # channel c holds c + 1
    deepest[1] *= 7.0                                                                 # scale does not matter
    expected = torch.tensor([1.0, 2.0, 3.0]) / math.sqrt(14.0)
    style = CellposeNet.make_style(deepest)
    assert torch.allclose(style, expected.expand(2, 3), atol=1e-6)


def test_style_reaches_the_decoder_and_style_off_removes_it():
    net = tiny().eval()
    x = torch.rand(1, 2, 16, 16)
    with torch.no_grad():
        skips = net.encode(x)
        own = net.make_style(skips[-1])
        other = torch.nn.functional.normalize(torch.randn_like(own), dim=1)
        assert torch.allclose(net.decode(skips, own), net(x), atol=1e-6)
        assert (net.decode(skips, own) - net.decode(skips, other)).abs().max() > 1e-4
        net.style_on = False
        assert torch.allclose(net.decode(skips, own), net.decode(skips, other))
        assert torch.allclose(net.decode(skips, own), net.decode(skips, torch.zeros_like(own)))


def test_each_image_has_its_own_style_in_eval_mode():
    net = tiny().eval()
    a, b = torch.rand(1, 2, 16, 16), torch.rand(1, 2, 16, 16)
    with torch.no_grad():
        out_ab, style_ab = net.forward_with_style(torch.cat((a, b)))
        out_a, style_a = net.forward_with_style(a)
    assert torch.allclose(out_ab[:1], out_a, atol=1e-5) and torch.allclose(style_ab[:1], style_a, atol=1e-6)
    assert not torch.allclose(style_ab[0], style_ab[1])


@pytest.mark.parametrize("kwargs, match", [({"features": ()}, "features"), ({"features": (8, 0)}, "features"),
                                           ({"kernel_size": 4}, "kernel_size"), ({"in_channels": 0}, "in_channels")])
def test_bad_construction_is_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CellposeNet(**kwargs)


def test_bad_input_is_refused():
    net = tiny()
    with pytest.raises(ValueError, match="multiples of 4"):
        net(torch.rand(1, 2, 18, 16))
    with pytest.raises(ValueError, match=r"\(B, 2, H, W\)"):
        net(torch.rand(1, 3, 16, 16))


# ---- loss --------------------------------------------------------------------------------------

def hand_case():
    """1 x 3 x 2 x 2 output and target with a loss computed by hand below."""
    target = torch.zeros(1, 3, 2, 2)
    target[0, 0, 0, 0] = 1.0          # dy at the top-left pixel
    target[0, 1, 0, 1] = 1.0          # dx at the top-right pixel
    target[0, 2, 0, :] = 1.0          # the top row is foreground
    output = torch.zeros(1, 3, 2, 2)
    output[0, 0, 0, 0] = 5.0          # exact (5 x 1)
    output[0, 1, 0, 1] = 3.0          # error 3 - 5 = -2
    output[0, 1, 1, 1] = 1.0          # error 1 - 0 = 1
    output[0, 2] = torch.tensor([[0.0, math.log(3)], [-math.log(3), 0.0]])
    return output, target


def test_loss_matches_a_hand_computation():
    output, target = hand_case()
    # flow: squared errors 0, 4, 1 over 8 elements -> MSE 5 / 8; times Cellpose's 1/2
    flow = 0.5 * 5 / 8
    # BCE: logit 0 -> log 2 (twice); logit log 3 with target 1 and -log 3 with target 0 -> log(4/3) each
    cellprob = (2 * math.log(2) + 2 * math.log(4 / 3)) / 4
    terms = cellpose_loss_terms(output, target)
    assert float(terms["flow"]) == pytest.approx(flow, abs=1e-6)
    assert float(terms["cellprob"]) == pytest.approx(cellprob, abs=1e-6)
    assert float(cellpose_loss(output, target)) == pytest.approx(flow + cellprob, abs=1e-6)
    assert float(CellposeLoss()(output, target)) == pytest.approx(flow + cellprob, abs=1e-6)
    # unscaled targets and unit weight: errors 5 - 1 = 4 and 3 - 1 = 2, and 1 -> (16 + 4 + 1) / 8
    assert float(cellpose_loss_terms(output, target, flow_scale=1.0, flow_weight=1.0)["flow"]) == pytest.approx(21 / 8)


def test_flow_targets_are_unscaled_flows_and_foreground():
    m = three_cells()
    t = flow_targets(m)
    assert t.shape == (3, *m.shape) and t.dtype == torch.float32
    assert np.allclose(t[:2].numpy(), masks_to_flows(m))
    assert torch.equal(t[2], torch.from_numpy(m > 0).float())
    batch = flow_targets(torch.from_numpy(np.stack([m, np.zeros_like(m)])))
    assert batch.shape == (2, 3, *m.shape) and torch.equal(batch[0], t) and not batch[1].any()


@pytest.mark.parametrize("out_shape, tgt_shape, match", [((1, 2, 4, 4), (1, 2, 4, 4), "output"),
                                                         ((1, 3, 4, 4), (1, 3, 4, 5), "target")])
def test_loss_refuses_bad_shapes(out_shape, tgt_shape, match):
    with pytest.raises(ValueError, match=match):
        cellpose_loss(torch.zeros(out_shape), torch.zeros(tgt_shape))
    with pytest.raises(ValueError, match="flow_scale"):
        cellpose_loss(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4), flow_scale=0)


def test_a_few_steps_lower_the_loss_on_one_image():
    torch.manual_seed(0)
    m = three_cells()[:28, :36]
    target = flow_targets(m)[None]
    x = torch.stack([torch.from_numpy(m > 0).float(), torch.zeros(m.shape)])[None] + 0.1 * torch.rand(1, 2, *m.shape)
    net = tiny()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        loss = cellpose_loss(net(x), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.7 * losses[0]


# ---- prediction --------------------------------------------------------------------------------

class PerfectNet(nn.Module):
    """Returns the Cellpose-scaled targets of fixed masks, on the padded input's grid."""

    size_multiple = 8

    def __init__(self, masks: np.ndarray):
        super().__init__()
        self.target = flow_targets(masks)
        self.seen: tuple[int, ...] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen = tuple(x.shape)
        assert x.shape[-2] % 8 == 0 and x.shape[-1] % 8 == 0 and not self.training
        out = torch.zeros(x.shape[0], 3, *x.shape[-2:])
        h, w = self.target.shape[-2:]
        out[:, :2, :h, :w] = FLOW_SCALE * self.target[:2]
        out[:, 2] = -10.0
        out[:, 2, :h, :w] = 10.0 * (2 * self.target[2] - 1)
        return out


def test_predict_instances_recovers_the_instances_from_perfect_flows():
    m = three_cells()
    net = PerfectNet(m).train()
    pred = predict_instances(net, np.zeros((2, *m.shape), np.float32))
    assert net.seen == (1, 2, 32, 40)                # zero-padded to multiples of 8
    assert pred.shape == m.shape and pred.dtype == np.int32
    assert pred.max() == 3 and same_partition(m, pred)
    assert net.training                               # the caller's mode is restored


def test_unscaled_flows_need_flow_scale_one():
    """outputs_to_masks divides by flow_scale: perfect unscaled flows come back with flow_scale=1."""
    m = three_cells()
    t = flow_targets(m)
    out = torch.cat((t[:2], 10 * (2 * t[2:] - 1)))
    assert same_partition(m, outputs_to_masks(out, flow_scale=1.0))
    with pytest.raises(ValueError, match="output"):
        outputs_to_masks(out[:2])


def test_predict_instances_runs_a_real_tiny_network():
    net = tiny(in_channels=3)
    labels = predict_instances(net, torch.rand(3, 21, 19), min_size=0)
    assert labels.shape == (21, 19) and labels.dtype == np.int32 and labels.min() >= 0
    assert net.training
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        predict_instances(net, torch.rand(1, 3, 16, 16))
