# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Tiny UniAD dimensions for fast tests: 4x4 tokens, 3x3 neighbour window, width 16."""

TINY = {
    "backbone": "tf_efficientnet_lite0",
    "pre_trained": False,
    "feature_size": (4, 4),
    "neighbor_size": (3, 3),
    "hidden_dim": 16,
    "num_encoder_layers": 2,
    "num_decoder_layers": 2,
    "num_heads": 2,
    "ffn_dim": 32,
}
