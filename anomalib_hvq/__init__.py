# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""anomalib-hvq: HVQ-Trans (NeurIPS 2023) multi-class anomaly detection for anomalib.

Importing the package makes its datamodules resolvable by short name in anomalib's CLI
(``--data MVTec``, ``--data Textures``, ...), its models buildable by ``anomalib.models.get_model``, and
the CLI's ``seed_everything`` option effective (anomalib 2.7 parses it but never applies it), the CLI's
model built from ``--ckpt_path``'s saved arguments (:mod:`anomalib_hvq.cli_checkpoint`), its predict, test
and export runs written into their own versioned folders (:mod:`anomalib_hvq.cli_runs`), each of its log
lines printed once (:mod:`anomalib_hvq.cli_logging`), and
anomalib's own image reading (``anomalib predict``, inferencers, visualizer) use the project's reader
of any bit depth and accept non-ASCII paths (:mod:`anomalib_hvq.data.anomalib_io`).
"""

# The models first: their modules import the training recipe, which imports torch parts from inside
# anomalib_hvq.models, so entering through the recipe (as the CLI modules below do) would find models/ half-built.
from anomalib_hvq.models import ClassRouting, HVQTrans, HVQTransModel, UniAD, UniADModel

# isort: split
from anomalib_hvq.cli_checkpoint import build_model_from_checkpoint_in_cli
from anomalib_hvq.cli_logging import print_each_log_line_once
from anomalib_hvq.cli_runs import give_cli_commands_own_run_folders
from anomalib_hvq.cli_seed import seed_anomalib_cli
from anomalib_hvq.data import MultiClassFolder, MVTec, Textures, Visa
from anomalib_hvq.data.anomalib_io import use_project_image_io
from anomalib_hvq.metrics import PerCategoryMetrics
from anomalib_hvq.registry import register_with_anomalib

register_with_anomalib(HVQTrans, UniAD)
seed_anomalib_cli()
build_model_from_checkpoint_in_cli()
give_cli_commands_own_run_folders()
print_each_log_line_once()
use_project_image_io()

__all__ = [
    "ClassRouting",
    "HVQTrans",
    "HVQTransModel",
    "MVTec",
    "MultiClassFolder",
    "PerCategoryMetrics",
    "Textures",
    "UniAD",
    "UniADModel",
    "Visa",
]
