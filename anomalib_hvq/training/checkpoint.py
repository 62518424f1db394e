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

Model = TypeVar("Model", bound=LightningModule)

# Constructor arguments that only say where backbone weights come from before training.
BACKBONE_SOURCE_ARGUMENTS = {"pre_trained": False, "backbone_weights": None}


def saved_hyperparameters(checkpoint_path: str | Path, safe_globals: Sequence[Any] = ()) -> dict[str, Any]:
    """Hyperparameters saved in a local checkpoint, read without loading its tensors (memory-mapped)."""
    with anomalib_safe_globals(extra=safe_globals):
        checkpoint = torch.load(checkpoint_path, map_location="cpu", mmap=True, weights_only=True)
    return dict(checkpoint.get("hyper_parameters", {}))


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
    checkpoint that lacks backbone weights fails loudly instead of leaving random weights.
    """
    local = isinstance(checkpoint_path, str | Path) and "://" not in str(checkpoint_path)
    if local and not Path(checkpoint_path).is_file():
        msg = (
            f"No checkpoint at {checkpoint_path}. Pass the .ckpt file that training wrote, e.g. "
            "results/<Model>/<dataset>/<category>/latest/weights/lightning/model.ckpt."
        )
        raise FileNotFoundError(msg)
    overrides = {key: value for key, value in BACKBONE_SOURCE_ARGUMENTS.items() if key not in kwargs}
    model = load(checkpoint_path, *args, **overrides, **kwargs)
    if overrides and local:
        saved = saved_hyperparameters(checkpoint_path, safe_globals)
        # Keep what the model was trained with, so that a re-saved checkpoint still says so.
        model.hparams.update({key: saved[key] for key in overrides if key in saved})
    return model
