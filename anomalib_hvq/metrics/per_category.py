# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Lightning callback reporting anomaly-detection metrics per category and their mean.

anomalib's ``Evaluator`` pools the whole test set. A unified model is trained on all categories of
a dataset, and the field reports each metric on each category's test set alone and then the
unweighted mean over categories; pooled numbers differ because score scales differ between
categories. ``PerCategoryMetrics`` works with any ``AnomalibModule``::

    engine = Engine(callbacks=[PerCategoryMetrics()])
    engine.test(model, datamodule=datamodule)

Which scores are used: Lightning runs the trainer's callbacks (this one) before the model's own
callbacks (anomalib's pre-processor, post-processor, evaluator, visualizer), so at
``on_test_batch_end`` the batch still holds the RAW ``pred_score``/``anomaly_map`` from
``test_step``; the post-processor min-max-normalises them in place afterwards. Raw values are what
we want: the normalisation is fitted on the pooled validation set and clamps to ``[0, 1]``, so a
category whose scores all fall outside the clamped range collapses into ties (AUROC 0.5). If the
callback order is ever reversed, :attr:`PerCategoryMetrics.score_source` says ``"normalized"`` and a
warning is logged.

Memory: exact metrics need every pixel score. Per category the callback keeps the maps in
``map_dtype`` (float32 by default: ~200 KB per 224x224 image, ~350 MB for MVTec AD's 1725 test
images) and the masks as bool (~50 KB per image), on CPU. ``map_dtype=torch.float16`` halves the
maps at the price of ties between close scores. Metrics are computed one category at a time
(transient peak ~70 bytes per pixel of the largest category, ~0.6 GB for 160 images at 224x224).
Several test dataloaders are pooled; under DDP each process reports on its own shard only.
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from anomalib_hvq.metrics.functional import category_metrics, metrics_table, resize_masks
from anomalib_hvq.metrics.html_report import CategoryOutputs, write_html_report
from anomalib_hvq.metrics.report import format_markdown, undefined_note, write_report

logger = logging.getLogger(__name__)

DEFAULT_CATEGORY = "all"


@dataclass
class _CategoryBuffer:
    """Test outputs of one category, accumulated batch by batch on CPU."""

    scores: list[torch.Tensor] = field(default_factory=list)  # (b,) float32
    labels: list[torch.Tensor] = field(default_factory=list)  # (b,) bool
    maps: list[torch.Tensor] = field(default_factory=list)  # (b, H, W) map_dtype
    masks: list[torch.Tensor] = field(default_factory=list)  # (b, H, W) bool
    image_paths: list[str | None] = field(default_factory=list)  # (b,) for the report's overlays
    # False once a batch lacked labels (image metrics) or maps/masks (pixel metrics): a metric on
    # a silently partial test set would be misleading, so it becomes NaN instead.
    has_labels: bool = True
    has_pixels: bool = True

    def metrics(self, fpr_limit: float) -> dict[str, float]:
        """Compute the seven metrics on everything accumulated so far."""
        return category_metrics(
            torch.cat(self.scores),
            torch.cat(self.labels) if self.has_labels else None,
            torch.cat(self.maps) if self.has_pixels else None,
            torch.cat(self.masks) if self.has_pixels else None,
            fpr_limit,
        )

    def outputs(self) -> CategoryOutputs:
        """Everything accumulated, concatenated, for the HTML report."""
        complete = len(self.image_paths) == sum(len(scores) for scores in self.scores)
        return CategoryOutputs(
            scores=torch.cat(self.scores),
            labels=torch.cat(self.labels) if self.has_labels else None,
            maps=torch.cat(self.maps) if self.has_pixels else None,
            masks=torch.cat(self.masks) if self.has_pixels else None,
            image_paths=self.image_paths if complete else [],
        )


def _field(name: str, *sources: Any) -> Any:
    """First non-``None`` value of attribute (or mapping key) ``name`` among ``sources``."""
    for source in sources:
        value = source.get(name) if isinstance(source, Mapping) else getattr(source, name, None)
        if value is not None:
            return value
    return None


def _per_image(tensor: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Reshape ``(B, H, W)`` or ``(B, 1, H, W)`` to ``(B, H, W)``, detached on CPU."""
    return tensor.detach().cpu().reshape(batch_size, *tensor.shape[-2:])


class PerCategoryMetrics(Callback):
    """Compute image/pixel AUROC, AP, F1-max and AU-PRO per category at the end of testing.

    Each sample's category is taken from the batch's ``category`` (list[str]), else its
    ``class_index`` ((B,) long) mapped through the datamodule's ``class_names``, else the
    datamodule's ``category`` attribute (or ``"all"``), so plain single-category anomalib
    datamodules work too (one row plus the mean).

    At test epoch end it logs ``<metric>/<category>`` and ``<metric>/mean`` (fractions in
    ``[0, 1]``, ``NaN`` where undefined) for the metrics in
    :data:`~anomalib_hvq.metrics.functional.METRIC_NAMES`, prints a Markdown table (percent) and
    writes ``per_category_metrics.md``, ``per_category_metrics.csv`` and ``report.html`` (the table,
    image ROC curves, the learning curve if there is one, and per category the highest-scoring normal
    and lowest-scoring defective images as anomaly-map overlays).

    Args:
        output_dir: Where to write the report; ``None`` uses ``trainer.log_dir`` (the logger's
            directory, or ``default_root_dir`` without a logger).
        fpr_limit: False-positive-rate limit of the AU-PRO (anomalib's default 0.3).
        map_dtype: dtype anomaly maps are stored in until the end of the epoch.
        print_table: Whether to print the Markdown table on the global-zero process.
        html_report: Whether to write ``report.html`` too.
        report_cases: Failure cases per list and category in ``report.html``.
        learning_curve: Learning-curve CSV drawn in ``report.html`` (from ``benchmarks/learning_curve.py``);
            ``None`` draws ``learning_curve.csv`` from the output folder if it has one.

    Attributes:
        results: Categories (sorted, plus ``mean``) x metrics DataFrame of the last test run.
        score_source: ``"raw"`` or ``"normalized"``: which scores the last run saw.
        report_paths: Paths of the Markdown and CSV files of the last run.
        html_path: Path of ``report.html`` of the last run (``None`` when not written).

    """

    def __init__(
        self,
        output_dir: str | Path | None = None,
        fpr_limit: float = 0.3,
        map_dtype: torch.dtype = torch.float32,
        print_table: bool = True,
        html_report: bool = True,
        report_cases: int = 4,
        learning_curve: str | Path | None = None,
    ) -> None:
        self.output_dir = output_dir
        self.fpr_limit = fpr_limit
        self.map_dtype = map_dtype
        self.print_table = print_table
        self.html_report = html_report
        self.report_cases = report_cases
        self.learning_curve = learning_curve
        self.results: pd.DataFrame | None = None
        self.score_source = "raw"
        self.report_paths: tuple[Path, Path] | None = None
        self.html_path: Path | None = None
        self._buffers: dict[str, _CategoryBuffer] = {}

    def reset(self) -> None:
        """Drop accumulated data and previous results."""
        self._buffers = {}
        self.results = None
        self.report_paths = None
        self.html_path = None

    def on_test_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Reset state (a second ``test`` must not add to the first) and find the score source."""
        self.reset()
        self.score_source = self._score_source(trainer, pl_module)
        if self.score_source == "normalized":
            logger.warning(
                "PerCategoryMetrics runs after the post-processor: it sees min-max normalised scores "
                "clamped to [0, 1], which can tie scores within a category. Pass it in the trainer's "
                "callbacks so that it runs first and sees the raw scores."
            )
        if getattr(trainer, "world_size", 1) > 1:
            logger.warning("PerCategoryMetrics computes on each process's share of the test set only.")

    def _score_source(self, trainer: Trainer, pl_module: LightningModule) -> str:
        """Return ``"normalized"`` if a normalising post-processor callback runs before this one."""
        post_processor = getattr(pl_module, "post_processor", None)
        if post_processor is None or not getattr(post_processor, "enable_normalization", False):
            return "raw"
        order = [id(callback) for callback in getattr(trainer, "callbacks", [])]
        if id(post_processor) in order and id(self) in order:
            return "normalized" if order.index(id(post_processor)) < order.index(id(self)) else "raw"
        # A post-processor that is not a trainer callback never touches test_step's outputs.
        return "raw"

    def on_test_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Accumulate the batch's scores, labels, maps and masks per category."""
        del pl_module, batch_idx, dataloader_idx  # Unused.
        # test_step returns the (in-place updated) batch; fall back to the input batch for fields a
        # model's own output object may not carry.
        sources = (outputs, batch) if outputs is not None else (batch,)
        self.update(*sources, trainer=trainer)

    def update(self, *sources: Any, categories: list[str] | None = None, trainer: Any = None) -> None:
        """Add one batch of test outputs.

        Args:
            *sources: Batch-like objects (or mappings) searched in order for ``pred_score`` (B,),
                ``gt_label`` (B,), ``anomaly_map`` (B, [1,] H, W), ``gt_mask`` (B, [1,] H, W),
                ``category`` and ``class_index``.
            categories: Category of each sample; resolved from the sources if ``None``.
            trainer: Trainer whose datamodule supplies ``class_names``/``category``, if any.

        """
        anomaly_map = _field("anomaly_map", *sources)
        scores = _field("pred_score", *sources)
        if scores is None and anomaly_map is None:
            msg = "PerCategoryMetrics needs pred_score or anomaly_map in the test outputs."
            raise ValueError(msg)
        if scores is None:  # same fallback as anomalib's post-processor
            scores = torch.amax(anomaly_map, dim=(-2, -1))
        scores = scores.detach().cpu().flatten().float()
        batch_size = scores.numel()

        masks = _field("gt_mask", *sources)
        masks = None if masks is None else _per_image(masks, batch_size).bool()
        labels = _field("gt_label", *sources)
        if labels is not None:
            labels = labels.detach().cpu().flatten().bool()
        elif masks is not None:
            labels = masks.flatten(1).any(dim=1)
        maps = None if anomaly_map is None else _per_image(anomaly_map, batch_size).to(self.map_dtype)
        if maps is not None and masks is not None:
            masks = resize_masks(masks, maps.shape[-2:])

        categories = categories or self._categories(sources, batch_size, trainer)
        paths = _field("image_path", *sources)
        for name in dict.fromkeys(categories):
            index = torch.tensor([i for i, category in enumerate(categories) if category == name])
            buffer = self._buffers.setdefault(name, _CategoryBuffer())
            # Indexing copies, so the post-processor's later in-place update cannot reach our data.
            buffer.scores.append(scores[index])
            if paths is not None and len(paths) == batch_size:
                buffer.image_paths.extend(str(paths[i]) for i in index.tolist())
            if labels is None:
                buffer.has_labels = False
            else:
                buffer.labels.append(labels[index])
            if maps is None or masks is None:
                buffer.has_pixels = False
            else:
                buffer.maps.append(maps[index])
                buffer.masks.append(masks[index])

    @staticmethod
    def _categories(sources: tuple[Any, ...], batch_size: int, trainer: Any) -> list[str]:
        """Category name of each sample: ``category``, else ``class_index``, else the default."""
        names = _field("category", *sources)
        if names is not None:
            return [names] * batch_size if isinstance(names, str) else [str(name) for name in names]
        datamodule = getattr(trainer, "datamodule", None)
        class_index = _field("class_index", *sources)
        if class_index is not None:
            class_names = getattr(datamodule, "class_names", None)
            indices = torch.as_tensor(class_index).flatten().tolist()
            return [str(class_names[i]) if class_names else str(i) for i in indices]
        return [str(getattr(datamodule, "category", None) or DEFAULT_CATEGORY)] * batch_size

    def compute(self) -> pd.DataFrame:
        """Metrics of every category seen so far (sorted) plus their mean; also stored in ``results``."""
        rows = {name: self._buffers[name].metrics(self.fpr_limit) for name in sorted(self._buffers)}
        self.results = metrics_table(rows)
        return self.results

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Compute, log, print and write the per-category table."""
        if not self._buffers:
            logger.warning("PerCategoryMetrics received no test batches; nothing to report.")
            return
        table = self.compute()
        for category, row in table.iterrows():
            for metric, value in row.items():
                self._log(trainer, pl_module, f"{metric}/{category}", float(value))

        notes = [
            "Values in %; mean = unweighted mean over categories.",
            f"Scores: {self.score_source} model outputs"
            + (" (before anomalib's min-max normalisation)." if self.score_source == "raw" else "."),
        ]
        undefined = undefined_note(table)
        notes = [*notes, undefined] if undefined else notes
        markdown = format_markdown(table, notes)
        output_dir = self.output_dir or getattr(trainer, "log_dir", None) or trainer.default_root_dir
        if getattr(trainer, "is_global_zero", True):
            if self.print_table:
                print(f"\nPer-category test metrics\n\n{markdown}")
            self.report_paths = write_report(table, markdown, output_dir)
            if self.html_report:
                outputs = {name: self._buffers[name].outputs() for name in table.index if name in self._buffers}
                title = f"{type(pl_module).__name__} test report"
                self.html_path = write_html_report(
                    output_dir, table, outputs, notes, self.report_cases, self.learning_curve, title
                )
                logger.info("Test report: %s", self.html_path)

    @staticmethod
    def _log(trainer: Trainer, pl_module: LightningModule, name: str, value: float) -> None:
        """Log through Lightning, or straight into the trainer's metrics when logging is off."""
        if getattr(trainer, "barebones", False):
            # Barebones trainers forbid self.log; mirror anomalib's Evaluator so that the values
            # still reach trainer.test()'s return value.
            trainer.callback_metrics[name] = torch.tensor(value)
            trainer.logged_metrics[name] = torch.tensor(value)
            return
        pl_module.log(name, value)
