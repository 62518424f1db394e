# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""A versioned run folder per CLI command: ``anomalib predict``, ``test`` and ``export`` stop writing into training's.

anomalib 2.7 gives only ``train``/``fit`` a new folder (``<root>/<Model>/<dataset>/<category>/vN``, with a
``latest`` link to it). ``predict`` and ``test`` write into whatever ``latest`` points to, i.e. the newest
*training* run (overwriting its ``per_category_metrics.md`` and images), or into a plain folder named
``latest`` when there is none (``predict --data <folder>``: ``<root>/<Model>/latest``, reused by every run);
``export`` writes to ``<root>/weights/<format>``, outside any run. For this project's models the CLI's
commands get their own versioned folders instead, each with its own ``latest`` link, so that a ``latest``
never points to a run of another command:

- ``train``: ``<root>/<Model>/<dataset>/<category>/vN`` (anomalib's, unchanged)
- ``test`` / ``predict``: ``<root>/<Model>/<dataset>/<category>/<command>/vN`` (``<root>/<Model>/predict/vN``
  for ``predict --data <image or folder>``)
- ``export``: ``<root>/<Model>/export/vN/weights/<format>/`` (unless ``--export_root`` is given)

Installed at import of ``anomalib_hvq``, like :mod:`anomalib_hvq.cli_seed`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from anomalib.utils.path import create_versioned_dir
from jsonargparse import Namespace

from anomalib_hvq.cli_checkpoint import project_model_class

# Subcommands whose engine method sets up the workspace (Engine._setup_workspace) and then writes into it.
WORKSPACE_COMMANDS = ("predict", "test", "validate")


def command_run_folder(workspace: Path, command: str) -> Path:
    """Create ``<run root>/<command>/vN`` next to training's ``vN`` folders; ``workspace`` is what anomalib chose.

    ``workspace`` is ``<run root>/latest`` resolved: training's newest ``vN``, or ``latest`` itself if none.
    """
    return create_versioned_dir(Path(workspace).parent / command)


def _own_workspace(engine: Any, command: str) -> None:
    """Make ``engine`` set up a new ``command`` run folder where it would have reused training's."""
    setup = engine._setup_workspace

    @functools.wraps(setup)
    def setup_workspace(*args: Any, **kwargs: Any) -> None:
        setup(*args, **kwargs)
        engine._cache.args["default_root_dir"] = command_run_folder(engine._cache.args["default_root_dir"], command)

    engine._setup_workspace = setup_workspace


def _after_engine(instantiate_engine: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(instantiate_engine)
    def wrapper(cli) -> None:
        instantiate_engine(cli)
        config = cli.config.get(cli.subcommand)
        if cli.subcommand in WORKSPACE_COMMANDS and project_model_class(config.get("model")) is not None:
            _own_workspace(cli.engine, cli.subcommand)

    wrapper.gives_commands_own_folders = True
    return wrapper


def set_export_run_folder(config: Namespace) -> None:
    """Point an ``export`` config's ``export_root`` at a new ``<root>/<Model>/export/vN`` unless it names one."""
    cls = project_model_class(config.get("model"))
    if cls is None or config.get("export_root"):
        return
    config.export_root = create_versioned_dir(
        Path(config.get("default_root_dir") or "results") / cls.__name__ / "export"
    )


def _export_first(hook: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(hook)
    def before_instantiate_classes(cli) -> None:
        hook(cli)
        if cli.config.get("subcommand") == "export":
            set_export_run_folder(cli.config.export)

    before_instantiate_classes.gives_export_a_folder = True
    return before_instantiate_classes


def give_cli_commands_own_run_folders() -> None:
    """Make ``anomalib.cli.AnomalibCLI`` write predict, test and export runs into their own folders (idempotent)."""
    from anomalib.cli.cli import AnomalibCLI

    if not getattr(AnomalibCLI.instantiate_engine, "gives_commands_own_folders", False):
        AnomalibCLI.instantiate_engine = _after_engine(AnomalibCLI.instantiate_engine)
    if not getattr(AnomalibCLI.before_instantiate_classes, "gives_export_a_folder", False):
        AnomalibCLI.before_instantiate_classes = _export_first(AnomalibCLI.before_instantiate_classes)
