# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""CPU latency of HVQ-Trans exported through anomalib: PyTorch eager vs ONNX Runtime vs OpenVINO FP32/FP16/INT8.

Every format runs the whole exported graph (pre-processing, model, post-processing) on the same batch
of real demo images, in a process of its own so that its peak memory (max RSS, runtime and Python
included) is its own. Example (the README's table)::

    python benchmarks/export_latency.py --ckpt <model.ckpt> --data-root datasets/textures \
        --batch-sizes 1 16 --warmup 3 --repeats 20 --output results/export_latency
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import multiprocessing
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from queue import Empty
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from multiprocessing.queues import Queue

    from anomalib_hvq import HVQTrans
    from anomalib_hvq.deploy.runtimes import Runner

FORMATS = {  # name -> (exported file key, OpenVINO precision hint)
    "PyTorch eager FP32": ("torch", None),
    "ONNX Runtime FP32": ("onnx", None),
    "OpenVINO FP32 (f32 hint)": ("openvino_fp32", "f32"),
    # The CPU default precision is bf16 on CPUs with AVX512-BF16/AMX (both IRs then compute alike), else f32.
    "OpenVINO FP32 IR, default precision": ("openvino_fp32", None),
    "OpenVINO FP16 IR, default precision": ("openvino_fp16", None),
    "OpenVINO INT8 PTQ, default precision": ("openvino_int8", None),
}


def build_model(args: argparse.Namespace) -> HVQTrans:
    """The checkpoint's model, or the demo configuration with random weights (timing does not need training)."""
    from anomalib_hvq import HVQTrans

    if args.ckpt is not None:
        return HVQTrans.load_from_checkpoint(args.ckpt).eval()
    names = [f"class{i}" for i in range(args.classes)]
    dims = {"hidden_dim": args.hidden_dim, "ffn_dim": 4 * args.hidden_dim, "num_codes": args.num_codes}
    return HVQTrans(backbone=args.backbone, pre_trained=False, class_names=names, dropout=0.0, **dims).eval()


def export(model: HVQTrans, args: argparse.Namespace) -> dict[str, Path]:
    """Export to every format; INT8 only with nncf installed and demo data to calibrate on."""
    from anomalib_hvq.deploy.parity import export_formats

    out = args.output / "models"
    print("exporting torch, onnx, openvino fp32/fp16 (and int8 with nncf) ...", flush=True)
    data_root = args.data_root if args.data_root.is_dir() else None
    return {"torch": model.to_torch(out / "torch"), **export_formats(model, out, data_root)}


def input_batch(args: argparse.Namespace, batch_size: int) -> np.ndarray:
    """``batch_size`` demo test images (real photos, cycled), or random images without demo data."""
    paths = sorted(args.data_root.glob("*/test/*/*.png")) if args.data_root.is_dir() else []
    paths = paths[:: max(1, len(paths) // batch_size)]  # spread over the categories
    if not paths:
        return np.random.default_rng(0).random((batch_size, 3, args.image_size, args.image_size), dtype=np.float32)
    from PIL import Image

    size = (args.image_size, args.image_size)
    images = [np.asarray(Image.open(p).convert("RGB").resize(size), np.float32) / 255 for p in paths[:batch_size]]
    images = (images * batch_size)[:batch_size]
    return np.ascontiguousarray(np.stack(images).transpose(0, 3, 1, 2))


def _runtimes() -> ModuleType:
    """Load ``anomalib_hvq.deploy.runtimes`` from its file, without the package.

    Importing the package would import torch and anomalib; the ONNX Runtime and OpenVINO processes are
    measured without them, as they are deployed.
    """
    package = importlib.util.find_spec("anomalib_hvq").submodule_search_locations[0]
    spec = importlib.util.spec_from_file_location("hvq_runtimes", Path(package) / "deploy" / "runtimes.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _runner(key: str, path: Path, precision: str | None, threads: int) -> Runner:
    runtimes = _runtimes()
    if key == "torch":
        import torch

        return runtimes.torch_runner(torch.load(path, weights_only=False)["model"], threads=threads)
    if key == "onnx":
        return runtimes.onnxruntime_runner(path, threads=threads)
    return runtimes.openvino_runner(path, precision=precision, threads=threads)


def peak_rss_mib() -> int:
    """Peak resident memory of this process so far (``VmHWM``).

    Not ``getrusage``'s ``ru_maxrss``: that survives ``exec`` and so starts at the parent's size in a
    spawned process.
    """
    status = Path("/proc/self/status").read_text()
    kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    return round(kib / 1024)


def measure(
    key: str,
    path: Path,
    precision: str | None,
    threads: int,
    batches: dict[int, np.ndarray],
    args: argparse.Namespace,
    queue: Queue,
) -> None:
    """Child process: time every batch size of one format; put one result row per batch size on ``queue``."""
    run = _runner(key, path, precision, threads)
    for batch_size, images in batches.items():
        for _ in range(args.warmup):
            run(images)
        latencies = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            run(images)
            latencies.append(time.perf_counter() - start)
        latencies.sort()
        p50 = statistics.median(latencies)
        queue.put(
            {
                "batch_size": batch_size,
                "images_per_s": round(batch_size / p50, 2),
                "latency_p50_ms": round(1000 * p50, 1),
                "latency_p95_ms": round(
                    1000 * latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))], 1
                ),
                "peak_rss_mib": peak_rss_mib(),
            }
        )


def machine() -> str:
    """CPU model, cores, load and library versions."""
    import onnxruntime
    import openvino
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())  # fmt: skip
    return (
        f"{cpu}, {os.cpu_count()} logical CPUs, load average {os.getloadavg()[0]:.2f} at the start; "
        f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, openvino {openvino.__version__}"
    )


COLUMNS = {  # row key -> Markdown header
    "format": "format",
    "threads": "threads",
    "batch_size": "batch",
    "images_per_s": "images/s",
    "latency_p50_ms": "p50 ms",
    "latency_p95_ms": "p95 ms",
    "size_mib": "size MiB",
    "peak_rss_mib": "peak RSS MiB",
}


def write(rows: list[dict[str, Any]], args: argparse.Namespace, header: str) -> str:
    """Write ``export_latency.csv`` and ``export_latency.md``; return the Markdown."""
    with (args.output / "export_latency.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    lines = [header, "", "| " + " | ".join(COLUMNS.values()) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(row.get(key, "")) for key in COLUMNS) + " |" for row in rows]
    text = "\n".join(lines) + "\n"
    (args.output / "export_latency.md").write_text(text)
    return text


def run_format(
    key: str, path: Path, precision: str | None, threads: int, batches: dict[int, np.ndarray], args: argparse.Namespace
) -> list[dict[str, Any]]:
    """Measure one format at one thread count in a fresh process; a crashed process gives error rows."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=measure, args=(key, path, precision, threads, batches, args, queue))
    child.start()
    results = []
    while len(results) < len(batches):
        try:
            results.append(queue.get(timeout=5))
        except Empty:
            if not child.is_alive():
                results += [
                    {"batch_size": b, "images_per_s": f"failed (exit {child.exitcode})"}
                    for b in list(batches)[len(results) :]
                ]
    child.join()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", type=Path, default=None, help="trained model; default: demo dims, random weights")
    parser.add_argument("--data-root", type=Path, default=Path("datasets/textures"), help="demo data (input, INT8)")
    parser.add_argument("--backbone", default="tf_efficientnet_lite0")
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--hidden-dim", type=int, default=128)
    parser.add_argument("--num-codes", type=int, default=128)
    parser.add_argument("--image-size", type=int, default=256, help="input side (the demo images are 256 px)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, nargs="+", default=[os.cpu_count()], help="thread counts to run")
    parser.add_argument("--output", type=Path, default=Path("results/export_latency"))
    args = parser.parse_args()
    args.output.mkdir(parents=True, exist_ok=True)

    from anomalib_hvq.deploy.runtimes import model_size_bytes

    header = f"{machine()}. Command: `python {' '.join(sys.argv)}`"
    paths = export(build_model(args), args)
    batches = {batch_size: input_batch(args, batch_size) for batch_size in args.batch_sizes}
    rows = []
    for threads in args.threads:
        for name, (key, precision) in FORMATS.items():
            if key not in paths:
                continue
            print(
                f"{name}, {threads} threads, batches {args.batch_sizes}: {args.warmup} + {args.repeats} runs ...",
                flush=True,
            )
            size = round(model_size_bytes(paths[key]) / 2**20, 1)
            for result in run_format(key, paths[key], precision, threads, batches, args):
                rows.append({"format": name, "threads": threads, **result, "size_mib": size})
                print(f"  {rows[-1]}", flush=True)

    print(write(rows, args, header))
    speed = {(row["format"], row["threads"], row["batch_size"]): row["images_per_s"] for row in rows}
    for threads in args.threads:
        for batch_size in args.batch_sizes:
            openvino = speed[("OpenVINO FP32 (f32 hint)", threads, batch_size)]
            eager = speed[("PyTorch eager FP32", threads, batch_size)]
            if isinstance(openvino, float) and isinstance(eager, float):
                print(f"OpenVINO FP32 / PyTorch eager, {threads} threads, batch {batch_size}: {openvino / eager:.2f}x")


if __name__ == "__main__":
    main()
