# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Ablation of HVQ-Trans's fast recipe: each switch alone, all together, and the paper-style baseline.

Every variant is the demo config's model (``configs/hvq_trans_demo.yaml``) with the recipe's switches set as
listed below, trained for the same epochs on the same data with the same seed(s), each in its own process
(``benchmarks/compare.py`` machinery), and tested at the last epoch (no checkpoint selection). The table gives
the mean over seeds of the per-category means: image / pixel AUROC, AU-PRO, the codebook dead fraction of each
level in the last training epoch, and the training seconds.

``--sweep NAME=V1,V2`` adds one variant per value: the demo config with only that setting changed (a model
argument such as ``lr`` or ``decay``, or the data's ``train_batch_size``), for the one-at-a-time sensitivity
of the recipe's hyper-parameters.

Example (the model README's ablation table):
    python benchmarks/recipe_ablation.py --root ./datasets/textures --epochs 30 --seeds 0 --threads 2
Example (the hyper-parameter sensitivity of the demo recipe):
    python benchmarks/recipe_ablation.py --root ./datasets/textures --epochs 30 --seeds 0 --threads 1 \
        --variants "all (demo config)" --sweep lr=1e-4,1e-3 decay=0.9,0.99 train_batch_size=8
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

import yaml
from compare import SHORT_NAMES, Job, run_isolated

from anomalib_hvq.metrics.functional import MEAN_ROW

DEMO_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "hvq_trans_demo.yaml"
PAPER = {"codebook_recipe": {}, "lr_schedule": {}, "calibrate_score": False}  # every switch off: the official code
VARIANTS: dict[str, dict[str, Any]] = {
    "paper-style": PAPER,
    "+ k-means init": {**PAPER, "codebook_recipe": {"kmeans_init": True}},
    "+ revival": {**PAPER, "codebook_recipe": {"revive_after": "REVIVE"}},
    "+ warm-up/cosine": {**PAPER, "lr_schedule": "SCHEDULE"},
    "+ score calibration": {**PAPER, "calibrate_score": True},
    "all but score calibration": {"calibrate_score": False},
    "all (demo config)": {},
}


def variant_args(demo: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """The demo config's model arguments with one variant's switches; placeholders take the demo's settings."""
    args = {**demo, **overrides}
    recipe = args.get("codebook_recipe", {})
    if recipe.get("revive_after") == "REVIVE":
        args["codebook_recipe"] = {"revive_after": demo.get("codebook_recipe", {}).get("revive_after", 0)}
    if args.get("lr_schedule") == "SCHEDULE":
        args["lr_schedule"] = demo.get("lr_schedule", {})
    return args


def sweep_variants(sweeps: list[str]) -> dict[str, dict[str, Any]]:
    """``["lr=1e-4,1e-3"]`` -> ``{"lr=1e-4": {"lr": 0.0001}, "lr=1e-3": {"lr": 0.001}}`` (values read as JSON)."""
    variants = {}
    for sweep in sweeps:
        name, sep, values = sweep.partition("=")
        if not sep or not name or not values:
            msg = f"--sweep {sweep!r}: expected NAME=VALUE[,VALUE...], e.g. lr=1e-4,1e-3."
            raise ValueError(msg)
        variants |= {f"{name}={value}": {name: json.loads(value)} for value in values.split(",")}
    return variants


def dead_fractions(run_dir: Path) -> dict[str, float]:
    """Per-level dead fraction of the last training epoch, from the run's ``fit_metrics.json``."""
    metrics = json.loads((run_dir / "fit_metrics.json").read_text())
    prefix, suffix = "codebook/", "/dead_fraction"
    levels = {
        k[len(prefix) : -len(suffix)]: v for k, v in metrics.items() if k.startswith(prefix) and k.endswith(suffix)
    }
    # The file's keys are sorted by name (lower1 ... lower4, top): the table lists the top level first.
    return dict(sorted(levels.items(), key=lambda item: (item[0] != "top", item[0])))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="./datasets/textures", help="Textures demo data folder")
    parser.add_argument("--categories", nargs="+", default=None, help="subset of the categories (default: all)")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--config", type=Path, default=DEMO_CONFIG, help="config whose model is ablated")
    parser.add_argument("--epochs", type=int, default=None, help="default: the config's max_epochs")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--sweep", nargs="+", default=[], metavar="NAME=V1,V2", help="one variant per value")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--output", type=Path, default=Path("results/recipe_ablation"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> str:
    """Run every variant for every seed and write ``ablation.md``; returns the Markdown."""
    args = parse_args(argv)
    config = yaml.safe_load(args.config.read_text())
    demo, data = dict(config["model"]["init_args"]), config["data"]["init_args"]
    epochs = args.epochs or config["trainer"]["max_epochs"]
    settings = {
        "data": "Textures",
        "root": args.root,
        "categories": args.categories,
        "backbone": demo.pop("backbone"),
        "backbone_weights": None,
        "pre_trained": demo.pop("pre_trained", True),
        "image_size": args.image_size,
        "epochs": epochs,
        "train_batch_size": data["train_batch_size"],
        "eval_batch_size": data["eval_batch_size"],
        "num_workers": data.get("num_workers", 1),
        "accelerator": "cpu",
        "throughput_batch_sizes": [],
        "throughput_repeats": 1,
        "threads": args.threads,
        "progress": False,
        "model_args": {},
    }
    variants = {name: VARIANTS[name] for name in args.variants} | sweep_variants(args.sweep)
    rows = []
    for name, overrides in variants.items():
        runs = []
        for seed in args.seeds:
            run_dir = args.output / "runs" / f"{name.strip('+ ').replace('/', '-').replace(' ', '_')}-seed{seed}"
            model_args = variant_args(demo, {k: v for k, v in overrides.items() if k != "train_batch_size"})
            job = Job("HVQTrans", SHORT_NAMES["hvq_trans"], model_args, settings, str(run_dir))
            batch = overrides.get("train_batch_size", settings["train_batch_size"])
            job.settings = {**settings, "seed": seed, "train_batch_size": batch}
            print(f"{name}, seed {seed}: training", flush=True)
            outcome = run_isolated(job)
            if outcome.error:
                raise RuntimeError(f"{name}, seed {seed}: {outcome.error}")
            mean = outcome.metrics.loc[MEAN_ROW]
            dead = dead_fractions(run_dir)
            runs.append(
                {
                    "image AUROC": 100 * mean["image_AUROC"],
                    "pixel AUROC": 100 * mean["pixel_AUROC"],
                    "AU-PRO": 100 * mean["AUPRO"],
                    "dead (top / lower...)": dead,
                    "train s": outcome.stats["train_s"],
                }
            )
        rows.append((name, runs))
    lines = [
        f"HVQ-Trans recipe ablation: `{args.config}` model, {epochs} epochs, seeds {args.seeds}, last epoch tested. "
        "Mean over seeds of the per-category means (%); dead fraction per level (top first) in the last epoch.",
        "",
        "| variant | image AUROC | pixel AUROC | AU-PRO | dead fraction per level | train s |",
        "|---|---|---|---|---|---|",
    ]
    for name, runs in rows:
        metrics = {key: statistics.mean(run[key] for run in runs) for key in ("image AUROC", "pixel AUROC", "AU-PRO")}
        levels = runs[0]["dead (top / lower...)"]
        dead = " / ".join(f"{statistics.mean(run['dead (top / lower...)'][lvl] for run in runs):.2f}" for lvl in levels)
        seconds = statistics.mean(run["train s"] for run in runs)
        cells = " | ".join(f"{value:.1f}" for value in metrics.values())
        lines.append(f"| {name} | {cells} | {dead} | {seconds:.0f} |")
    report = "\n".join(lines) + "\n"
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "ablation.md").write_text(report)
    print(report)
    return report


if __name__ == "__main__":
    main()
