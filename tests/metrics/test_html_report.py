"""report.html: failure-case selection, overlays, charts, and the page as headless Chromium renders it."""

import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from anomalib_hvq.metrics import PerCategoryMetrics
from anomalib_hvq.metrics.failure_cases import OUTLINE, failure_cases, overlay
from anomalib_hvq.metrics.svg_chart import HEIGHT, MARGIN_BOTTOM, MARGIN_LEFT, MARGIN_TOP, PALETTE, line_chart

from .synthetic import CATEGORIES, Synthetic

CASES = 3


def test_failure_cases_are_the_highest_normal_and_lowest_defective_scores() -> None:
    scores = torch.tensor([0.1, 0.9, 0.5, 0.3, 0.7, 0.2])
    labels = torch.tensor([0, 0, 1, 1, 0, 1])
    normal, defective = failure_cases(scores, labels, count=2)
    # Ranks by descending score: 0.9 -> 1, 0.7 -> 2, 0.5 -> 3, 0.3 -> 4, 0.2 -> 5, 0.1 -> 6.
    assert [(case.index, case.rank) for case in normal] == [(1, 1), (4, 2)]
    assert [(case.index, case.rank) for case in defective] == [(5, 5), (3, 4)]
    assert not any(case.defective for case in normal) and all(case.defective for case in defective)


def test_overlay_colours_high_map_values_red_and_outlines_the_defect(tmp_path: Path) -> None:
    path = tmp_path / "grey.png"
    Image.fromarray(np.full((40, 40, 3), 128, np.uint8)).save(path)
    anomaly_map = torch.zeros(20, 20)
    anomaly_map[5:15, 5:15] = 3.0
    mask = torch.zeros(20, 20, dtype=torch.bool)
    mask[8:12, 8:12] = True
    pixels = np.asarray(overlay(anomaly_map, (0.0, 3.0), path, mask)).astype(int)
    assert pixels.shape == (20, 20, 3)
    hot, cold = pixels[6, 6], pixels[1, 1]
    assert hot[0] > hot[2] + 50 and cold[2] > cold[0] + 50  # red where the map is high, blue where low
    assert tuple(pixels[8, 10]) == OUTLINE  # border of the defect
    assert tuple(pixels[10, 10]) != OUTLINE  # its interior stays visible


def test_line_chart_maps_the_axis_ranges_onto_the_plot_corners() -> None:
    svg = line_chart({"a": ([0, 1], [0, 1])}, "t", "x", "y", (0, 1), (0, 1))
    (points,) = re.findall(r'<polyline points="([^"]+)"', svg)
    (x0, y0), (x1, y1) = (tuple(map(float, point.split(","))) for point in points.split())
    assert (x0, y0) == (MARGIN_LEFT, HEIGHT - MARGIN_BOTTOM)  # (0, 0) at the bottom left
    assert x1 > x0 and y1 == MARGIN_TOP  # (1, 1) at the top right


def _write_images(data: Synthetic, root: Path) -> list[str]:
    """One PNG per test sample (noise), named by category and label as a test tree would be."""
    rng = np.random.default_rng(0)
    paths = []
    for index, (category, label) in enumerate(zip(data.categories, data.labels.tolist(), strict=True)):
        path = root / category / ("defect" if label else "good") / f"{index:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(90, 170, (48, 48, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


@pytest.fixture
def report(tmp_path: Path, synthetic: Synthetic) -> Path:
    """report.html written by the callback from synthetic outputs with image files and a learning curve."""
    curve = {"epoch": [1, 2, 3], "step": [5, 10, 15], "train_loss": [3.0, 2.0, 1.5], "image_AUROC": [0.5, None, 0.7]}
    pd.DataFrame(curve).to_csv(tmp_path / "learning_curve.csv", index=False)
    callback = PerCategoryMetrics(print_table=False, report_cases=CASES)
    batch = SimpleNamespace(
        pred_score=synthetic.scores,
        gt_label=synthetic.labels,
        anomaly_map=synthetic.maps,
        gt_mask=synthetic.masks,
        image_path=_write_images(synthetic, tmp_path / "images"),
    )
    callback.update(batch, categories=synthetic.categories)
    trainer = SimpleNamespace(default_root_dir=tmp_path, is_global_zero=True, barebones=True)
    trainer.callback_metrics, trainer.logged_metrics = {}, {}
    callback.on_test_epoch_end(trainer, SimpleNamespace())
    assert callback.html_path == tmp_path / "report.html"
    return callback.html_path


def test_report_holds_table_curves_and_the_failure_cases(report: Path, synthetic: Synthetic) -> None:
    page = report.read_text()
    scores, labels = synthetic.scores, synthetic.labels.bool()
    for category in CATEGORIES:
        assert f"<td>{category}</td>" in page
        mine = torch.tensor([c == category for c in synthetic.categories])
        # The normal image with the category's highest score is shown first, by file name.
        first = int(torch.nonzero(mine & ~labels).flatten()[scores[mine & ~labels].argmax()])
        assert f"good/{first:03d}.png" in page
    assert page.count("<polyline") == len(CATEGORIES) + 2  # one ROC per category + two learning-curve charts
    # The test metric is drawn before the loss; bookkeeping columns (step) are not drawn.
    assert page.index('aria-label="image_AUROC"') < page.index('aria-label="train_loss"')
    assert 'aria-label="step"' not in page
    assert page.count("<figure>") == len(CATEGORIES) * 2 * CASES
    assert page.count("data:image/jpeg;base64,") == len(CATEGORIES) * 2 * CASES


def _chromium() -> str:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        # .ci/run installs Chromium (as root, if absent), so CI never takes this branch.
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium); .ci/run installs it")
    return browser


def test_report_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    browser = _chromium()
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}"]
    url = report.resolve().as_uri()
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=True).stdout
    assert re.search(r'<table id="metrics">', dom)
    assert len(re.findall(r'<tr class="category">', dom)) == len(CATEGORIES)
    screenshot = tmp_path / "report.png"
    subprocess.run(
        # Tall enough for the whole page, so a font that lays the page out a little longer moves nothing out of view.
        [*flags, "--hide-scrollbars", "--window-size=1400,5000", f"--screenshot={screenshot}", url],
        capture_output=True,
        timeout=120,
        check=True,
    )
    pixels = np.asarray(Image.open(screenshot).convert("RGB")).reshape(-1, 3).astype(int)
    assert (pixels < 250).any(axis=1).mean() > 0.05  # far from a blank page
    chart_colour = tuple(int(PALETTE[0][i : i + 2], 16) for i in (1, 3, 5))
    assert (np.abs(pixels - chart_colour) <= 40).all(axis=1).sum() >= 20  # the SVG chart's first series was drawn
    # The embedded JPEG overlays were decoded and drawn: strongly coloured area worth several 192 px figures. The
    # thin outline is no test of that, JPEG's chroma subsampling and the browser's scaling blur it; the charts'
    # lines and legends, all else that is coloured, cover well under one figure.
    colourful = (pixels.max(axis=1) - pixels.min(axis=1) > 60).sum()
    assert colourful >= 4 * 192 * 192, colourful
