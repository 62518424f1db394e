# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Official HVQ-Trans checkpoints (github.com/RuiyingLu/HVQ-Trans): key mapping onto ``HVQTransModel``.

``HVQTrans.from_official_checkpoint`` builds a module from one; ``python -m anomalib_hvq.convert`` writes it
as an anomalib checkpoint.
The official network is mapped tensor for tensor: the lukemelas EfficientNet-B4 (``enc.*``, with its
BatchNorm statistics) onto timm ``tf_efficientnet_b4`` with static padding for 380 px (so that the
features match the official ones), the encoder and decoder layers (same ``nn.MultiheadAttention``
parameters), the per-class codebooks ``quantize_list_{1..5}.{k}`` (``(D, N)`` each) into our
``(K, N, D)`` buffers, and the per-class heads ``output_proj_list.{k}`` into ``(K, out, in)``. The
official, unused ``input_proj`` and the backbone layers after the last tapped block are dropped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from anomalib_hvq.models.components.file_load import torch_load

from .faithfulness import Faithfulness
from .torch_model import HVQTransModel

# `cls_list` of the official datasets/custom_dataset.py: the class index order of every official model.
OFFICIAL_MVTEC_CLASSES = (
    "bottle",
    "cable",
    "capsule",
    "carpet",
    "grid",
    "hazelnut",
    "leather",
    "metal_nut",
    "pill",
    "screw",
    "tile",
    "toothbrush",
    "transistor",
    "wood",
    "zipper",
)
OFFICIAL_BACKBONE = "tf_efficientnet_b4"
# The lukemelas EfficientNet-B4 pads for its nominal resolution, also on 224 px inputs.
OFFICIAL_PADDING_SIZE = 380

# Our names -> official names, applied in order to every non-backbone, non-per-class key.
_RENAMES = (
    (r"^input_proj\.", "quantize_conv_t."),
    (r"\.cross_attn\.", ".multihead_attn."),
    (r"\.ffn\.net\.0\.", ".linear1."),
    (r"\.ffn\.net\.3\.", ".linear2."),
)
# timm EfficientNet block modules -> lukemelas MBConvBlock modules.
_INVERTED_RESIDUAL = {
    "conv_pw": "_expand_conv",
    "bn1": "_bn0",
    "conv_dw": "_depthwise_conv",
    "bn2": "_bn1",
    "se.conv_reduce": "_se_reduce",
    "se.conv_expand": "_se_expand",
    "conv_pwl": "_project_conv",
    "bn3": "_bn2",
}
_DEPTHWISE_SEPARABLE = {
    "conv_dw": "_depthwise_conv",
    "bn1": "_bn1",
    "se.conv_reduce": "_se_reduce",
    "se.conv_expand": "_se_expand",
    "conv_pw": "_project_conv",
    "bn2": "_bn2",
}
_STEM = {"conv_stem": "_conv_stem", "bn1": "_bn0"}
# Official tensors with no counterpart here: the unused Linear(272, 256) and the backbone's head/classifier.
_DROPPED = re.compile(r"^(input_proj\.|enc\._conv_head\.|enc\._bn1\.|enc\._fc\.)")
_BACKBONE = "feature_extractor.backbone."
_ROUTER = "router."


@dataclass(frozen=True)
class _Rule:
    """How one of our tensors is made from official tensors.

    ``stack``: one official tensor per class, stacked on a new first axis; ``transpose``: each
    official tensor is transposed first (codebooks are ``(D, N)`` there, ``(N, D)`` here).
    """

    ours: str
    official: tuple[str, ...]
    stack: bool = False
    transpose: bool = False


def _lukemelas_names(backbone: nn.Module) -> dict[str, str]:
    """Map each timm EfficientNet module prefix (``blocks.1.0.conv_pw``) to its lukemelas name."""
    names = dict(_STEM)
    flat_index = 0
    for stage_index, stage in enumerate(backbone.blocks):
        for block_index, block in enumerate(stage):
            table = _INVERTED_RESIDUAL if hasattr(block, "conv_pwl") else _DEPTHWISE_SEPARABLE
            for timm_name, luke_name in table.items():
                names[f"blocks.{stage_index}.{block_index}.{timm_name}"] = f"_blocks.{flat_index}.{luke_name}"
            flat_index += 1
    return names


def _official_name(key: str, backbone_names: dict[str, str]) -> str:
    """Official name of one of our non-per-class keys."""
    if key.startswith(_BACKBONE):
        module, _, tensor = key.removeprefix(_BACKBONE).rpartition(".")
        return f"enc.{backbone_names[module]}.{tensor}"
    for pattern, replacement in _RENAMES:
        key = re.sub(pattern, replacement, key)
    return key


def _rules(model: nn.Module) -> list[_Rule]:
    """One rule per tensor of an ``HVQTransModel``'s state dict (router statistics have no official source)."""
    num_classes, num_levels = model.num_classes, model.num_layers + 1
    backbone_names = _lukemelas_names(model.feature_extractor.backbone)
    rules = []
    for key in model.state_dict():
        per_class = None
        if match := re.fullmatch(r"quantizer\.(top|lower\.(\d+))\.(embed|cluster_size|embed_avg)", key):
            # Top = quantize_list_{n}; lower.i quantizes E_{n-1-i}, the official quantize_list_{n-1-i}.
            level = num_levels if match[1] == "top" else num_levels - 1 - int(match[2])
            per_class, transpose = f"quantize_list_{level}.{{k}}.{match[3]}", match[3] != "cluster_size"
        elif match := re.fullmatch(r"output_heads\.(weight|bias)", key):
            per_class, transpose = f"output_proj_list.{{k}}.{match[1]}", False
        if per_class is not None:
            names = tuple(per_class.format(k=k) for k in range(num_classes))
            rules.append(_Rule(key, names, stack=True, transpose=transpose))
        elif key.startswith(_ROUTER):
            rules.append(_Rule(key, ()))
        else:
            rules.append(_Rule(key, (_official_name(key, backbone_names),)))
    return rules


def _skeleton(num_classes: int, dims: dict[str, int], backbone: str = OFFICIAL_BACKBONE) -> nn.Module:
    """Build an ``HVQTransModel`` on the meta device: key names and shapes, no memory, no weights."""
    with torch.device("meta"):
        return HVQTransModel(num_classes=num_classes, backbone=backbone, pre_trained=False, **dims)


def _num_official_classes(state_dict: dict[str, torch.Tensor]) -> int:
    """Count the per-class codebooks of an official state dict (0 if it has none)."""
    indices = {int(m[1]) for key in state_dict if (m := re.fullmatch(r"quantize_list_1\.(\d+)\.embed", key))}
    return max(indices) + 1 if indices else 0


def official_dims(state_dict: dict[str, torch.Tensor]) -> dict[str, int]:
    """Model sizes of an official state dict: ``hidden_dim``, ``num_layers``, ``ffn_dim``, ``num_codes``.

    Sizes that cannot be read (keys missing) keep the official defaults, so that the key check reports them.
    """
    dims = {"hidden_dim": 256, "num_layers": 4, "ffn_dim": 1024, "num_codes": 512}
    if "quantize_conv_t.weight" in state_dict:
        dims["hidden_dim"] = state_dict["quantize_conv_t.weight"].shape[0]
    layers = {int(m[1]) for key in state_dict if (m := re.match(r"encoder\.layers\.(\d+)\.", key))}
    if layers:
        dims["num_layers"] = max(layers) + 1
    if "encoder.layers.0.linear1.weight" in state_dict:
        dims["ffn_dim"] = state_dict["encoder.layers.0.linear1.weight"].shape[0]
    if "quantize_list_1.0.embed" in state_dict:
        dims["num_codes"] = state_dict["quantize_list_1.0.embed"].shape[-1]
    return dims


def _is_dropped(key: str, num_blocks: int) -> bool:
    """Whether an official key is intentionally not imported (unused or after the last tapped block)."""
    block = re.match(r"enc\._blocks\.(\d+)\.", key)
    return bool(_DROPPED.match(key)) or (block is not None and int(block[1]) >= num_blocks)


def _mismatch_error(missing: list[str], unexpected: list[str], mismatched: list[str], header: str) -> ValueError:
    """One error listing the problem keys, per-class keys collapsed to ``{k}``, top-level groups first."""

    def collapse(keys: list[str]) -> list[str]:
        return list(dict.fromkeys(re.sub(r"^(quantize_list_\d+|output_proj_list)\.\d+\.", r"\1.{k}.", k) for k in keys))

    def listing(title: str, keys: list[str]) -> str:
        if not keys:
            return ""
        groups = ", ".join(dict.fromkeys(key.split(".")[0] for key in keys))
        shown = "\n    ".join(keys[:20]) + (f"\n    ... and {len(keys) - 20} more" if len(keys) > 20 else "")
        return f"\n  {title} ({len(keys)}, in {groups}):\n    {shown}"

    return ValueError(
        header
        + listing("missing keys", collapse(missing))
        + listing("unexpected keys", collapse(unexpected))
        + listing("shape mismatches", mismatched)
    )


def convert_official_state_dict(
    state_dict: dict[str, torch.Tensor],
    num_classes: int = len(OFFICIAL_MVTEC_CLASSES),
    backbone: str = OFFICIAL_BACKBONE,
) -> dict[str, torch.Tensor]:
    """Convert an official ``HVQ_TR_switch(_OT)`` state dict into an ``HVQTransModel`` state dict.

    Args:
        state_dict: Official state dict, with or without DDP ``module.`` prefixes.
        num_classes: Number of classes the checkpoint must have (15 for the official MVTec model).
        backbone: timm name of the backbone the lukemelas ``enc.*`` weights are mapped onto.

    Returns:
        State dict for ``HVQTransModel(num_classes, backbone, **official_dims(state_dict))``; the label-free
        router's statistics, which the official model does not have, are zero.

    Raises:
        ValueError: If the state dict is not an HVQ-Trans one, has another number of classes, or has
            tensors of unexpected shape; the message lists the missing, unexpected and mismatched keys.

    """
    state_dict = {key.removeprefix("module."): value for key, value in state_dict.items()}
    found = _num_official_classes(state_dict)
    if found and found != num_classes:
        msg = (
            f"The checkpoint has {found} classes (codebooks quantize_list_1.0 .. {found - 1}), but {num_classes} "
            "were requested. Pass the checkpoint's class names in its training order (num_classes/class_names)."
        )
        raise ValueError(msg)
    skeleton = _skeleton(num_classes, official_dims(state_dict), backbone)
    expected = skeleton.state_dict()
    num_blocks = sum(len(stage) for stage in skeleton.feature_extractor.backbone.blocks)
    converted, consumed, missing, mismatched = {}, set(), [], []
    for rule in _rules(skeleton):
        if not rule.official:
            converted[rule.ours] = torch.zeros(expected[rule.ours].shape, dtype=expected[rule.ours].dtype)
            continue
        absent = [name for name in rule.official if name not in state_dict]
        missing += absent
        if absent:
            continue
        consumed.update(rule.official)
        # A codebook that is not 2-D is left as it is, to fail the shape check below with its name.
        tensors = [state_dict[name] for name in rule.official]
        tensors = [t.t() if rule.transpose and t.ndim == 2 else t for t in tensors]
        shape = expected[rule.ours].shape
        bad = [name for name, t in zip(rule.official, tensors, strict=True) if t.shape != shape[int(rule.stack) :]]
        mismatched += [f"{name} {tuple(state_dict[name].shape)} -> {rule.ours} {tuple(shape)}" for name in bad]
        if not bad:
            tensor = torch.stack(tensors) if rule.stack else tensors[0]
            converted[rule.ours] = tensor.detach().clone().to(expected[rule.ours].dtype)
    unexpected = sorted(k for k in state_dict.keys() - consumed if not _is_dropped(k, num_blocks))
    if missing or unexpected or mismatched:
        kind = "an HVQ-Trans checkpoint of this size" if found else "an official HVQ-Trans checkpoint"
        header = f"This state dict is not {kind} ({num_classes} classes, backbone {backbone})."
        raise _mismatch_error(missing, unexpected, mismatched, header)
    return converted


def to_official_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Inverse mapping: an ``HVQTransModel``'s tensors under official key names, in official layouts.

    The official key layout without its dropped extras (``input_proj``, later backbone blocks, head,
    classifier); useful for exporting to the official code and for testing the import.
    """
    state = model.state_dict()
    official = {}
    for rule in _rules(model):
        tensors = state[rule.ours].unbind(0) if rule.stack else (state[rule.ours],)
        for name, tensor in zip(rule.official, tensors, strict=False):
            official[name] = (tensor.t() if rule.transpose else tensor).clone()
    return official


def _numpy_scalar_globals() -> list[Any]:
    """Globals a pickled numpy float needs (numpy 1.x names it ``numpy.core``, numpy 2 ``numpy._core``)."""
    scalar = np._core.multiarray.scalar if hasattr(np, "_core") else np.core.multiarray.scalar
    dtypes = [getattr(np.dtypes, name) for name in ("Float64DType", "Float32DType") if hasattr(np, "dtypes")]
    return [
        scalar,
        (scalar, "numpy.core.multiarray.scalar"),
        (scalar, "numpy._core.multiarray.scalar"),
        np.dtype,
        *dtypes,
    ]


def read_official_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read the state dict of an official checkpoint (``{"state_dict": ...}`` or a bare state dict)."""
    # Besides tensors and optimizer state the official checkpoints hold the best metric as a numpy float:
    # allow that, and nothing else that could run code while unpickling.
    with torch.serialization.safe_globals(_numpy_scalar_globals()):
        checkpoint = torch_load(Path(path), "an official HVQ-Trans checkpoint", map_location="cpu")
    state_dict = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        msg = f"{path} holds no state dict of tensors; expected an official HVQ-Trans checkpoint."
        raise ValueError(msg)
    return state_dict


def official_arguments(state_dict: dict[str, torch.Tensor], class_names: Sequence[str]) -> dict[str, Any]:
    """``HVQTrans`` constructor arguments that reproduce an official checkpoint's network.

    The official backbone padding, no pre-trained download, and ground-truth ("oracle") class routing, since
    the official model has no label-free router statistics.
    """
    return {
        "backbone": OFFICIAL_BACKBONE,
        "pre_trained": False,
        "faithfulness": Faithfulness(backbone_static_padding=OFFICIAL_PADDING_SIZE),
        "class_names": list(class_names),
        "num_classes": len(class_names),
        "class_routing": "oracle",
        **official_dims(state_dict),
    }


def read_official_checkpoint(
    path: str | Path | dict[str, torch.Tensor], class_names: Sequence[str] | None = None
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """``HVQTrans`` constructor arguments and the torch model's state dict for an official checkpoint.

    Args:
        path: Official checkpoint file, e.g. ``ckpt_best.pth.tar``, or its state dict.
        class_names: Class names in the checkpoint's class-index order; default the 15 MVTec AD classes in the
            official (alphabetical) order.

    """
    class_names = list(class_names or OFFICIAL_MVTEC_CLASSES)
    state_dict = read_official_state_dict(path) if isinstance(path, str | Path) else path
    state_dict = {key.removeprefix("module."): value for key, value in state_dict.items()}
    return official_arguments(state_dict, class_names), convert_official_state_dict(state_dict, len(class_names))
