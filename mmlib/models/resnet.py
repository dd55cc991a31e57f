"""ResNet-18 as used by the papers' audio-visual protocols, written here (no torchvision).

BasicBlock [2, 2, 2, 2], widths 64/128/256/512, 7x7 stride-2 stem with max-pooling, no fc;
the output is average-pooled to 512-d. Visual input (B, C, T, H, W) runs each of the T frames
through the 2-D network and pools over (T, H, W); audio input (B, 1, F, T) pools over (F, T).
Init: conv kaiming-normal (fan_out), BN weight 1 and bias 0.

Reference: ogm_opm.md §5 (model).
"""
from __future__ import annotations

from torch import Tensor, nn

from ..registry import ENCODERS


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + (x if self.down is None else self.down(x)))


@ENCODERS.register("resnet18")
class ResNet18(nn.Module):
    """(B, C, H, W) or (B, C, T, H, W) -> (B, 512)."""

    def __init__(self, in_channels: int = 3, widths: tuple[int, ...] = (64, 128, 256, 512)):
        super().__init__()
        self.out_dim = widths[-1]
        self.stem = nn.Sequential(nn.Conv2d(in_channels, widths[0], 7, 2, 3, bias=False),
                                  nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
        layers, cin = [], widths[0]
        for i, w in enumerate(widths):
            stride = 1 if i == 0 else 2
            layers += [BasicBlock(cin, w, stride), BasicBlock(w, w, 1)]
            cin = w
        self.layers = nn.Sequential(*layers)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 5:  # (B, C, T, H, W): frames through the 2-D net, pool over T, H, W
            b, c, t, h, w = x.shape
            fmap = self.layers(self.stem(x.transpose(1, 2).reshape(b * t, c, h, w)))
            return fmap.reshape(b, t, fmap.shape[1], -1).mean(dim=(1, 3))
        return self.layers(self.stem(x)).mean(dim=(2, 3))
