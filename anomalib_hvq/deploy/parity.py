# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Parity of exported HVQ-Trans models with PyTorch on real images, and image AUROC per format.

Exports a checkpoint to ONNX, OpenVINO FP32, OpenVINO FP16 and (with ``nncf``) OpenVINO INT8 through
anomalib, then runs the demo test set (real texture photos, 256 px) and real full-size photos (up to
1411 px, where antialiasing matters) through PyTorch and every runtime. Example::

    python -m anomalib_hvq.deploy.parity --ckpt <model.ckpt> --data-root datasets/textures --output results/export
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import torch
from anomalib.deploy import CompressionType
from anomalib.pre_processing.utils.transform import get_exportable_transform
from lightning_utilities.core.imports import module_available

from anomalib_hvq.data import Textures
from anomalib_hvq.data.image_io import read_image
from anomalib_hvq.deploy.runtimes import (
    Outputs,
    Runner,
    compare,
    convert_to_openvino,
    model_size_bytes,
    onnxruntime_runner,
    openvino_runner,
    torch_runner,
)
from anomalib_hvq.models.hvq_trans import HVQTrans


def export_formats(model: HVQTrans, out: Path, data_root: Path | None) -> dict[str, Path]:
    """Export ``model`` to ONNX and OpenVINO FP32/FP16 (and INT8 PTQ when nncf is installed)."""
    onnx_path = model.to_onnx(out / "onnx")
    paths = {
        "onnx": onnx_path,
        "openvino_fp32": convert_to_openvino(onnx_path, out / "openvino_fp32" / "model.xml"),
        "openvino_fp16": convert_to_openvino(onnx_path, out / "openvino_fp16" / "model.xml", fp16=True),
    }
    if module_available("nncf") and data_root is not None:
        # anomalib's INT8 path: nncf.quantize calibrated on the validation images (raw: the graph pre-processes).
        datamodule = Textures(root=data_root, train_batch_size=16, eval_batch_size=16, num_workers=0)
        paths["openvino_int8"] = model.to_openvino(
            out / "openvino_int8", compression_type=CompressionType.INT8_PTQ, datamodule=datamodule
        )
    return paths


# Display name -> (exported file, runtime, OpenVINO inference precision hint; None = the CPU's default).
FORMATS: dict[str, tuple[str, str, str | None]] = {
    "ONNX Runtime FP32": ("onnx", "onnxruntime", None),
    "OpenVINO reading the ONNX file (f32 hint)": ("onnx", "openvino", "f32"),
    "OpenVINO FP32 (f32 hint)": ("openvino_fp32", "openvino", "f32"),
    "OpenVINO FP32 (CPU default precision)": ("openvino_fp32", "openvino", None),
    "OpenVINO FP16 IR (f32 hint)": ("openvino_fp16", "openvino", "f32"),
    "OpenVINO FP16 IR (CPU default precision)": ("openvino_fp16", "openvino", None),
    "OpenVINO INT8 PTQ (CPU default precision)": ("openvino_int8", "openvino", None),
}


def runners(paths: dict[str, Path]) -> dict[str, tuple[Runner, str]]:
    """Every runtime and precision to compare, by display name, with the exported format it runs."""
    table = {}
    for name, (key, runtime, precision) in FORMATS.items():
        if key in paths:
            path = paths[key]
            run = onnxruntime_runner(path) if runtime == "onnxruntime" else openvino_runner(path, precision=precision)
            table[name] = (run, key)
    return table


def run_batched(run: Runner, images: np.ndarray, batch_size: int) -> Outputs:
    """Run ``images`` in batches and concatenate the outputs."""
    parts = [run(images[start : start + batch_size]) for start in range(0, len(images), batch_size)]
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


def demo_test_set(root: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """All demo test images ``(N, 3, 256, 256)``, their labels (1 = anomalous) and categories."""
    paths = sorted(root.glob("*/test/*/*.png"))
    images = np.stack([read_image(path, as_tensor=True).numpy() for path in paths])
    labels = np.array([path.parent.name != "good" for path in paths], dtype=int)
    return images.astype(np.float32), labels, [path.parents[2].name for path in paths]


def full_size_photos() -> dict[str, np.ndarray]:
    """Real photos shipped in scikit-image at native size, ``(1, 3, H, W)`` each."""
    from skimage import color, data

    from anomalib_hvq.data.textures import load_sources

    photos = {f"{name} 512x512": image for name, image in load_sources().items()}
    photos["retina 1411x1411"] = data.retina().astype(np.float32) / 255
    photos["coffee 400x600"] = data.coffee().astype(np.float32) / 255
    photos["rocket 427x640"] = data.rocket().astype(np.float32) / 255
    photos["camera 512x512 (grey)"] = color.gray2rgb(data.camera()).astype(np.float32) / 255
    return {name: np.ascontiguousarray(image.transpose(2, 0, 1)[None]) for name, image in photos.items()}


def training_pre_processing_runner(model: HVQTrans, antialias: bool = True) -> Runner:
    """PyTorch with the pre-processing of training/testing (antialiased) or anomalib's default export (not)."""
    transform = model.pre_processor.transform if antialias else get_exportable_transform(model.pre_processor.transform)

    def run(images: np.ndarray) -> Outputs:
        with torch.inference_mode():
            result = model.post_processor(model.model(transform(torch.from_numpy(images))))._asdict()
        return {name: value.numpy() for name, value in result.items() if value is not None}

    return run


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with ties counted half)."""
    positive, negative = scores[labels == 1], scores[labels == 0]
    greater = (positive[:, None] > negative[None, :]).sum() + 0.5 * (positive[:, None] == negative[None, :]).sum()
    return float(greater / (len(positive) * len(negative)))


def _write(rows: list[dict], out: Path, name: str, header: str) -> str:
    """Write ``rows`` as ``name.csv`` and ``name.md`` (under ``header``); return the Markdown."""
    with (out / f"{name}.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    lines = [header, "", "| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(str(value) for value in row.values()) + " |" for row in rows]
    text = "\n".join(lines) + "\n"
    (out / f"{name}.md").write_text(text)
    return text


def _parity_row(name: str, reference: Outputs, result: Outputs, size: str = "") -> dict:
    diff = compare(reference, result)
    return {
        "format": name,
        "map max abs diff": f"{diff['map_abs']:.2e}",
        "map diff / map range": f"{diff['map_rel']:.2e}",
        "score max abs diff": f"{diff['score_abs']:.2e}",
        "label mismatches": int(diff["label_mismatch"]),
        "size on disk": size,
    }


def main() -> None:
    """Export, run, compare; write parity, full-size parity and AUROC tables as Markdown and CSV."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", type=Path, required=True)
    parser.add_argument("--data-root", type=Path, default=Path("datasets/textures"))
    parser.add_argument("--output", type=Path, default=Path("results/export"))
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    args.output.mkdir(parents=True, exist_ok=True)

    model = HVQTrans.load_from_checkpoint(args.ckpt).eval()
    print("exporting ...", flush=True)
    paths = export_formats(model, args.output / "models", args.data_root)
    sizes = {key: f"{model_size_bytes(path) / 2**20:.1f} MiB" for key, path in paths.items()}
    table = runners(paths)
    formats = {name: run for name, (run, _) in table.items()}

    images, labels, categories = demo_test_set(args.data_root)
    print(f"demo test set: {len(images)} images ...", flush=True)
    reference = run_batched(torch_runner(model), images, args.batch_size)
    outputs = {name: run_batched(run, images, args.batch_size) for name, run in formats.items()}
    rows = [_parity_row(name, reference, result, sizes[table[name][1]]) for name, result in outputs.items()]
    print(_write(rows, args.output, "parity_demo", f"Demo test set ({len(images)} images, 256 px) vs PyTorch"))

    print("full-size photos ...", flush=True)
    photos = full_size_photos()
    pairs = {name: [] for name in ["PyTorch, training pre-processing", "PyTorch, anomalib's default export resize"]}
    pairs.update({name: [] for name in formats})
    for image in photos.values():
        expected = torch_runner(model)(image)
        pairs["PyTorch, training pre-processing"].append(
            compare(expected, training_pre_processing_runner(model)(image))
        )
        plain = training_pre_processing_runner(model, antialias=False)(image)
        pairs["PyTorch, anomalib's default export resize"].append(compare(expected, plain))
        for name, run in formats.items():
            pairs[name].append(compare(expected, run(image)))
    rows = [
        {
            "format": name,
            "map diff / map range (max)": f"{max(d['map_rel'] for d in diffs):.2e}",
            "score max abs diff": f"{max(d['score_abs'] for d in diffs):.2e}",
            "label mismatches": int(sum(d["label_mismatch"] for d in diffs)),
        }
        for name, diffs in pairs.items()
    ]
    title = f"Full-size photos ({', '.join(photos)}), one at a time, vs PyTorch (exported pre-processing)"
    print(_write(rows, args.output, "parity_full_size", title))

    rows = []
    for name, result in {"PyTorch": reference, **outputs}.items():
        per_category = [auroc(result["pred_score"][mask], labels[mask]) for mask in _masks(categories)]
        rows.append(
            {
                "format": name,
                "image AUROC (pooled)": f"{100 * auroc(result['pred_score'], labels):.2f}",
                "image AUROC (mean of categories)": f"{100 * np.mean(per_category):.2f}",
            }
        )
    print(_write(rows, args.output, "auroc", f"Image AUROC on the demo test set ({len(images)} images)"))


def _masks(categories: list[str]) -> list[np.ndarray]:
    names = np.array(categories)
    return [names == category for category in sorted(set(categories))]


if __name__ == "__main__":
    main()
