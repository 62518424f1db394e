# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Label-free class routing vs the ground-truth class (oracle) for a trained HVQ-Trans checkpoint.

For each routing method: routing accuracy on the test set and on the held-out validation split
(normal training images never trained on), and the per-category anomaly metrics, side by side.

Example (after `anomalib train --config configs/hvq_trans_demo.yaml`):
    python benchmarks/routing.py --ckpt results/HVQTrans/textures/all/latest/weights/lightning/model.ckpt
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import torch
from anomalib.engine import Engine

from anomalib_hvq import ClassRouting, HVQTrans, PerCategoryMetrics
from anomalib_hvq.data import Textures


@torch.no_grad()
def routing_accuracy(model: HVQTrans, dataloader) -> float:
    """Fraction of images the model's label-free router sends to their true class."""
    model.eval()
    correct = total = 0
    for batch in dataloader:
        images = model.pre_processor(batch.image) if model.pre_processor else batch.image
        _, routed = model.model.predict(images)
        correct += int((routed == model._class_index(batch)).sum())
        total += len(routed)
    return correct / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", type=Path, required=True)
    parser.add_argument("--data-root", type=Path, default=Path("datasets/textures"))
    parser.add_argument("--output", type=Path, default=Path("results/routing"))
    args = parser.parse_args()

    datamodule = Textures(root=args.data_root, eval_batch_size=16, num_workers=1, seed=0)
    datamodule.prepare_data()
    datamodule.setup()
    model = HVQTrans.load_from_checkpoint(args.ckpt)
    rows, tables = [], {}
    for routing in (ClassRouting.ORACLE, ClassRouting.CENTROID, ClassRouting.CODEBOOK_FIT):
        print(f"routing={routing.value}: testing ...", flush=True)
        model.set_class_routing(routing)
        engine = Engine(default_root_dir=args.output / routing.value, logger=False, accelerator="cpu")
        engine.test(model=model, datamodule=datamodule, verbose=False)
        # The model brings its own PerCategoryMetrics callback (it replaces any passed to the Engine).
        per_category = next(cb for cb in engine.trainer.callbacks if isinstance(cb, PerCategoryMetrics))
        tables[routing.value] = per_category.results
        if routing is not ClassRouting.ORACLE:
            rows.append(
                {
                    "router": routing.value,
                    "test accuracy": routing_accuracy(model, datamodule.test_dataloader()),
                    "held-out accuracy": routing_accuracy(model, datamodule.val_dataloader()),
                }
            )

    args.output.mkdir(parents=True, exist_ok=True)
    accuracy = pd.DataFrame(rows).set_index("router")
    side_by_side = pd.concat(
        {name: table[["image_AUROC", "pixel_AUROC", "AUPRO"]] for name, table in tables.items()}, axis=1
    )
    side_by_side.columns = [f"{router} {metric}" for router, metric in side_by_side.columns]
    accuracy.to_csv(args.output / "routing_accuracy.csv")
    side_by_side.to_csv(args.output / "routing_metrics.csv")
    report = [
        f"Checkpoint: {args.ckpt}",
        "",
        (100 * accuracy).round(1).to_markdown(),
        "",
        (100 * side_by_side).round(1).to_markdown(),
    ]
    (args.output / "routing.md").write_text("\n".join(report) + "\n")
    print("\n".join(report))


if __name__ == "__main__":
    main()
