# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""`seed_everything` in an anomalib CLI config seeds the model's initial weights (anomalib 2.7 ignores it)."""

from pathlib import Path

import torch
from anomalib.cli.cli import AnomalibCLI
from test_cli import TINY_ARGS

import anomalib_hvq  # noqa: F401  (installs the seeding, as the CLI does when a config names the plugin)


def _initial_weights(seed: str, root: Path, tmp_path: Path) -> dict[str, torch.Tensor]:
    args = ["train", "--model=anomalib_hvq.HVQTrans", *TINY_ARGS, "--data=anomalib_hvq.data.MultiClassFolder"]
    args += [f"--data.root={root}", f"--seed_everything={seed}", f"--default_root_dir={tmp_path}"]
    cli = AnomalibCLI(args=args, run=False)
    return {name: value.clone() for name, value in cli.model.model.state_dict().items()}


def test_same_seed_same_initial_weights_other_seed_other_weights(tiny_mvtec_root: Path, tmp_path: Path) -> None:
    torch.manual_seed(100)  # what an earlier run left behind must not matter
    first = _initial_weights("3", tiny_mvtec_root, tmp_path)
    torch.manual_seed(200)
    again = _initial_weights("3", tiny_mvtec_root, tmp_path)
    other = _initial_weights("4", tiny_mvtec_root, tmp_path)
    assert all(torch.equal(first[name], again[name]) for name in first)
    assert not torch.equal(first["pos_embed.row_embed.weight"], other["pos_embed.row_embed.weight"])
