"""SE-U-Net with decoupled decoders (cellrepro.nets.seunet; brightfield thesis Sec. 4.2-4.2.3):
output keys and shapes for 1-4 heads, one whole decoder per head, gradients from every head into
the shared encoder, SE layers where Sec. 4.2.1 puts them, and input validation."""

from __future__ import annotations

import pytest
import torch
from monai.networks.blocks import ChannelSELayer

from cellrepro.nets.seunet import HEAD_NAMES, SEUNet

HEAD_SETS = [("cytoplasm",), ("cytoplasm", "nuclei"), ("cytoplasm", "overlap", "border"),
             ("cytoplasm", "nuclei", "border", "background")]  # the last: the thesis's 4-head model (Eq. 4.2)


def count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def se_layers(module) -> int:
    return sum(isinstance(m, ChannelSELayer) for m in module.modules())


@pytest.mark.parametrize("heads", HEAD_SETS, ids=lambda h: f"{len(h)}-head")
def test_keys_and_shapes_default_widths(heads):
    torch.manual_seed(0)
    net = SEUNet(2, heads=heads).eval()
    assert net.size_multiple == 8
    with torch.no_grad():
        out = net(torch.rand(2, 2, 64, 64))
    assert list(out) == list(heads)
    assert all(v.shape == (2, 1, 64, 64) for v in out.values())


def test_out_channels_per_head_and_levels():
    net = SEUNet(1, heads=("nuclei", "border"), features=(4, 8, 16, 32, 64), out_channels_per_head=3).eval()
    assert net.size_multiple == 16
    with torch.no_grad():
        out = net(torch.rand(1, 1, 32, 48))
    assert {k: tuple(v.shape) for k, v in out.items()} == {"nuclei": (1, 3, 32, 48), "border": (1, 3, 32, 48)}


def test_parameters_grow_by_one_decoder_per_head():
    nets = [SEUNet(1, heads=h) for h in HEAD_SETS]
    encoder = count(nets[0].encoder)
    decoder = count(nets[0].decoders["cytoplasm"])
    for n_heads, net in enumerate(nets, start=1):
        assert count(net.encoder) == encoder  # one shared encoder whatever the heads
        assert count(net) == encoder + n_heads * decoder
    # a head is a whole decoder, far more than a 1 x 1 output layer
    assert decoder > 100 * count(nets[0].decoders["cytoplasm"].out)


def test_gradients_reach_the_encoder_from_every_head_and_heads_are_decoupled():
    torch.manual_seed(0)
    net = SEUNet(1, heads=HEAD_NAMES, features=(4, 8, 16))
    x = torch.rand(2, 1, 16, 16)
    for head in HEAD_NAMES:
        net.zero_grad(set_to_none=True)
        net(x)[head].square().mean().backward()
        first, deepest = net.encoder[0], net.encoder[-1]
        for level in (first, deepest):
            grads = [p.grad for p in level.parameters()]
            assert all(g is not None for g in grads) and sum(g.abs().sum() for g in grads) > 0, head
        for other, dec in net.decoders.items():  # no weight shared between decoders
            touched = any(p.grad is not None for p in dec.parameters())
            assert touched == (other == head), (head, other)


def test_se_layers_in_encoder_and_decoders():
    levels = 4
    net = SEUNet(1, heads=("cytoplasm", "overlap"), features=(8, 16, 32, 64))
    assert se_layers(net.encoder) == levels
    assert all(se_layers(level) == 1 for level in net.encoder)
    assert all(se_layers(dec) == levels - 1 for dec in net.decoders.values())
    enc_only = SEUNet(1, heads=("cytoplasm", "overlap"), features=(8, 16, 32, 64), decoder_se=False)
    assert se_layers(enc_only.encoder) == levels and se_layers(enc_only) == levels


def test_se_rescales_channels():
    """The encoder's SE layer multiplies each channel by a gate in (0, 1) (squeeze + excitation)."""
    torch.manual_seed(0)
    net = SEUNet(1, heads=("cytoplasm",), features=(4, 8)).eval()
    level = net.encoder[0]
    x = torch.rand(1, 1, 8, 8)
    with torch.no_grad():
        before = level[0](x)
        after = level[1](before)
    ratio = (after / before.clamp_min(1e-12))[before.abs() > 1e-6]
    assert ((ratio > 0) & (ratio < 1)).all()


@pytest.mark.parametrize("heads, match", [
    ((), "at least one head"),
    ([], "at least one head"),
    (("cytoplasm", "cytoplasm"), "duplicate"),
    (("cytoplasm", "membrane"), "unknown head"),
    (("Nuclei",), "unknown head"),
    ("cytoplasm", "sequence of head names"),
])
def test_bad_heads(heads, match):
    with pytest.raises(ValueError, match=match):
        SEUNet(1, heads=heads)


@pytest.mark.parametrize("features", [(), (16,), (16, 0), (16, -32), (16, 32.0), 16, (16, True)])
def test_bad_features(features):
    with pytest.raises(ValueError, match="features"):
        SEUNet(1, features=features)


def test_bad_channels_and_inputs():
    with pytest.raises(ValueError, match="in_channels"):
        SEUNet(0)
    with pytest.raises(ValueError, match="out_channels_per_head"):
        SEUNet(1, out_channels_per_head=0)
    net = SEUNet(2, features=(4, 8, 16))
    with pytest.raises(ValueError, match="multiples of 4"):
        net(torch.rand(1, 2, 18, 16))
    with pytest.raises(ValueError, match=r"\(B, 2, H, W\)"):
        net(torch.rand(1, 1, 16, 16))


def test_without_se_is_the_same_unet_minus_the_se_layers():
    with_se, plain = SEUNet(2, features=(4, 8, 16)), SEUNet(2, features=(4, 8, 16), se=False)
    assert not any(isinstance(m, ChannelSELayer) for m in plain.modules())
    se_params = sum(p.numel() for m in with_se.modules() if isinstance(m, ChannelSELayer) for p in m.parameters())
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(with_se) - count(plain) == se_params > 0
    out = plain(torch.rand(1, 2, 16, 16))
    assert {k: tuple(v.shape) for k, v in out.items()} == {h: (1, 1, 16, 16) for h in plain.heads}
