# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""benchmarks/train_throughput.py: configurations, epoch and recipe projections, output tables."""

import csv
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
import train_throughput

TINY = [
    *("--device", "cpu", "--backbone", "tf_efficientnet_lite0", "--image-size", "64", "--classes", "3"),
    *("--hidden-dim", "16", "--num-layers", "1", "--num-heads", "2", "--ffn-dim", "32", "--num-codes", "8"),
    *("--steps", "1", "--warmup", "0", "--train-images", "10", "--epochs", "3", "--source-image-size", "64"),
]


def test_tiny_run_writes_one_row_per_configuration_and_the_cache_speedup(tmp_path: Path) -> None:
    output = tmp_path / "out"
    arguments = [
        *TINY,
        "--batch-sizes",
        "2",
        "--precision",
        "fp32",
        "bf16",
        "--compile",
        "off",
        "--output",
        str(output),
    ]
    rows = train_throughput.main(arguments)
    configs = [(r["precision"], r["batch_size"], r["cache"]) for r in rows]
    assert configs == [("fp32", 2, "off"), ("fp32", 2, "on"), ("bf16", 2, "off"), ("bf16", 2, "on")]
    for row in rows:
        assert row["images_per_s"] > 0 and row["peak_memory_mb"] > 100
        assert row["epoch_s"] == pytest.approx(10 / row["images_per_s"] + (row["cache"] == "off") * row["load_s"])
        build = row["cache_build_s"] if row["cache"] == "on" else 0.0
        assert row["projected_recipe_min"] == pytest.approx((3 * row["epoch_s"] + build) / 60)
    with (output / "train_throughput.csv").open() as file:
        written = list(csv.DictReader(file))
    assert [(r["precision"], r["cache"]) for r in written] == [(p, c) for p, _, c in configs]
    markdown = (output / "train_throughput.md").read_text()
    assert "| cache | precision | compile | batch | images/s |" in markdown
    assert markdown.count("| on | ") == 2 and "CPU" in markdown
    speedup = rows[0]["epoch_s"] / rows[1]["epoch_s"]
    assert f"- fp32, compile off, batch 2: {speedup:.2f}x" in markdown


def test_quick_preset_is_the_cpu_comparison() -> None:
    args = train_throughput.parse_args(["--quick", "--device", "cpu"])
    assert (args.batch_sizes, args.precision, args.compile, args.cache) == ([16], ["fp32"], ["off"], ["off", "on"])
    assert args.backbone == "tf_efficientnet_b4" and args.hidden_dim == 256 and args.steps <= 3
