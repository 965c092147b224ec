"""U-Net with a VGG16-BN encoder (cellrepro.nets.vgg_unet): shapes, the encoder is torchvision's,
a hand-counted parameter total, and loading weights from a path."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.models import vgg16_bn

from cellrepro.nets.vgg_unet import VGGUNet, vgg16_bn_features


@pytest.fixture(scope="module")
def torchvision_features() -> nn.Sequential:
    """torchvision's own ``vgg16_bn(weights=None).features`` (built once: ~3 s with its classifier)."""
    return vgg16_bn(weights=None).features


def tiny(**kw) -> VGGUNet:
    torch.manual_seed(0)
    return VGGUNet(**{"in_channels": 3, "out_channels": 2, "width": 16, **kw})


@pytest.mark.parametrize("in_channels, out_channels, width, size", [(3, 2, 16, 32), (1, 1, 32, 16), (2, 4, 8, 48)])
def test_output_shape(in_channels, out_channels, width, size):
    net = VGGUNet(in_channels, out_channels, width=width).eval()
    assert net(torch.rand(2, in_channels, size, size)).shape == (2, out_channels, size, size)


def test_width_one_is_torchvisions_encoder_and_a_hand_counted_decoder(torchvision_features):
    net = VGGUNet(in_channels=3, out_channels=2)
    layers = [m for stage in net.encoder for m in stage]
    reference = list(torchvision_features)[:43]                      # VGG's fifth pool is not used
    assert [repr(m) for m in layers] == [repr(m) for m in reference]
    assert set(net.encoder.state_dict()) == {f"{s}.{k}" for k in torchvision_features.state_dict()
                                             for s in [_stage(int(k.split(".")[0]))] if s is not None}

    def upcat(cin, skip, cout):  # 2x2 deconv to cin/2 (with bias), then two bias-free 3x3 convs with BatchNorm
        return cin * (cin // 2) * 4 + cin // 2 + (skip + cin // 2) * cout * 9 + 2 * cout + cout * cout * 9 + 2 * cout

    encoder = sum(p.numel() for p in torchvision_features.parameters())
    decoder = upcat(512, 512, 256) + upcat(256, 256, 128) + upcat(128, 128, 64) + upcat(64, 64, 32) + 32 * 2 + 2
    assert sum(p.numel() for p in net.parameters()) == encoder + decoder == 18_555_362


def _stage(index: int) -> int | None:
    bounds = (0, 6, 13, 23, 33, 43)
    return next((s for s in range(5) if bounds[s] <= index < bounds[s + 1]), None)


def test_narrow_encoder_keeps_vgg_layer_layout(torchvision_features):
    wide, narrow = torchvision_features, vgg16_bn_features(16)
    assert [type(m) for m in wide] == [type(m) for m in narrow]
    convs = [m.out_channels for m in narrow if isinstance(m, nn.Conv2d)]
    assert convs == [4, 4, 8, 8, 16, 16, 16, 32, 32, 32, 32, 32, 32]


@pytest.mark.parametrize("kwargs, match", [({"width": 0}, "width"), ({"width": 1.5}, "width"),
                                           ({"out_channels": 0}, "out_channels")])
def test_bad_construction_is_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VGGUNet(**kwargs)


def test_bad_input_is_refused():
    net = tiny()
    with pytest.raises(ValueError, match="multiples of 16"):
        net(torch.rand(1, 3, 40, 32))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        net(torch.rand(1, 1, 32, 32))


def test_weights_round_trip(tmp_path):
    src = tiny().eval()
    path = tmp_path / "unet.pt"
    torch.save(src.state_dict(), path)
    torch.manual_seed(1)
    dst = VGGUNet(3, 2, width=16, weights=path).eval()
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(src(x), dst(x))


def test_weights_from_a_torchvision_style_vgg_file_fill_the_encoder_only(tmp_path):
    vgg = nn.Module()
    vgg.features = vgg16_bn_features(16)
    vgg.classifier = nn.Linear(2, 2)                     # ignored, as torchvision's classifier is
    for p in vgg.parameters():
        nn.init.constant_(p, 0.25)
    path = tmp_path / "vgg16_bn.pth"
    torch.save(vgg.state_dict(), path)
    assert "features.0.weight" in torch.load(path, weights_only=True)
    before = tiny()
    net = tiny(weights=path)
    assert all(torch.all(p == 0.25) for p in net.encoder.parameters())
    for a, b in zip(net.decoder.parameters(), before.decoder.parameters()):
        assert torch.equal(a, b)


def test_missing_weights_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.pt"):
        tiny(weights=tmp_path / "nowhere.pt")


def test_unreadable_or_non_state_dict_files_are_refused(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="junk.pt is not a torch state dict"):
        tiny(weights=junk)
    tensor = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), tensor)
    with pytest.raises(ValueError, match="dict of tensors"):
        tiny(weights=tensor)
    other = tmp_path / "other.pt"
    torch.save({"layer.weight": torch.zeros(3)}, other)
    with pytest.raises(ValueError, match="neither VGGUNet keys"):
        tiny(weights=other)


def test_weights_of_another_shape_are_refused_with_the_keys(tmp_path):
    path = tmp_path / "wide.pt"
    torch.save(tiny(width=8).state_dict(), path)
    fits = r"does not fit VGGUNet\(in_channels=3, out_channels=2, width=16\).*wrong shape"
    with pytest.raises(ValueError, match=fits):
        tiny(weights=path)
    path = tmp_path / "three_classes.pt"
    torch.save(tiny(out_channels=3).state_dict(), path)
    with pytest.raises(ValueError, match="wrong shape: head.bias, head.weight"):
        tiny(weights=path)
    state = tiny().state_dict()
    state.pop("head.bias")
    torch.save(state, path)
    with pytest.raises(ValueError, match="missing: head.bias"):
        tiny(weights=path)
