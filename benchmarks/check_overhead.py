# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Cost of the bad-input checks (tests/RELIABILITY.md) on a demo-size HVQ-Trans, in one process.

Inference: batches scored with the input check and with it switched off, alternating call by call. Training:
steps from cached features (no backbone, so the step is as short as it gets) with and without the
non-finite loss check, alternating; the codebook/router guards (a few reductions over the statistics)
are timed alone on the statistics' shapes and compared with the step.

Example:
    OMP_NUM_THREADS=1 python benchmarks/check_overhead.py --passes 20
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from anomalib_hvq.models.components import file_load
from anomalib_hvq.models.hvq_trans import torch_model
from anomalib_hvq.models.hvq_trans.torch_model import HVQTransModel
from anomalib_hvq.training.numerics import NonFiniteBatches

DEMO = {"backbone": "tf_efficientnet_lite0", "pre_trained": False, "hidden_dim": 128, "ffn_dim": 512, "num_codes": 128}


def _timed(step: Callable[[], object], passes: int = 1) -> float:
    start = time.perf_counter()
    for _ in range(passes):
        step()
    return time.perf_counter() - start


def alternate(
    with_check: Callable[[], object], without: Callable[[], object], passes: int
) -> list[tuple[float, float]]:
    """Times ``(with, without)`` of ``passes`` call pairs, alternating which goes first (cancels load drift)."""
    with_check(), without()  # warm-up
    pairs = []
    for index in range(passes):
        if index % 2:
            b, a = _timed(without), _timed(with_check)
        else:
            a, b = _timed(with_check), _timed(without)
        pairs.append((a, b))
    return pairs


def report(name: str, pairs: list[tuple[float, float]]) -> float:
    """Print the totals' ratio and the range of the per-pair ratios; return the median time without the check."""
    ratios = sorted(a / b for a, b in pairs)
    total_with, total_without = sum(a for a, _ in pairs), sum(b for _, b in pairs)
    print(
        f"{name}: {len(pairs)} calls each, {total_with:.1f} s with the check, {total_without:.1f} s without; "
        f"ratio of totals {total_with / total_without:.3f}, per-pair ratios {ratios[0]:.3f}-{ratios[-1]:.3f} "
        f"(median {statistics.median(ratios):.3f})",
        flush=True,
    )
    return statistics.median(b for _, b in pairs)


def guard_ops(model: HVQTransModel) -> Callable[[], object]:
    """The codebook and router guards' extra work for one batch, on the statistics' shapes (made beforehand)."""
    sums = [torch.randn(level.embed.shape) for level in model.quantizer.levels]
    present = torch.ones(model.num_classes, dtype=torch.bool)
    feature_sum, count = torch.randn_like(model.router.feature_sum), torch.ones(model.num_classes)

    def run() -> object:
        for level_sums in sums:
            _ = present & torch.isfinite(level_sums.view(model.num_classes, -1)).all(1)
        finite = torch.isfinite(feature_sum).all(1)
        return torch.where(finite.unsqueeze(1), feature_sum, 0), torch.where(finite, count, 0)

    return run


def checkpoint_check(model: HVQTransModel, repeats: int) -> None:
    """Time the CRC check of a demo-size checkpoint against reading it (``torch.load``)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.ckpt"
        torch.save({"state_dict": model.state_dict(), "hyper_parameters": {}}, path)
        crc, load = [], []
        for _ in range(repeats):
            file_load._VERIFIED.clear()  # measure a first verification every time
            crc.append(_timed(lambda: file_load.check_archive(path)))
            load.append(_timed(lambda: torch.load(path, map_location="cpu", weights_only=True)))
        print(
            f"checkpoint of {path.stat().st_size / 1e6:.1f} MB: "
            f"CRC check {1e3 * min(crc):.0f}-{1e3 * max(crc):.0f} ms, "
            f"torch.load {1e3 * min(load):.0f}-{1e3 * max(load):.0f} ms",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passes", type=int, default=20)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = HVQTransModel(num_classes=5, **DEMO)
    checkpoint_check(model, repeats=5)
    images = torch.randn(args.batch, 3, args.size, args.size)
    classes = torch.arange(args.batch) % 5

    model.eval()
    checked = torch_model.check_model_input

    def unchecked_predict() -> object:
        torch_model.check_model_input = lambda images: None
        try:
            return model.predict(images)
        finally:
            torch_model.check_model_input = checked

    with torch.inference_mode():
        pairs = alternate(lambda: model.predict(images), unchecked_predict, args.passes)
    call = report(f"inference, batch {args.batch} at {args.size} px", pairs)
    alone = _timed(lambda: checked(images), args.passes) / args.passes
    print(f"input check alone: {1e3 * alone:.2f} ms per call = {100 * alone / call:.2f}% of a call", flush=True)

    model.train()
    features = model.feature_extractor(images)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    guard = NonFiniteBatches()

    def train_step(check: bool) -> None:
        loss = model.training_output(None, classes, features=features).terms.loss
        if check and guard.skip(loss):
            return
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    pairs = alternate(lambda: train_step(True), lambda: train_step(False), args.passes)
    step = report("training step from cached features, loss check", pairs)
    guards = _timed(guard_ops(model), args.passes) / args.passes
    print(f"codebook + router guards alone: {1e3 * guards:.2f} ms per step = {100 * guards / step:.2f}% of a step")


if __name__ == "__main__":
    main()
