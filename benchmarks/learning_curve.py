"""Learning curves: per-epoch training statistics and test metrics at chosen epochs, from one training run.

For each model (a YAML config such as ``configs/hvq_trans_demo.yaml``, or an anomalib model name such as
``patchcore``) one run records after every epoch: the train loss, the learning rate, the validation
reconstruction MSE next to the "category mean feature map" baseline (the MSE of predicting each validation
image's backbone features by the mean training feature map of its category), and every logged codebook
statistic (HVQ-Trans: ``codebook/<level>/dead_fraction`` and ``perplexity``). After the epochs given by
``--eval-epochs`` and after the last one, a separate pass over the test set computes the per-category metrics
on raw scores. Training is never restarted and the test set is only reported on: no checkpoint is chosen
with it. Models that train for a single epoch (memory banks such as PatchCore) are evaluated once and drawn
as horizontal lines.

Written to ``--output``: ``<label>/curve.csv`` (one row per epoch, rewritten after each, so an interrupted
run keeps its curve) and ``<label>/per_category.csv`` (one row per evaluated epoch and category); then, from
every ``<label>/curve.csv`` in ``--output`` (so separate invocations, e.g. one per model run side by side,
add up): ``learning_curve.csv``, ``learning_curve.md`` and ``learning_curve.png``.

Example (Textures demo data, HVQ-Trans paper-style recipe at demo dims, UniAD, and the PatchCore line):
    python benchmarks/learning_curve.py --data Textures --root ./datasets/textures \
        --models configs/hvq_trans_paper_demo.yaml configs/uniad_demo.yaml patchcore \
        --model-args 'patchcore={"coreset_sampling_ratio": 0.01}' \
        --epochs 300 --eval-epochs 10 30 100 300 --threads 1 --output results/learning_curve
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from compare import Job, build_datamodule, build_model, resolve_model
from lightning.fabric.utilities.apply_func import move_data_to_device
from lightning.pytorch import Callback, LightningModule, Trainer

from anomalib_hvq.metrics import PerCategoryMetrics
from anomalib_hvq.metrics.functional import MEAN_ROW, METRIC_NAMES

LOGGED_PREFIXES = ("train_", "codebook/")
PLOTTED_METRICS = ("image_AUROC", "pixel_AUROC")
CURVE_FILE, PER_CATEGORY_FILE = "curve.csv", "per_category.csv"


@contextmanager
def untouched_rng(device: torch.device) -> Iterator[None]:
    """Leave the random state as it was: loaders and passes run here must not change the training's draws."""
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        yield


def prepared_batches(module: LightningModule, loader: Any, trainer: Trainer) -> Iterator[Any]:
    """Batches of ``loader`` on the module's device, pre-processed as in testing (resize, normalisation)."""
    pre_processor = getattr(module, "pre_processor", None)
    for index, batch in enumerate(loader):
        batch = move_data_to_device(batch, module.device)
        if pre_processor:
            pre_processor.on_test_batch_start(trainer, module, batch, index)
        yield batch


def reconstruct(torch_model: torch.nn.Module, features: torch.Tensor, class_index: torch.Tensor) -> torch.Tensor:
    """The model's reconstruction ``(B, C, h, w)`` of backbone features, with the true classes where it takes them."""
    if "class_index" in inspect.signature(torch_model.reconstruct).parameters:
        return torch_model.reconstruct(features, class_index)
    return torch_model.reconstruct(features)


class ReconstructionProbe:
    """Validation reconstruction MSE of a feature-reconstruction model, and the category-mean baseline's.

    The baseline predicts every image's features ``(C, h, w)`` by the mean training feature map of its
    category: a reconstruction model that does not beat it has learnt nothing image-specific yet.
    """

    def __init__(self) -> None:
        self.means: dict[str, torch.Tensor] = {}

    @staticmethod
    def applies(module: LightningModule) -> bool:
        """Whether the model reconstructs backbone features (UniAD, HVQ-Trans)."""
        torch_model = getattr(module, "model", None)
        return hasattr(torch_model, "reconstruct") and hasattr(torch_model, "feature_extractor")

    @torch.no_grad()
    def fit(self, module: LightningModule, trainer: Trainer) -> None:
        """Mean training feature map per category (one pass over the training set, backbone in eval mode)."""
        datamodule, extractor = trainer.datamodule, module.model.feature_extractor
        train_data = datamodule.train_data
        loader = torch.utils.data.DataLoader(
            train_data,
            batch_size=datamodule.train_batch_size,
            num_workers=datamodule.num_workers,
            collate_fn=train_data.collate_fn,
        )
        sums: dict[str, torch.Tensor] = {}
        counts: dict[str, int] = {}
        was_training = extractor.training
        extractor.eval()
        for batch in prepared_batches(module, loader, trainer):
            features = extractor(batch.image)
            for category, feature in zip(batch.category, features, strict=True):
                sums[category] = sums.get(category, 0) + feature.double()
                counts[category] = counts.get(category, 0) + 1
        extractor.train(was_training)
        self.means = {category: (sums[category] / counts[category]).float() for category in sums}

    @torch.no_grad()
    def measure(self, module: LightningModule, trainer: Trainer) -> tuple[float, float]:
        """``(model MSE, baseline MSE)`` over the validation images: mean over images, channels and positions."""
        errors, baseline, count = 0.0, 0.0, 0
        for batch in prepared_batches(module, trainer.datamodule.val_dataloader(), trainer):
            good = batch.gt_label == 0  # a validation split may hold anomalous images: only good ones count
            if not bool(good.any()):
                continue
            features = module.model.feature_extractor(batch.image[good])
            class_index = batch.class_index[good]
            categories = [c for c, keep in zip(batch.category, good.tolist(), strict=True) if keep]
            means = torch.stack([self.means[c] for c in categories]).to(features.device)
            reconstruction = reconstruct(module.model, features, class_index).float()
            errors += float((reconstruction - features).pow(2).mean(dim=(1, 2, 3)).sum())
            baseline += float((means - features).pow(2).mean(dim=(1, 2, 3)).sum())
            count += len(features)
        return errors / max(count, 1), baseline / max(count, 1)


@torch.no_grad()
def evaluate(module: LightningModule, trainer: Trainer) -> pd.DataFrame:
    """Per-category test metrics (categories plus ``mean``) of the model as it is, on raw scores.

    A model with a score calibration (HVQ-Trans ``calibrate_score=True``) is first calibrated on the validation
    set, as Lightning's validation would do before testing.
    """
    if getattr(getattr(module, "model", None), "score_calibration", False):
        module.calibrate_score(trainer.datamodule.val_dataloader())
    collector = PerCategoryMetrics(print_table=False)
    for index, batch in enumerate(prepared_batches(module, trainer.datamodule.test_dataloader(), trainer)):
        outputs = module.test_step(batch, index)
        collector.update(outputs, batch, trainer=trainer)
    return collector.compute()


class LearningCurve(Callback):
    """Records one row per training epoch and evaluates the test set after the chosen epochs.

    A row is completed at the start of the next epoch (or at the end of training), once the model's own
    epoch-end hooks have run: its logged values (codebook statistics) are then available and memory-bank
    models have built their bank. Evaluation and probes run in eval mode without gradients, on a forked
    random state, so the training itself is the same as without them.

    Args:
        eval_epochs: 1-based epochs after which the test set is evaluated (the last epoch always is).
        output_dir: Folder for ``curve.csv`` and ``per_category.csv``.
        stop_epoch: Stop training after this 1-based epoch; the learning-rate schedule stays that of the
            trainer's ``max_epochs`` (the first epochs of a longer run). ``None``: train to ``max_epochs``.

    """

    def __init__(self, eval_epochs: Sequence[int], output_dir: str | Path, stop_epoch: int | None = None) -> None:
        self.eval_epochs = set(eval_epochs)
        self.stop_epoch = stop_epoch
        self.output_dir = Path(output_dir)
        self.rows: list[dict[str, Any]] = []
        self.per_category: list[pd.DataFrame] = []
        self.probe = ReconstructionProbe()
        self._pending: dict[str, Any] | None = None
        self._epoch_start = 0.0
        self._train_s = 0.0

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Compute the category mean feature maps of the baseline."""
        if ReconstructionProbe.applies(pl_module):
            with untouched_rng(pl_module.device):
                self.probe.fit(pl_module, trainer)

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Complete the previous epoch's row, then start timing this epoch."""
        self._complete(trainer, pl_module, last=False)
        self._epoch_start = time.perf_counter()

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Note the epoch's training time, optimiser steps and learning rate."""
        epoch_s = time.perf_counter() - self._epoch_start
        self._train_s += epoch_s
        groups = trainer.optimizers[0].param_groups if trainer.optimizers else []
        lr = groups[0]["lr"] if groups else math.nan  # memory-bank models have no optimiser
        self._pending = {
            "epoch": trainer.current_epoch + 1,
            "step": trainer.global_step,
            "epoch_s": epoch_s,
            "train_s": self._train_s,
            "lr": lr,
        }
        if self.stop_epoch is not None and trainer.current_epoch + 1 >= self.stop_epoch:
            trainer.should_stop = True

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Complete the last row and evaluate the last epoch."""
        self._complete(trainer, pl_module, last=True)

    def _complete(self, trainer: Trainer, pl_module: LightningModule, last: bool) -> None:
        row, self._pending = self._pending, None
        if row is None:
            return
        for name, value in trainer.callback_metrics.items():
            if name.startswith(LOGGED_PREFIXES) and not name.endswith("_step") and value.numel() == 1:
                row[name.removesuffix("_epoch")] = float(value)
        was_training = pl_module.training
        pl_module.eval()
        with untouched_rng(pl_module.device):
            if self.probe.means:
                row["val_mse"], row["val_mse_mean_baseline"] = self.probe.measure(pl_module, trainer)
            row["evaluated"] = last or row["epoch"] in self.eval_epochs
            if row["evaluated"]:
                start = time.perf_counter()
                table = evaluate(pl_module, trainer)
                row.update(table.loc[MEAN_ROW].to_dict())
                row["eval_s"] = time.perf_counter() - start
                self.per_category.append(table.drop(index=MEAN_ROW).rename_axis("category").assign(epoch=row["epoch"]))
        pl_module.train(was_training)
        self.rows.append(row)
        self._write()

    def _write(self) -> None:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(self.rows).to_csv(self.output_dir / CURVE_FILE, index=False)
        if self.per_category:
            table = pd.concat(self.per_category).reset_index()
            table[["epoch", "category", *METRIC_NAMES]].to_csv(self.output_dir / PER_CATEGORY_FILE, index=False)


def run_model(label: str, class_path: str, init_args: dict[str, Any], settings: dict[str, Any], output: Path) -> None:
    """Train one model with a :class:`LearningCurve` callback; its curve goes to ``output / label``."""
    from anomalib.engine import Engine
    from lightning.pytorch import seed_everything

    seed_everything(settings["seed"], workers=True)
    run_dir = output / label
    model = build_model(Job(label, class_path, init_args, settings, str(run_dir)))
    epochs = model.trainer_arguments.get("max_epochs", settings["epochs"])
    stop_epoch = settings["stop_epoch"]
    eval_epochs = [e for e in settings["eval_epochs"] if e <= min(epochs, stop_epoch or epochs)]
    curve = LearningCurve(eval_epochs, run_dir, stop_epoch)
    # Lightning validation only once, after the last epoch (it fits the post-processor; no metric is read).
    engine = Engine(
        default_root_dir=run_dir / "lightning",
        max_epochs=epochs,
        check_val_every_n_epoch=epochs,
        max_time=settings["max_time"],
        accelerator=settings["device"],
        devices=1,
        logger=False,
        callbacks=[curve],
        enable_progress_bar=settings["progress"],
    )
    engine.fit(model, datamodule=build_datamodule(settings))


def collect(output: Path) -> pd.DataFrame:
    """Every model's curve in ``output`` (``<label>/curve.csv``), with a ``model`` column."""
    curves = [pd.read_csv(path).assign(model=path.parent.name) for path in sorted(output.glob(f"*/{CURVE_FILE}"))]
    if not curves:
        msg = f"No {CURVE_FILE} under {output}: run some models first."
        raise FileNotFoundError(msg)
    return pd.concat(curves, ignore_index=True)


def models(table: pd.DataFrame) -> Iterator[tuple[str, pd.DataFrame]]:
    """Each model's curve, without the columns other models filled (e.g. codebook statistics)."""
    for model, curve in table.groupby("model", sort=False):
        yield str(model), curve.dropna(axis=1, how="all")


def is_line(curve: pd.DataFrame) -> bool:
    """Whether a model's curve is a single epoch (a memory-bank model), drawn as a horizontal line."""
    return len(curve) == 1


def _percent(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{100 * value:.1f}"


def format_markdown(table: pd.DataFrame) -> str:
    """Per model, the evaluated epochs: test metrics, losses, MSEs and codebook dead fractions."""
    lines = ["Mean over categories in % (raw scores); MSE over validation images; dead fraction per level (top first)."]
    for model, curve in models(table):
        epochs = f"{len(curve)} epoch{'s' * (len(curve) > 1)}"
        lines += [
            "",
            f"### {model}",
            "",
            f"{epochs}, median {curve['epoch_s'].median():.1f} s per epoch (training only).",
        ]
        dead = [c for c in curve.columns if c.startswith("codebook/") and c.endswith("dead_fraction")]
        header = ["epoch", "train s", "image AUROC", "pixel AUROC", "AU-PRO", "train loss", "val MSE", "mean-map MSE"]
        lines += [
            "",
            "| " + " | ".join(header + (["dead %"] if dead else [])) + " |",
            "|---" * (len(header) + bool(dead)) + "|",
        ]
        for _, row in curve[curve["evaluated"].astype(bool)].iterrows():
            cells = [f"{int(row['epoch'])}", f"{row['train_s']:.0f}"]
            cells += [_percent(row.get(m, math.nan)) for m in ("image_AUROC", "pixel_AUROC", "AUPRO")]
            cells += [f"{row.get(m, math.nan):.3f}" for m in ("train_loss", "val_mse", "val_mse_mean_baseline")]
            if dead:
                cells.append("/".join(_percent(row[c]) for c in dead))
            lines.append("| " + " | ".join(cells).replace("nan", "n/a") + " |")
    return "\n".join(lines) + "\n"


def plot(table: pd.DataFrame, path: Path) -> None:
    """AUROC vs epoch (one-epoch models as horizontal lines), validation MSE vs epoch, dead fraction vs epoch."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, (auroc, mse, dead) = plt.subplots(1, 3, figsize=(16, 4.8))
    colours = iter(plt.rcParams["axes.prop_cycle"].by_key()["color"] * 4)
    log_x = table["epoch"].max() >= 100
    baselines: set[float] = set()
    for model, curve in models(table):
        colour = next(colours)
        evaluated = curve[curve["evaluated"].astype(bool)]
        for metric, style in zip(PLOTTED_METRICS, ("-", "--"), strict=True):
            label = f"{model} {metric.split('_')[0]}"
            if is_line(curve):
                auroc.axhline(100 * evaluated[metric].iloc[0], color=colour, linestyle=style, label=label)
            else:
                auroc.plot(evaluated["epoch"], 100 * evaluated[metric], style, marker="o", color=colour, label=label)
        if is_line(curve):
            continue
        if "val_mse" in curve:
            mse.plot(curve["epoch"], curve["val_mse"], color=colour, label=f"{model} validation")
            baseline = round(float(curve["val_mse_mean_baseline"].mean()), 4)
            if baseline not in baselines:  # models on the same data and backbone share it: draw it once
                baselines.add(baseline)
                mse.axhline(baseline, linestyle=":", color=colour, label="category mean feature map (baseline)")
        levels = [c for c in curve.columns if c.startswith("codebook/") and c.endswith("dead_fraction")]
        for level, alpha in zip(levels, torch.linspace(1.0, 0.35, max(len(levels), 1)).tolist(), strict=False):
            name = level.split("/")[1]
            dead.plot(curve["epoch"], 100 * curve[level], color=colour, alpha=alpha, label=f"{model} {name}")
    titles = (
        "Test AUROC, mean over categories (solid: image, dashed: pixel)",
        "Validation reconstruction MSE",
        "Codebook dead codes",
    )
    for axis, title, unit in zip((auroc, mse, dead), titles, ("%", "MSE", "% of codes"), strict=True):
        axis.set_title(title)
        axis.set_xlabel("epoch")
        axis.set_ylabel(unit)
        axis.grid(alpha=0.3)
        if log_x:
            axis.set_xscale("log")
        if axis.has_data():
            axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_report(output: Path) -> pd.DataFrame:
    """Write ``learning_curve.{csv,md,png}`` from every curve in ``output``; returns the combined table."""
    table = collect(output)
    table.to_csv(output / "learning_curve.csv", index=False)
    (output / "learning_curve.md").write_text(format_markdown(table))
    plot(table, output / "learning_curve.png")
    return table


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="Textures", help="anomalib_hvq.data name or datamodule class path")
    parser.add_argument("--root", default=None, help="dataset root (default: the datamodule's)")
    parser.add_argument("--categories", nargs="+", default=None)
    parser.add_argument("--models", nargs="*", default=["configs/hvq_trans_demo.yaml"], help="configs or names")
    parser.add_argument("--model-args", nargs="+", default=[], metavar="LABEL=JSON", help="per model label")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default: the last eval epoch)")
    parser.add_argument("--eval-epochs", type=int, nargs="+", default=[10, 30, 100, 300])
    parser.add_argument("--max-time", default=None, help="stop each model's training after DD:HH:MM:SS")
    parser.add_argument(
        "--stop-epoch",
        type=int,
        default=None,
        help="stop each model's training after this epoch, keeping the schedule of --epochs",
    )
    parser.add_argument("--backbone", default="tf_efficientnet_lite0")
    parser.add_argument("--backbone-weights", default=None, help="local timm- or lukemelas-format weight file")
    parser.add_argument("--no-pre-trained", dest="pre_trained", action="store_false")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-batch-size", type=int, default=16)
    parser.add_argument("--eval-batch-size", type=int, default=16)
    parser.add_argument("--num-workers", type=int, default=1)
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--no-progress", dest="progress", action="store_false")
    parser.add_argument("--output", type=Path, default=Path("results/learning_curve"))
    return parser.parse_args(argv)


def label_of(spec: str, class_path: str) -> str:
    """A model's label (its folder in the output): the config's file name, else the model's name as given."""
    return Path(spec).stem if spec.endswith((".yaml", ".yml")) else spec.rpartition(".")[2] or class_path


def main(argv: list[str] | None = None) -> pd.DataFrame:
    """Train the models, then write the combined report; returns the combined table."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = {k: v for k, v in vars(args).items() if k not in {"models", "model_args", "output"}}
    settings["epochs"] = args.epochs or max(args.eval_epochs)
    settings["model_args"] = {label: json.loads(text) for label, _, text in (a.partition("=") for a in args.model_args)}
    for spec in args.models:
        class_path, init_args = resolve_model(spec)
        label = label_of(spec, class_path)
        print(f"{label}: training {settings['epochs']} epochs, evaluating after {args.eval_epochs}", flush=True)
        run_model(label, class_path, init_args, settings, args.output)
    table = write_report(args.output)
    print((args.output / "learning_curve.md").read_text())
    return table


if __name__ == "__main__":
    main()
