"""Checks that the validation and test splits can give meaningful numbers, with the fix in the message.

Two silent failures they replace:

- An empty validation set (e.g. one training image per category: none can be held out) leaves every
  post-processor statistic ``NaN``: scores come back un-normalised, every image is labelled
  anomalous and pooled AUROCs read 0.5, with only Lightning's generic "DataLoader length is zero"
  warning. It is refused at setup, before training.
- A test set with only normal (or only anomalous) images makes AUROC undefined; anomalib prints
  ``image_AUROC = 0.0``. Setup warns; testing raises.
"""

from __future__ import annotations

import pandas as pd
from anomalib.data.utils import LabelName

from anomalib_hvq.data.errors import SplitError


def _counts(samples: pd.DataFrame) -> str:
    """Count images per category as ``"a: 1, b: 3"``."""
    counts = samples.groupby("category").size() if len(samples) else pd.Series(dtype=int)
    return ", ".join(f"{category}: {count}" for category, count in counts.items()) or "no image at all"


def empty_validation_error(mode: str, ratio: float, source: pd.DataFrame, source_name: str) -> SplitError:
    """Error for a validation split that came out empty.

    Args:
        mode: ``val_split_mode`` value, e.g. ``"from_train"``.
        ratio: ``val_split_ratio``.
        source: Sample table the validation images were to be taken from.
        source_name: What ``source`` is, e.g. ``"normal training images"``.

    """
    return SplitError(
        f"The validation set is empty: val_split_mode='{mode}' with val_split_ratio={ratio} holds out images only "
        f"from categories with at least 2 {source_name}, and there are {_counts(source)}. The post-processor fits "
        "its score normalisation and thresholds on validation scores; without them scores stay un-normalised, "
        "every image is labelled anomalous and pooled metrics are meaningless. Add images (at least 2 "
        f"{source_name} per category), or set val_split_mode='same_as_test' to fit them on the test set "
        "(which makes the test F1 optimistic)."
    )


def no_validation_error() -> SplitError:
    """Error for ``val_split_mode='none'`` when the Engine asks for validation data."""
    return SplitError(
        "val_split_mode='none' leaves no validation set, but training validates and the post-processor fits its "
        "score normalisation and thresholds on validation scores. Use val_split_mode='from_train' (the default: "
        "10% of each category's normal training images), 'synthetic' or 'same_as_test'."
    )


def scoring_problem(samples: pd.DataFrame) -> str | None:
    """Say why ``samples`` cannot be scored by AUROC (only one label, or empty), or ``None`` if it can."""
    labels = set(samples["label_index"].tolist()) if len(samples) else set()
    if labels >= {LabelName.NORMAL, LabelName.ABNORMAL}:
        return None
    if not labels:
        return "The test set is empty"
    held = "normal" if LabelName.NORMAL in labels else "anomalous"
    missing = "anomalous (test/<defect>/ with masks in ground_truth/<defect>/)" if held == "normal" else "normal"
    return (
        f"The test set holds only {held} images ({_counts(samples)}), so AUROC and the other metrics are undefined "
        f"(anomalib would print image_AUROC = 0.0). Add {missing} test images, or set test_split_mode='synthetic' "
        "to test on synthetic anomalies; to score images without labels use predict instead of test"
    )
