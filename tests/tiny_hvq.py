# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Tiny HVQ-Trans dimensions shared by the unit and integration tests (fast on a CPU)."""

TINY_HVQ = {
    "backbone": "tf_efficientnet_lite0",
    "pre_trained": False,
    "hidden_dim": 16,
    "num_layers": 2,
    "num_heads": 2,
    "ffn_dim": 32,
    "num_codes": 8,
}

# The same model on anomalib's command line.
TINY_ARGS = [
    "--model.backbone=tf_efficientnet_lite0",
    "--model.pre_trained=false",
    "--model.hidden_dim=16",
    "--model.num_layers=2",
    "--model.num_heads=2",
    "--model.ffn_dim=32",
    "--model.num_codes=8",
]
