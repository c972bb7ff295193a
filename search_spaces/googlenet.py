"""GoogLeNet (Inception v1), Szegedy et al., "Going Deeper with Convolutions", CVPR 2015.

Its parallel branches are not expressible in the macro spec, so it is a module family
of its own; :mod:`search_spaces.classic` registers it by name as ``googlenet``.
"""

from __future__ import annotations

import torch
from torch import nn

from search_spaces.errors import InvalidArchitecture
from search_spaces.layers import ConvBNAct
from search_spaces.macro.shapes import conv_output_size


class Inception(nn.Module):
    """The Inception module with dimension reductions (Szegedy et al. 2015, fig. 2b).

    Four parallel branches concatenated along channels: 1x1; 1x1 reduce then 3x3;
    1x1 reduce then the "5x5" branch; 3x3 max pool then 1x1 projection. The 1x1
    reductions are the point: on a 28x28x192 map, 32 5x5 filters cost 120.4M
    multiplies, a 16-filter 1x1 bottleneck first cuts that to 2.4M + 10.0M.

    ``branch3_kernel`` defaults to 3, as in torchvision (pytorch/vision#906), so that
    parameter counts match torchvision's GoogLeNet; 5 gives the paper's 5x5.
    """

    def __init__(
        self,
        in_channels: int,
        ch1x1: int,
        ch3x3red: int,
        ch3x3: int,
        ch5x5red: int,
        ch5x5: int,
        pool_proj: int,
        branch3_kernel: int = 3,
    ) -> None:
        super().__init__()
        eps = 1e-3  # torchvision's BasicConv2d
        self.branch1 = ConvBNAct(in_channels, ch1x1, 1, bn_eps=eps)
        self.branch2 = nn.Sequential(
            ConvBNAct(in_channels, ch3x3red, 1, bn_eps=eps), ConvBNAct(ch3x3red, ch3x3, 3, padding=1, bn_eps=eps)
        )
        self.branch3 = nn.Sequential(
            ConvBNAct(in_channels, ch5x5red, 1, bn_eps=eps),
            ConvBNAct(ch5x5red, ch5x5, branch3_kernel, padding=branch3_kernel // 2, bn_eps=eps),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True), ConvBNAct(in_channels, pool_proj, 1, bn_eps=eps)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], dim=1)


# (in, 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj): table 1 of the paper
_INCEPTION_TABLE = {
    "3a": (192, 64, 96, 128, 16, 32, 32),
    "3b": (256, 128, 128, 192, 32, 96, 64),
    "4a": (480, 192, 96, 208, 16, 48, 64),
    "4b": (512, 160, 112, 224, 24, 64, 64),
    "4c": (512, 128, 128, 256, 24, 64, 64),
    "4d": (512, 112, 144, 288, 32, 64, 64),
    "4e": (528, 256, 160, 320, 32, 128, 128),
    "5a": (832, 256, 160, 320, 32, 128, 128),
    "5b": (832, 384, 192, 384, 48, 128, 128),
}


class GoogLeNet(nn.Module):
    """GoogLeNet (Inception v1), Szegedy et al., "Going Deeper with Convolutions",
    CVPR 2015, as torchvision builds it (batch norm in every conv, no auxiliary
    classifiers): 6,624,904 parameters on 224x224x3 with 1000 classes.

    ``stem="small"`` replaces the 7x7/2 conv, the first two max pools and the 1x1/3x3
    convs by one 3x3 conv with 192 filters, the usual CIFAR adaptation, so that 8x8
    inputs still reach the 5b modules with a 2x2 map.
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 1000,
        stem: str = "paper",
        branch3_kernel: int = 3,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        eps = 1e-3
        if stem == "paper":
            self.stem = nn.Sequential(
                ConvBNAct(in_channels, 64, 7, stride=2, padding=3, bn_eps=eps),
                nn.MaxPool2d(3, stride=2, ceil_mode=True),
                ConvBNAct(64, 64, 1, bn_eps=eps),
                ConvBNAct(64, 192, 3, padding=1, bn_eps=eps),
                nn.MaxPool2d(3, stride=2, ceil_mode=True),
            )
        elif stem == "small":
            self.stem = ConvBNAct(in_channels, 192, 3, padding=1, bn_eps=eps)
        else:
            raise InvalidArchitecture(f"GoogLeNet stem must be 'paper' or 'small', not {stem!r}")

        def inception(key: str) -> Inception:
            return Inception(*_INCEPTION_TABLE[key], branch3_kernel=branch3_kernel)

        self.inception3 = nn.Sequential(inception("3a"), inception("3b"))
        self.pool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True) if stem == "paper" else nn.MaxPool2d(3, 2, padding=1)
        self.inception4 = nn.Sequential(*(inception(k) for k in ("4a", "4b", "4c", "4d", "4e")))
        self.pool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True) if stem == "paper" else nn.MaxPool2d(3, 2, padding=1)
        self.inception5 = nn.Sequential(inception("5a"), inception("5b"))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool3(self.inception3(self.stem(x)))
        x = self.pool4(self.inception4(x))
        x = self.avgpool(self.inception5(x))
        out: torch.Tensor = self.fc(self.dropout(torch.flatten(x, 1)))
        return out


def googlenet_min_input(stem: str, size: int) -> int:
    """Map size reaching the 5b modules, to refuse inputs that would collapse."""
    if stem == "paper":
        size = (size + 6 - 7) // 2 + 1
        for _ in range(2):
            size = -(-(size - 3) // 2) + 1 if size >= 3 else 0
        size = -(-(size - 3) // 2) + 1 if size >= 3 else 0
        return -(-(size - 2) // 2) + 1 if size >= 2 else 0
    for _ in range(2):
        size = conv_output_size(size, 3, 2, 1)
    return size
