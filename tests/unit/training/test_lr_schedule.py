# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Warm-up + cosine learning-rate schedule (off by default: the papers' step)."""

import math
from types import SimpleNamespace

import pytest
import torch

from anomalib_hvq.training.optimization import LRSchedule, adamw_with_schedule


class FakeTrainer:
    """What the schedule reads from a Lightning trainer; the training length only once it is asked for."""

    def __init__(self, total_steps: int) -> None:
        self.precision_plugin = SimpleNamespace()
        self.total_steps, self.asked = total_steps, 0
        self.max_epochs, self.max_steps = None, total_steps

    @property
    def estimated_stepping_batches(self) -> int:
        self.asked += 1
        return self.total_steps


def learning_rates(schedule: LRSchedule, lr: float, total_steps: int) -> tuple[list[float], FakeTrainer]:
    trainer = FakeTrainer(total_steps)
    config = adamw_with_schedule([torch.nn.Parameter(torch.zeros(2))], lr, 0.0, trainer, schedule)
    optimizer, scheduler = config["optimizer"], config["lr_scheduler"]["scheduler"]
    assert config["lr_scheduler"]["interval"] == "step"
    assert trainer.asked == 0  # building the optimiser must not fix the training loader
    rates = []
    for _ in range(total_steps + 1):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates, trainer


def test_warmup_then_cosine_at_chosen_steps():
    rates, trainer = learning_rates(LRSchedule(cosine=True, warmup_steps=4, min_lr_fraction=0.1), 1e-3, 20)
    # Hand-computed: lr (s + 1) / 4 while warming up, then 1e-4 + 9e-4 * (1 + cos(pi (s - 4) / 16)) / 2.
    expected = {0: 2.5e-4, 1: 5e-4, 3: 1e-3, 4: 1e-3, 8: 8.681980515e-4, 12: 5.5e-4, 20: 1e-4}
    for step, rate in expected.items():
        assert math.isclose(rates[step], rate, rel_tol=1e-6), (step, rates[step], rate)
    assert trainer.asked > 0


def test_cosine_without_warmup_starts_at_the_peak():
    rates, _ = learning_rates(LRSchedule(cosine=True), 2e-3, 10)
    assert math.isclose(rates[0], 2e-3)
    assert math.isclose(rates[5], 1e-3, rel_tol=1e-6)  # half way: (1 + cos(pi / 2)) / 2
    assert rates[10] == 0.0


def test_default_is_the_papers_step():
    trainer = SimpleNamespace(precision_plugin=SimpleNamespace(), max_epochs=10, max_steps=-1)
    config = adamw_with_schedule([torch.nn.Parameter(torch.zeros(2))], 1e-3, 0.0, trainer)
    scheduler = config["lr_scheduler"]["scheduler"]
    assert isinstance(scheduler, torch.optim.lr_scheduler.StepLR)
    assert (scheduler.step_size, scheduler.gamma, config["lr_scheduler"]["interval"]) == (8, 0.1, "epoch")


def test_warmup_without_cosine_is_rejected():
    with pytest.raises(ValueError, match="needs cosine=True"):
        LRSchedule(warmup_steps=10)
