# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Apply the ``seed_everything`` option of anomalib's CLI, which anomalib 2.7 parses but never applies.

``anomalib train --config c.yaml`` with ``seed_everything: 0`` builds the model with unseeded random
weights, so two runs of the same config differ (on the demo data by several AUROC points per category).
:func:`seed_anomalib_cli` makes the CLI seed before it instantiates the model, data and engine, as
Lightning's own CLI does: an integer seeds with that value, ``true`` (anomalib's default) with a random
seed that Lightning logs, ``false`` not at all. It wraps the CLI's ``before_instantiate_classes`` hook at
run time, without touching anomalib's files; importing ``anomalib_hvq`` (which the CLI does when a config
names one of its classes) installs it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from lightning.pytorch import seed_everything


def _seed_first(hook: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(hook)
    def before_instantiate_classes(cli) -> None:
        hook(cli)
        seed = cli._get(cli.config, "seed_everything")
        if seed is True:
            seed_everything(workers=True)
        elif seed is not None and seed is not False:
            seed_everything(int(seed), workers=True)

    before_instantiate_classes.seeds_from_config = True
    return before_instantiate_classes


def seed_anomalib_cli() -> None:
    """Make ``anomalib.cli.AnomalibCLI`` apply ``seed_everything`` before building classes (idempotent)."""
    from anomalib.cli.cli import AnomalibCLI

    if not getattr(AnomalibCLI.before_instantiate_classes, "seeds_from_config", False):
        AnomalibCLI.before_instantiate_classes = _seed_first(AnomalibCLI.before_instantiate_classes)
