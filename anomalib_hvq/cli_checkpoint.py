# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Build the CLI's model from the checkpoint's saved arguments: ``anomalib predict/export/test --ckpt_path``.

anomalib's CLI builds the model from its command-line arguments *before* it loads ``--ckpt_path``. With only
``--model anomalib_hvq.HVQTrans`` that is the default model (EfficientNet-B4, downloaded ImageNet weights,
width 256), so a checkpoint of any other size fails on the download offline, or on state-dict size
mismatches unless every model argument is repeated. :func:`build_model_from_checkpoint_in_cli` makes the
CLI fill the model's arguments from the checkpoint's saved hyper-parameters instead, with ``pre_trained=False``
and ``backbone_weights=None`` (the checkpoint holds the backbone weights, so nothing is downloaded or read).
``--model.<name>`` options on the command line still win (e.g. ``--model.class_routing oracle``); a config
file's model section does not (the weights need the checkpoint's architecture). Only this project's models are
affected. Like :mod:`anomalib_hvq.cli_seed`, it wraps the CLI class at run time; importing ``anomalib_hvq``
(which the CLI does when it resolves ``anomalib_hvq.HVQTrans``) installs it.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from jsonargparse import Namespace
from jsonargparse.typing import import_object

from anomalib_hvq.training.checkpoint import BACKBONE_SOURCE_ARGUMENTS, saved_hyperparameters
from anomalib_hvq.training.unified_recipe import UnifiedRecipeMixin


def command_line_model_keys(arguments: Iterable[Any]) -> set[str]:
    """Dotted names of the ``--model.<name>`` options in ``arguments``, e.g. ``faithfulness.ot_all_levels``."""
    keys = set()
    for argument in arguments:
        if isinstance(argument, str) and argument.startswith("--model."):
            key = argument.removeprefix("--model.").split("=", 1)[0]
            keys.add(key.removeprefix("init_args."))
    return keys


def _config_value(value: Any) -> Any:
    """Convert a saved hyper-parameter to the parser's form: dataclass groups as namespaces, enums as values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return Namespace(
            **{field.name: _config_value(getattr(value, field.name)) for field in dataclasses.fields(value)}
        )
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return list(value)
    return value


def checkpoint_model_arguments(
    init_args: Namespace, saved: Mapping[str, Any], explicit: set[str]
) -> tuple[Namespace, list[str]]:
    """``init_args`` with the ``saved`` arguments filled in, except the ``explicit`` ones; and the names filled.

    A group (e.g. ``faithfulness``) comes from the checkpoint field by field, so ``--model.faithfulness.x``
    overrides one field and keeps the others. Saved names that are no argument of the model are left out.
    """
    saved = {**saved, **BACKBONE_SOURCE_ARGUMENTS}
    filled = []
    for name, value in saved.items():
        if name not in init_args or name in explicit:
            continue
        value = _config_value(value)
        current = init_args[name]
        if isinstance(value, Namespace) and isinstance(current, Namespace):
            for field, field_value in vars(value).items():
                if f"{name}.{field}" not in explicit:
                    current[field] = field_value
        else:
            init_args[name] = value
        filled.append(name)
    return init_args, filled


def project_model_class(model: Any) -> type | None:
    """Return the class a CLI ``model`` config names if it is one of this project's models, else ``None``."""
    class_path = model.get("class_path") if isinstance(model, Namespace) else None
    try:
        cls = import_object(class_path) if class_path else None
    except (ImportError, AttributeError, ValueError):
        return None
    return cls if isinstance(cls, type) and issubclass(cls, UnifiedRecipeMixin) else None


def fill_model_from_checkpoint(config: Namespace, command_line: Sequence[Any]) -> list[str]:
    """Fill a subcommand's ``model.init_args`` from its ``ckpt_path`` (a local file); returns the names filled."""
    ckpt_path = config.get("ckpt_path")
    cls = project_model_class(config.get("model"))
    if cls is None or not ckpt_path or "://" in str(ckpt_path):
        return []
    if not Path(ckpt_path).is_file():
        # Without this the CLI would build the default model and fail on its weight download instead.
        msg = f"No checkpoint at --ckpt_path {ckpt_path}. Pass the model.ckpt that a training run wrote."
        raise FileNotFoundError(msg)
    saved = cls.upgrade_hyperparameters(saved_hyperparameters(ckpt_path, cls.checkpoint_safe_globals()))
    _, filled = checkpoint_model_arguments(config.model.init_args, saved, command_line_model_keys(command_line))
    return filled


def _fill_first(hook: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(hook)
    def before_instantiate_classes(cli) -> None:
        hook(cli)
        subcommand = cli.config.get("subcommand")
        config = cli.config.get(subcommand) if subcommand else None
        if isinstance(config, Namespace):
            fill_model_from_checkpoint(config, getattr(cli, "command_line_arguments", sys.argv[1:]))

    before_instantiate_classes.fills_model_from_checkpoint = True
    return before_instantiate_classes


def _remember_arguments(init: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(init)
    def __init__(cli, args: Sequence[str] | None = None, *more: Any, **kwargs: Any) -> None:  # noqa: N807
        # The parsed config no longer says which values were typed; keep the raw arguments for the hook.
        cli.command_line_arguments = list(sys.argv[1:] if args is None else args) if not isinstance(args, dict) else []
        init(cli, args, *more, **kwargs)

    __init__.remembers_arguments = True
    return __init__


def build_model_from_checkpoint_in_cli() -> None:
    """Make ``anomalib.cli.AnomalibCLI`` build this project's models from ``--ckpt_path`` (idempotent)."""
    from anomalib.cli.cli import AnomalibCLI

    if not getattr(AnomalibCLI.__init__, "remembers_arguments", False):
        AnomalibCLI.__init__ = _remember_arguments(AnomalibCLI.__init__)
    if not getattr(AnomalibCLI.before_instantiate_classes, "fills_model_from_checkpoint", False):
        AnomalibCLI.before_instantiate_classes = _fill_first(AnomalibCLI.before_instantiate_classes)
