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
