# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Static TF-"same" padding fixed for one design resolution, as the lukemelas EfficientNet computes it.

timm's ``tf_efficientnet_*`` networks pad their strided convolutions dynamically ("same" for the actual
input size). The lukemelas EfficientNet-PyTorch copy that UniAD and HVQ-Trans vendor pads statically,
for the network's nominal resolution (380 px for B4), whatever the input size. At 224 px the two
differ in the 5x5 stride-2 depthwise convolution of EfficientNet-B4's third stage (56 -> 28): pad
(2, 2) instead of (1, 2), a one-pixel shift that reaches the stride-8 and stride-16 features.
Replacing the dynamic convolutions by statically padded ones reproduces the official features.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import torch
from timm.layers import Conv2dSame
from timm.layers.padding import pad_same_arg
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

try:  # Only created when timm is configured for export; absent from some timm versions.
    from timm.layers.conv2d_same import Conv2dSameExport

    DYNAMIC_SAME_CONVS: tuple[type[nn.Module], ...] = (Conv2dSame, Conv2dSameExport)
except ImportError:  # pragma: no cover
    DYNAMIC_SAME_CONVS = (Conv2dSame,)


class StaticSamePadConv2d(nn.Conv2d):
    """Convolution that zero-pads its input by a fixed amount, then convolves without padding.

    It shares the weight (and bias) of the convolution it replaces, so state-dict keys are unchanged.

    Args:
        conv: Convolution to replace (its own ``padding`` must be zero).
        padding: ``(left, right, top, bottom)`` zero padding.

    """

    def __init__(self, conv: nn.Conv2d, padding: tuple[int, int, int, int]) -> None:
        super().__init__(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            conv.stride,
            0,
            conv.dilation,
            conv.groups,
            conv.bias is not None,
            device="meta",  # the parameters are replaced by the original ones below
        )
        self.weight, self.bias = conv.weight, conv.bias
        self.static_padding = tuple(int(p) for p in padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pad ``x`` ``(B, C, H, W)`` statically and convolve."""
        return super().forward(F.pad(x, self.static_padding))

    def extra_repr(self) -> str:
        """Show the static padding next to the usual convolution settings."""
        return f"{super().extra_repr()}, static_padding={self.static_padding}"


def _input_sizes(model: nn.Module, image_size: tuple[int, int]) -> dict[str, tuple[int, int]]:
    """Spatial input size of every dynamic-"same" convolution when ``model`` sees ``image_size`` images."""
    sizes: dict[str, tuple[int, int]] = {}

    def record(name: str) -> Callable[[nn.Module, tuple[torch.Tensor, ...]], None]:
        def hook(_: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            sizes[name] = tuple(args[0].shape[-2:])

        return hook

    handles = [
        module.register_forward_pre_hook(record(name))
        for name, module in model.named_modules()
        if isinstance(module, DYNAMIC_SAME_CONVS)
    ]
    # Shapes only: run on meta tensors, so nothing is computed and the real weights and statistics are untouched.
    tensors = itertools.chain(model.named_parameters(), model.named_buffers())
    meta = {name: torch.empty_like(tensor, device="meta") for name, tensor in tensors}
    try:
        with torch.no_grad():
            functional_call(model, meta, (torch.zeros(1, 3, *image_size, device="meta"),))
    finally:
        for handle in handles:
            handle.remove()
    return sizes


def apply_static_same_padding(model: nn.Module, image_size: int | tuple[int, int]) -> dict[str, tuple[int, ...]]:
    """Replace ``model``'s dynamic-"same" convolutions by ones padded statically for ``image_size`` inputs.

    Args:
        model: Network with timm ``Conv2dSame`` layers, taking ``(B, 3, H, W)`` images.
        image_size: Design resolution the padding is computed for (380 for the official EfficientNet-B4).

    Returns:
        ``(left, right, top, bottom)`` padding per replaced convolution, by module name.

    """
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    paddings = {}
    for name, input_size in _input_sizes(model, size).items():
        conv = model.get_submodule(name)
        padding = pad_same_arg(list(input_size), list(conv.kernel_size), list(conv.stride), list(conv.dilation))
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, StaticSamePadConv2d(conv, tuple(padding)))
        paddings[name] = tuple(padding)
    return paddings
