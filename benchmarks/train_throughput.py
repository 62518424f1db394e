# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Training throughput of HVQ-Trans: feature cache, bf16 autocast, torch.compile, batch size; projected recipe time.

Each configuration trains a fresh model (random weights, the paper's dimensions by default) for ``--warmup``
untimed and ``--steps`` timed steps of the real recipe: forward, backward, gradient clipping at 0.1 and
fused AdamW. Without the cache a step runs the frozen backbone on ``(B, 3, S, S)`` images; with it the step
looks the features up in an in-memory :class:`FeatureCache`, as ``HVQTrans(feature_cache=True)`` does.
Times are medians over the timed steps (and backbone calls), so one slow call on a shared machine does not move them.

Reported per configuration: training images/s, ms per step, seconds per epoch of an MVTec-sized training
set (``--train-images`` 3,629), peak memory (CUDA ``max_memory_allocated``; on CPU the process's peak RSS so
far) and the projected wall time of the paper recipe (``--epochs`` 1000): cache build + epochs x epoch with
the cache, epochs x epoch without it. An uncached epoch also decodes every image: the script times
``read_image`` + resize of ``--source-image-size`` PNGs; on a GPU, ``--loader-workers`` processes load while
the GPU computes (the epoch takes the longer of the two), on a CPU loading adds to the step time. The cache
build is one such loading pass plus one backbone pass (timed separately). The official run took about 10 h on 2 GPUs.

Examples:
    python benchmarks/train_throughput.py                       # GPU: the full grid
    python benchmarks/train_throughput.py --quick --device cpu  # CPU: batch 16, fp32, cache off/on
"""

from __future__ import annotations

import argparse
import csv
import itertools
import platform
import resource
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.transforms.v2.functional import resize

from anomalib_hvq.data.image_io import read_image
from anomalib_hvq.models.hvq_trans.torch_model import HVQTransModel
from anomalib_hvq.training.feature_cache import FeatureCache
from anomalib_hvq.training.optimization import adamw, clip_gradients

COLUMNS = (
    "cache",
    "precision",
    "compile",
    "batch_size",
    "images_per_s",
    "step_ms",
    "epoch_s",
    "peak_memory_mb",
    "projected_recipe_min",
)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cuda or cpu")
    parser.add_argument("--backbone", default="tf_efficientnet_b4")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--classes", type=int, default=15)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--cache", nargs="+", choices=["off", "on"], default=["off", "on"])
    parser.add_argument("--precision", nargs="+", choices=["fp32", "bf16"], default=["bf16", "fp32"])
    parser.add_argument("--compile", nargs="+", choices=["off", "on"], default=["off", "on"])
    parser.add_argument("--cache-dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--steps", type=int, default=10, help="timed steps per configuration (median reported)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation, allocator)")
    parser.add_argument("--train-images", type=int, default=3629, help="training set size (MVTec AD: 3,629)")
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--source-image-size", type=int, default=224, help="side of the PNGs an epoch decodes")
    parser.add_argument("--loader-workers", type=int, default=8)
    for name, default in (("hidden-dim", 256), ("num-layers", 4), ("num-heads", 8), ("ffn-dim", 1024)):
        parser.add_argument(f"--{name}", type=int, default=default)
    parser.add_argument("--num-codes", type=int, default=512)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--quick", action="store_true", help="batch 16, fp32, no compile, 3 steps (for CPUs)")
    parser.add_argument("--output", type=Path, default=Path("results/train_throughput"))
    args = parser.parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.quick:
        args.batch_sizes, args.precision, args.compile = [16], ["fp32"], ["off"]
        args.steps, args.warmup = min(args.steps, 3), min(args.warmup, 1)
    return args


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def peak_memory_mb(device: str) -> float:
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def build_model(args: argparse.Namespace) -> HVQTransModel:
    torch.manual_seed(0)
    dims = {"hidden_dim": args.hidden_dim, "num_layers": args.num_layers, "num_heads": args.num_heads}
    dims |= {"ffn_dim": args.ffn_dim, "num_codes": args.num_codes, "dropout": args.dropout}
    feature_size = (args.image_size // 16, args.image_size // 16)
    model = HVQTransModel(args.classes, args.backbone, pre_trained=False, feature_size=feature_size, **dims)
    return model.to(args.device).train()


def time_loading(args: argparse.Namespace, count: int = 4) -> float:
    """Seconds to decode one ``--source-image-size`` PNG and resize it to ``--image-size`` (one process)."""
    size, rng = args.source_image_size, np.random.default_rng(0)
    smooth = np.linspace(0, 255, size)[None, :, None] * np.ones((size, 1, 3))
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for index in range(count):  # photo-like: smooth shading plus sensor noise
            pixels = np.clip(smooth + rng.normal(0, 8, (size, size, 3)), 0, 255).astype(np.uint8)
            paths.append(f"{folder}/{index}.png")
            Image.fromarray(pixels).save(paths[-1])
        start = time.perf_counter()
        for path in paths:
            resize(read_image(path, as_tensor=True), [args.image_size, args.image_size])
        return (time.perf_counter() - start) / count


def time_backbone(model: HVQTransModel, args: argparse.Namespace) -> float:
    """Seconds per image of the frozen backbone (float32, no gradient), i.e. of the cache build."""
    images = torch.randn(max(args.batch_sizes), 3, args.image_size, args.image_size, device=args.device)
    model.feature_extractor(images)  # warm-up
    return median_seconds(lambda: model.feature_extractor(images), max(1, args.steps // 2), args.device) / len(images)


def median_seconds(run: Callable[[], object], repeats: int, device: str) -> float:
    """Median wall time of ``repeats`` calls of ``run``: robust to the odd slow call on a shared machine."""
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        run()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def make_cache(model: HVQTransModel, args: argparse.Namespace, rows: int, folder: Path) -> tuple[FeatureCache, list]:
    """In-memory cache of ``rows`` random images' features on the device, keyed by placeholder files."""
    paths = []
    for index in range(rows):
        (folder / f"{index}.png").write_bytes(index.to_bytes(4, "little"))
        paths.append(str(folder / f"{index}.png"))
    cache = FeatureCache(dtype=args.cache_dtype, device=args.device)
    images = torch.randn(rows, 3, args.image_size, args.image_size)

    def compute(positions: list[int]):
        for start in range(0, len(positions), 16):
            chunk = positions[start : start + 16]
            yield chunk, model.feature_extractor(images[chunk].to(args.device))

    cache.prepare(paths, "benchmark", compute)
    return cache, paths


def measure(args: argparse.Namespace, cache_on: bool, precision: str, compiled: bool, batch_size: int) -> dict:
    """Train ``--warmup`` + ``--steps`` steps of one configuration; return its timings."""
    model = build_model(args)
    if compiled:
        model.compile_transformer()
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = adamw(parameters, lr=1e-4, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(0)
    autocast = torch.autocast(args.device, torch.bfloat16) if precision == "bf16" else nullcontext()
    with tempfile.TemporaryDirectory() as folder:
        cache, paths = make_cache(model, args, batch_size, Path(folder)) if cache_on else (None, [])
        images = None if cache_on else torch.randn(batch_size, 3, args.image_size, args.image_size, device=args.device)
        if args.device == "cuda":
            torch.cuda.reset_peak_memory_stats()

        def step() -> None:
            class_index = torch.randint(args.classes, (batch_size,), generator=generator).to(args.device)
            features = None
            if cache is not None:
                rows = torch.randperm(len(paths), generator=generator)[:batch_size].tolist()
                features = cache.lookup([paths[r] for r in rows]).to(args.device, torch.float32)
            with autocast:
                loss = model.training_output(images, class_index, features=features).terms.loss
            loss.backward()
            clip_gradients(optimizer, 0.1)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        for _ in range(args.warmup):
            step()
        seconds = median_seconds(step, args.steps, args.device)
    return {"step_s": seconds, "peak_memory_mb": peak_memory_mb(args.device)}


def epoch_seconds(compute_s: float, load_s: float, device: str) -> float:
    """An epoch's wall time: loader workers share the CPU with training there, and overlap the GPU."""
    return max(compute_s, load_s) if device == "cuda" else compute_s + load_s


def write_outputs(args: argparse.Namespace, rows: list[dict], summary: dict) -> None:
    args.output.mkdir(parents=True, exist_ok=True)
    with (args.output / "train_throughput.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows({key: _format(row[key]) for key in COLUMNS} for row in rows)
    lines = [
        f"{summary['machine']}; {args.backbone}, {args.image_size}px, {args.classes} classes, "
        f"hidden {args.hidden_dim}, {args.num_layers} layers, {args.num_codes} codes; "
        f"{args.steps} timed steps after {args.warmup} warm-up; "
        f"torch {torch.__version__}",
        "",
        f"Epoch = {args.train_images} images; recipe = {args.epochs} epochs. Backbone (cache build): "
        f"{summary['backbone_ms']:.2f} ms/image; decoding + resizing a {args.source_image_size}px PNG: "
        f"{summary['load_ms']:.2f} ms/image ({summary['workers']}); cache build "
        f"{summary['cache_build_s']:.1f} s. Peak memory: {summary['memory']}.",
        "",
        "| cache | precision | compile | batch | images/s | ms/step | s/epoch | peak MB | projected recipe (min) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    lines += ["| " + " | ".join(_format(row[key]) for key in COLUMNS) + " |" for row in rows]
    ratios = cache_speedups(rows)
    if ratios:
        lines += ["", "Per-epoch speed-up of the cache (uncached s/epoch / cached s/epoch):", ""]
        lines += [
            f"- {precision}, compile {compiled}, batch {batch}: {ratio:.2f}x"
            for (precision, compiled, batch), ratio in ratios.items()
        ]
    (args.output / "train_throughput.md").write_text("\n".join(lines) + "\n")


def _format(value: object) -> str:
    """Numbers with three significant digits (at least one decimal below 1000), anything else as is."""
    if isinstance(value, float):
        return f"{value:.0f}" if value >= 1000 else f"{value:.3g}"
    return str(value)


def cache_speedups(rows: list[dict]) -> dict[tuple[str, str, int], float]:
    """Uncached / cached seconds per epoch for every configuration measured both ways."""
    by_config = {(r["precision"], r["compile"], r["batch_size"], r["cache"]): r["epoch_s"] for r in rows}
    return {
        config[:3]: by_config[(*config[:3], "off")] / by_config[config]
        for config in by_config
        if config[3] == "on" and (*config[:3], "off") in by_config
    }


def main(argv: Sequence[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    machine = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU {platform.processor() or ''}".strip()
    machine += f", {torch.get_num_threads()} threads" if args.device == "cpu" else ""
    print(f"{machine}: timing image loading and the backbone ...", flush=True)
    # Loader workers decode in parallel next to a GPU; on a CPU they compete with training for the same cores.
    load_s = time_loading(args) / (args.loader_workers if args.device == "cuda" else 1)
    backbone_s = time_backbone(build_model(args), args)
    cache_build_s = args.train_images * (load_s + backbone_s)
    summary = {"machine": machine, "load_ms": 1000 * load_s, "backbone_ms": 1000 * backbone_s}
    summary["workers"] = f"{args.loader_workers} workers" if args.device == "cuda" else "on the training cores"
    summary["cache_build_s"] = cache_build_s
    summary["memory"] = "CUDA max_memory_allocated" if args.device == "cuda" else "process peak RSS so far (monotone)"
    # Outer loops first: by default bf16 without compilation, so that a run cut short has the key numbers.
    configs = list(itertools.product(args.precision, args.compile, args.batch_sizes, args.cache))
    rows = []
    for index, (precision, compiled, batch_size, cache) in enumerate(configs, 1):
        label = f"cache {cache}, {precision}, compile {compiled}, batch {batch_size}"
        print(f"[{index}/{len(configs)}] {label}: {args.warmup} warm-up + {args.steps} timed steps ...", flush=True)
        result = measure(args, cache == "on", precision, compiled == "on", batch_size)
        images_per_s = batch_size / result["step_s"]
        compute_s = args.train_images / images_per_s
        epoch_load_s = 0.0 if cache == "on" else args.train_images * load_s  # the cache reads no image
        epoch_s = epoch_seconds(compute_s, epoch_load_s, args.device)
        recipe_s = args.epochs * epoch_s + (cache_build_s if cache == "on" else 0.0)
        rows.append(
            {
                "cache": cache,
                "precision": precision,
                "compile": compiled,
                "batch_size": batch_size,
                "images_per_s": images_per_s,
                "step_ms": 1000 * result["step_s"],
                "epoch_s": epoch_s,
                "peak_memory_mb": result["peak_memory_mb"],
                "projected_recipe_min": recipe_s / 60,
                "load_s": epoch_load_s,
                "cache_build_s": cache_build_s,
            }
        )
        print("  " + ", ".join(f"{key} {_format(rows[-1][key])}" for key in COLUMNS[4:]), flush=True)
        write_outputs(args, rows, summary)  # after every configuration: a cut-off run keeps what it measured
    print((args.output / "train_throughput.md").read_text())
    return rows


if __name__ == "__main__":
    main()
