# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""CPU/GPU inference throughput of the HVQ-Trans torch model (backbone, transformer, OT score, maps).

Example:
    python benchmarks/latency.py --batch-sizes 1 16 --classes 15 --output results/latency
"""

from __future__ import annotations

import argparse
import csv
import platform
import statistics
import time
from pathlib import Path

import torch

from anomalib_hvq.models.hvq_trans.torch_model import HVQTransModel


def measure(model: HVQTransModel, batch_size: int, image_size: int, warmup: int, repeats: int, device: str):
    """Return per-batch latencies in seconds."""
    images = torch.randn(batch_size, 3, image_size, image_size, device=device)
    latencies = []
    with torch.inference_mode():
        for step in range(warmup + repeats):
            start = time.perf_counter()
            output = model(images)
            if device == "cuda":
                torch.cuda.synchronize()
            if step >= warmup:
                latencies.append(time.perf_counter() - start)
            assert torch.isfinite(output.pred_score).all()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="tf_efficientnet_b4")
    parser.add_argument("--classes", type=int, default=15)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--output", type=Path, default=Path("results/latency"))
    args = parser.parse_args()

    model = HVQTransModel(num_classes=args.classes, backbone=args.backbone, pre_trained=False).eval().to(args.device)
    machine = torch.cuda.get_device_name() if args.device == "cuda" else f"{platform.processor() or 'cpu'}"
    rows = []
    for batch_size in args.batch_sizes:
        print(f"batch {batch_size}: {args.warmup} warm-up + {args.repeats} timed runs ...", flush=True)
        latencies = measure(model, batch_size, args.image_size, args.warmup, args.repeats, args.device)
        median = statistics.median(latencies)
        rows.append(
            {
                "batch_size": batch_size,
                "images_per_s": round(batch_size / median, 2),
                "latency_p50_ms": round(1000 * median, 1),
                "latency_p95_ms": round(1000 * sorted(latencies)[int(0.95 * (len(latencies) - 1))], 1),
            }
        )
        print(f"  {rows[-1]}", flush=True)

    args.output.mkdir(parents=True, exist_ok=True)
    with (args.output / "latency.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    header = f"{args.backbone}, {args.classes} classes, {args.image_size}px, {args.device} ({machine}), "
    header += f"{torch.get_num_threads()} threads, torch {torch.__version__}"
    lines = [header, "", "| batch | images/s | p50 ms | p95 ms |", "|---|---|---|---|"]
    lines += [
        f"| {r['batch_size']} | {r['images_per_s']} | {r['latency_p50_ms']} | {r['latency_p95_ms']} |" for r in rows
    ]
    (args.output / "latency.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
