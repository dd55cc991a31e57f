"""ResNet-18 (the paper profile's encoder): parameter count, shapes, frame pooling, init."""
import math

import pytest
import torch
from torch import nn

from mmlib.models.encoders import build_encoder, count_parameters
from mmlib.models.resnet import ResNet18


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    return ResNet18(in_channels=3).eval()


def test_resnet18_has_the_standard_parameter_count(resnet):
    # torchvision's resnet18 has 11,689,512 parameters, 513,000 of them in the fc layer
    assert count_parameters(resnet) == 11_689_512 - 513_000


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
