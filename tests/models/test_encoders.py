"""Encoders: output shapes, out_dim, ResNet-18 init and frame pooling, parameter counts."""
import math

import pytest
import torch
from torch import nn

import mmlib as mm
from mmlib.models.encoders import ConvEncoder, MLPEncoder, build_encoder, count_parameters
from mmlib.models.resnet import ResNet18
from mmlib.registry import ENCODERS


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    return ResNet18(in_channels=3).eval()


def test_count_parameters_by_hand():
    # Linear(5, 7) + Linear(7, 3): 5*7 + 7 + 7*3 + 3
    assert count_parameters(MLPEncoder(in_dim=5, hidden=7, out_dim=3)) == 66
    # convs 1*4*9, 4*8*9, 8*8*9; BN 2*4, 2*8, 2*8; Linear(8, 4)
    assert count_parameters(ConvEncoder(in_channels=1, width=4, out_dim=4)) == 36 + 288 + 576 + 8 + 16 + 16 + 36


def test_resnet18_has_the_standard_parameter_count(resnet):
    # torchvision's resnet18 has 11,689,512 parameters, 513,000 of them in the fc layer
    assert count_parameters(resnet) == 11_689_512 - 513_000


def test_mlp_output_shape_and_flattening():
    enc = build_encoder("mlp", in_dim=6, hidden=8, out_dim=4)
    assert enc.out_dim == 4
    assert enc(torch.randn(5, 6)).shape == (5, 4)
    x = torch.randn(3, 2, 3)  # flattened to (3, 6)
    assert torch.equal(enc(x), enc(x.reshape(3, 6)))
    assert (enc(torch.randn(7, 6)) >= 0).all()  # ends in a ReLU


@pytest.mark.parametrize("shape", [(2, 1, 8, 8), (3, 1, 65, 17), (1, 1, 12, 12)])
def test_cnn_output_shape(shape):
    enc = build_encoder("cnn", in_channels=1, width=4, out_dim=5).eval()
    assert enc.out_dim == 5
    out = enc(torch.randn(*shape))
    assert out.shape == (shape[0], 5)
    assert (out >= 0).all()


def test_cnn_with_more_input_channels():
    enc = ConvEncoder(in_channels=3, width=2, out_dim=3).eval()
    assert enc(torch.randn(2, 3, 9, 9)).shape == (2, 3)


def test_resnet18_on_images_frames_and_audio(resnet):
    with torch.no_grad():
        assert resnet.out_dim == 512
        assert resnet(torch.randn(2, 3, 32, 32)).shape == (2, 512)
        assert resnet(torch.randn(2, 3, 2, 32, 32)).shape == (2, 512)
        audio = ResNet18(in_channels=1).eval()
        assert audio(torch.randn(2, 1, 32, 16)).shape == (2, 512)


def test_resnet18_pools_frames_as_the_mean_of_per_frame_features(resnet):
    x = torch.randn(1, 3, 2, 32, 32)
    with torch.no_grad():
        pooled = resnet(x)
        per_frame = torch.stack([resnet(x[:, :, t]) for t in range(2)]).mean(0)
    assert torch.allclose(pooled, per_frame, atol=1e-5)


def test_resnet18_init(resnet):
    bns = [m for m in resnet.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == 1 + 16 + 3  # stem, two per block, three downsampling
    for bn in bns:
        assert torch.all(bn.weight == 1) and torch.all(bn.bias == 0)
    # kaiming normal, fan_out: std = sqrt(2 / (64 * 7 * 7))
    w = resnet.stem[0].weight
    assert w.std().item() == pytest.approx(math.sqrt(2 / (64 * 49)), rel=0.05)


def test_resnet18_smaller_widths():
    net = build_encoder("resnet18", in_channels=1, widths=(4, 8, 8, 16)).eval()
    assert net.out_dim == 16
    assert net(torch.randn(2, 1, 16, 16)).shape == (2, 16)


def test_encoder_without_out_dim_is_an_error(monkeypatch):
    monkeypatch.setitem(ENCODERS._items, "no-dim", lambda: nn.Identity())
    with pytest.raises(TypeError, match=r"encoder 'no-dim' must set \.out_dim"):
        build_encoder("no-dim")


def test_unknown_encoder_lists_known_ones():
    with pytest.raises(mm.UnknownNameError, match=r"Did you mean 'cnn'\?.*Known encoders: cnn, mlp, resnet18"):
        build_encoder("cnnn")
