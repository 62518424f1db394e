# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Building a model from a checkpoint without the network.

A checkpoint holds every backbone weight, yet Lightning's ``load_from_checkpoint`` (used by
``Engine.export(ckpt_path=...)`` and ``anomalib export --ckpt_path``) first rebuilds the model from
its saved constructor arguments: with ``pre_trained=True`` that downloads ImageNet weights (fails
offline, e.g. on an edge device) and with ``backbone_weights=<file>`` it reads a file that exists only
on the training machine. :func:`load_checkpoint_offline` builds the backbone empty instead, lets the
checkpoint fill it, and keeps the saved arguments in ``hparams``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import torch
from anomalib.utils.serialization import anomalib_safe_globals
from lightning.pytorch import LightningModule

from anomalib_hvq.models.components.file_load import DamagedFileError, torch_load

Model = TypeVar("Model", bound=LightningModule)

# Constructor arguments that only say where backbone weights come from before training.
BACKBONE_SOURCE_ARGUMENTS = {"pre_trained": False, "backbone_weights": None}


# A state-dict key only each model has, to say which model a checkpoint holds.
MODEL_SIGNATURES = {"model.quantizer.top.embed": "HVQTrans", "model.output_proj.weight": "UniAD"}
# Constructor arguments that set the network's shape, shown when a checkpoint does not fit the model.
ARCHITECTURE_ARGUMENTS = (
    "backbone",
    "feature_size",
    "hidden_dim",
    "num_layers",
    "num_encoder_layers",
    "num_decoder_layers",
    "num_heads",
    "ffn_dim",
    "num_codes",
    "num_classes",
)
SHOWN_KEYS = 3


def saved_hyperparameters(checkpoint_path: str | Path, safe_globals: Sequence[Any] = ()) -> dict[str, Any]:
    """Hyperparameters saved in a local checkpoint, read without loading its tensors (memory-mapped).

    The file's zip CRCs are verified first (once per process while it is unchanged): a damaged checkpoint
    is refused as such, and a file that is no checkpoint is named so (:func:`torch_load`).
    """
    with anomalib_safe_globals(extra=safe_globals):
        checkpoint = torch_load(checkpoint_path, "a model checkpoint (.ckpt)", map_location="cpu", mmap=True)
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        msg = f"{checkpoint_path} is not a Lightning checkpoint (no `state_dict`): pass the .ckpt that training wrote."
        raise DamagedFileError(msg)
    return dict(checkpoint.get("hyper_parameters", {}))


def _architecture(hyperparameters: Mapping[str, Any]) -> dict[str, Any]:
    """Pick the shape-setting arguments out of ``hyperparameters`` (unset ones left out)."""
    return {key: hyperparameters[key] for key in ARCHITECTURE_ARGUMENTS if hyperparameters.get(key) is not None}


def _show(arguments: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in arguments.items()) or "arguments not saved"


def checkpoint_mismatch(
    module: LightningModule, state_dict: Mapping[str, torch.Tensor], saved: Mapping[str, Any]
) -> str:
    """Say which model and dimensions a checkpoint's ``state_dict`` (``saved`` hyperparameters) holds vs ``module``."""
    own = module.state_dict()
    kind = next((name for key, name in MODEL_SIGNATURES.items() if key in state_dict), "another model")
    missing = [key for key in own if key not in state_dict]
    unexpected = [key for key in state_dict if key not in own]
    reshaped = [
        f"{key}: {tuple(state_dict[key].shape)} in the checkpoint, {tuple(own[key].shape)} here"
        for key in own
        if key in state_dict and tuple(state_dict[key].shape) != tuple(own[key].shape)
    ]
    found = [
        f"{len(items)} {what} (e.g. {items[:SHOWN_KEYS]})"
        for items, what in ((missing, "missing"), (unexpected, "unexpected"), (reshaped, "of another shape"))
        if items
    ]
    tensors = f"tensors {'; '.join(found) or 'differ'}"
    theirs, ours = _architecture(saved), _architecture(module.hparams)
    if kind == type(module).__name__ and all(ours[key] == value for key, value in theirs.items() if key in ours):
        return (
            f"The checkpoint holds a {kind} model with this model's arguments, but its {tensors}: it is incomplete "
            "or was written by another version of the code. Re-copy it, or re-train."
        )
    return (
        f"The checkpoint holds a {kind} model ({_show(theirs)}), which does not fit this {type(module).__name__} "
        f"({_show(ours)}): {tensors}. "
        f"Load it with {kind if kind != 'another model' else 'its model class'}.load_from_checkpoint(path), or build "
        "the model with the checkpoint's arguments."
    )


def regroup_flat_arguments(hyperparameters: Mapping[str, Any], groups: Mapping[str, type]) -> dict[str, Any]:
    """Move arguments saved flat (before they were grouped) into their dataclass ``groups``, by field name.

    A group that is saved already wins over flat values; a group without flat values is left as saved.
    """
    upgraded = dict(hyperparameters)
    for name, group in groups.items():
        fields = {field.name for field in dataclasses.fields(group)}
        flat = {key: upgraded.pop(key) for key in fields & upgraded.keys()}
        if flat and name not in upgraded:
            upgraded[name] = group(**flat)
    return upgraded


def load_checkpoint_offline(
    load: Callable[..., Model],
    checkpoint_path: str | Path,
    *args: Any,
    safe_globals: Sequence[Any] = (),
    **kwargs: Any,
) -> Model:
    """Call ``load`` (a ``load_from_checkpoint``) with the backbone built empty; the checkpoint fills it.

    Arguments given in ``kwargs`` win (``pre_trained=True`` still downloads). Loading is strict, so a
    checkpoint that lacks backbone weights fails loudly instead of leaving random weights. A local file is
    verified first: a damaged one (zip CRC mismatch) or one that is no checkpoint is refused, saying so.
    """
    local = isinstance(checkpoint_path, str | Path) and "://" not in str(checkpoint_path)
    if local and not Path(checkpoint_path).is_file():
        msg = (
            f"No checkpoint at {checkpoint_path}. Pass the .ckpt file that training wrote, e.g. "
            "results/<Model>/<dataset>/<category>/latest/weights/lightning/model.ckpt."
        )
        raise FileNotFoundError(msg)
    # Verifies the file (zip CRCs, a checkpoint at all) before Lightning reads it.
    saved = saved_hyperparameters(checkpoint_path, safe_globals) if local else {}
    overrides = {key: value for key, value in BACKBONE_SOURCE_ARGUMENTS.items() if key not in kwargs}
    model = load(checkpoint_path, *args, **overrides, **kwargs)
    if overrides and local:
        # Keep what the model was trained with, so that a re-saved checkpoint still says so.
        model.hparams.update({key: saved[key] for key in overrides if key in saved})
    return model
