"""Encoders: one modality's input -> a feature vector z of size ``out_dim``.

``mlp`` for feature views, ``cnn`` a small convolutional net for spectrograms and frames,
``conv1d`` for sequences of feature frames (MFCCs), ``resnet18`` (in ``resnet.py``) for the
paper profile.
"""
from __future__ import annotations

from torch import Tensor, nn

from ..registry import ENCODERS


@ENCODERS.register("mlp")
class MLPEncoder(nn.Module):
    """Two-layer perceptron: (B, in_dim) -> (B, out_dim)."""

    def __init__(self, in_dim: int, hidden: int = 64, out_dim: int = 32, dropout: float = 0.0):
        super().__init__()
        self.out_dim = out_dim
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, out_dim), nn.ReLU())

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.flatten(1))


@ENCODERS.register("cnn")
class ConvEncoder(nn.Module):
    """Three conv blocks (conv-BN-ReLU, the first two with stride 2) and a linear map: (B, C, H, W) -> (B, out_dim).

    Cheap enough for multi-seed runs on a laptop CPU with 16x16 frames and 33x33 spectrograms.
    """

    def __init__(self, in_channels: int = 1, width: int = 16, out_dim: int = 32):
        super().__init__()
        self.out_dim = out_dim

        def block(cin: int, cout: int, stride: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

        # strided convolutions instead of pooling: a quarter of the work at each stage
        self.conv = nn.Sequential(*block(in_channels, width, 2), *block(width, 2 * width, 2),
                                  *block(2 * width, 2 * width, 1))
        self.proj = nn.Sequential(nn.Linear(2 * width, out_dim), nn.ReLU())

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(self.conv(x).mean(dim=(2, 3)))


@ENCODERS.register("conv1d")
class Conv1dEncoder(nn.Module):
    """Three 1-D conv blocks over time (conv-BN-ReLU, the second with stride 2), a mean over time and
    a linear map: (B, C, T) -> (B, out_dim), with the C features of each frame as input channels.

    Any T works (the mean over time pools what is left); padded frames take part in the mean.
    """

    def __init__(self, in_channels: int = 13, width: int = 16, out_dim: int = 32, kernel_size: int = 3):
        super().__init__()
        self.out_dim = out_dim

        def block(cin: int, cout: int, stride: int) -> list[nn.Module]:
            return [nn.Conv1d(cin, cout, kernel_size, stride=stride, padding=kernel_size // 2, bias=False),
                    nn.BatchNorm1d(cout), nn.ReLU()]

        self.conv = nn.Sequential(*block(in_channels, width, 1), *block(width, 2 * width, 2),
                                  *block(2 * width, 2 * width, 1))
        self.proj = nn.Sequential(nn.Linear(2 * width, out_dim), nn.ReLU())

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(self.conv(x).mean(dim=2))


def build_encoder(name: str, **kwargs) -> nn.Module:
    """An encoder by registry name; it exposes ``out_dim``."""
    enc = ENCODERS.create(name, **kwargs)
    if not hasattr(enc, "out_dim"):
        raise TypeError(f"encoder {name!r} must set .out_dim")
    return enc


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


__all__ = ["Conv1dEncoder", "ConvEncoder", "MLPEncoder", "build_encoder", "count_parameters"]
