# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Codebook health metric."""

import torch

from anomalib_hvq.models.hvq_trans.codebook_usage import CodebookUsage


def test_perplexity_and_dead_fraction_per_level() -> None:
    usage = CodebookUsage(num_levels=2, num_classes=3, num_codes=4)
    # Level 0: class 0 uses all 4 codes evenly; level 1: class 0 collapsed onto code 2.
    # Class 1 and 2 are absent and must not count as dead.
    usage.update([torch.tensor([[0, 1, 2, 3]]), torch.tensor([[2, 2, 2, 2]])], torch.tensor([0]))
    result = usage.compute()
    torch.testing.assert_close(result["codebook/top/perplexity"], torch.tensor(4.0))
    torch.testing.assert_close(result["codebook/top/dead_fraction"], torch.tensor(0.0))
    torch.testing.assert_close(result["codebook/lower1/perplexity"], torch.tensor(1.0))
    torch.testing.assert_close(result["codebook/lower1/dead_fraction"], torch.tensor(0.75))


def test_classes_are_averaged_and_reset_clears() -> None:
    usage = CodebookUsage(num_levels=1, num_classes=2, num_codes=4)
    usage.update([torch.tensor([[0, 1], [3, 3]])], torch.tensor([0, 1]))
    # Class 0: 2 codes evenly (perplexity 2, half dead); class 1: 1 code (perplexity 1, 3/4 dead).
    result = usage.compute()
    torch.testing.assert_close(result["codebook/top/perplexity"], torch.tensor(1.5))
    torch.testing.assert_close(result["codebook/top/dead_fraction"], torch.tensor(0.625))
    usage.reset()
    assert usage.counts.sum() == 0
