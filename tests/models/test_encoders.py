"""Encoders: output shapes, out_dim, parameter counts."""
import pytest
import torch
from torch import nn

import mmlib as mm
from mmlib.models.encoders import Conv1dEncoder, ConvEncoder, MLPEncoder, build_encoder, count_parameters
from mmlib.registry import ENCODERS


def test_count_parameters_by_hand():
    # Linear(5, 7) + Linear(7, 3): 5*7 + 7 + 7*3 + 3
    assert count_parameters(MLPEncoder(in_dim=5, hidden=7, out_dim=3)) == 66
    # convs 1*4*9, 4*8*9, 8*8*9; BN 2*4, 2*8, 2*8; Linear(8, 4)
    assert count_parameters(ConvEncoder(in_channels=1, width=4, out_dim=4)) == 36 + 288 + 576 + 8 + 16 + 16 + 36


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


@pytest.mark.parametrize("shape", [(2, 13, 32), (3, 13, 5), (1, 13, 1)])
def test_conv1d_output_shape_for_any_number_of_frames(shape):
    enc = build_encoder("conv1d", in_channels=13, width=4, out_dim=5).eval()
    assert enc.out_dim == 5
    out = enc(torch.randn(*shape))
    assert out.shape == (shape[0], 5)
    assert (out >= 0).all()  # ends in a ReLU


def test_conv1d_parameters_by_hand():
    # convs 3*4*3, 4*8*3, 8*8*3 (kernel 3, no bias); BN 2*4, 2*8, 2*8; Linear(8, 5)
    assert count_parameters(Conv1dEncoder(in_channels=3, width=4, out_dim=5)) == 36 + 96 + 192 + 8 + 16 + 16 + 45


def test_conv1d_pools_over_time():
    # with kernel 1 each output frame sees one input frame; with 7 frames the stride-2 block keeps
    # frames 0, 2, 4, 6 either way round, so reversing time leaves the mean over time unchanged
    enc = Conv1dEncoder(in_channels=2, width=3, out_dim=4, kernel_size=1).eval()
    x = torch.randn(2, 2, 7)
    assert torch.allclose(enc(x), enc(x.flip(2)), atol=1e-6)


def test_encoder_without_out_dim_is_an_error(monkeypatch):
    monkeypatch.setitem(ENCODERS._items, "no-dim", lambda: nn.Identity())
    with pytest.raises(TypeError, match=r"encoder 'no-dim' must set \.out_dim"):
        build_encoder("no-dim")


def test_unknown_encoder_lists_known_ones():
    with pytest.raises(mm.UnknownNameError, match=r"Did you mean 'cnn'\?.*Known encoders: cnn, conv1d, mlp, resnet18"):
        build_encoder("cnnn")
