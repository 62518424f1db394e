"""The optimisation recipe shared by UniAD and HVQ-Trans: AdamW with one learning-rate step."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from lightning.pytorch import Trainer
from lightning.pytorch.utilities.types import OptimizerLRScheduler


def adamw_with_step_decay(
    parameters: Iterable[torch.nn.Parameter],
    lr: float,
    weight_decay: float,
    trainer: Trainer | None,
    step_fraction: float = 0.8,
) -> OptimizerLRScheduler:
    """AdamW whose learning rate is divided by 10 after ``step_fraction`` of the training.

    Both papers train 1000 epochs and step at 800; expressing the step as a fraction keeps the recipe's
    shape under the short schedules of demos and tests. The schedule follows ``max_epochs`` (stepped per
    epoch), else ``max_steps`` (stepped per batch); with neither there is no schedule.

    Args:
        parameters: Parameters to optimise (the trainable ones).
        lr: Initial learning rate.
        weight_decay: AdamW weight decay (applied to every parameter, as the official code does).
        trainer: The Lightning trainer, or ``None`` outside one.
        step_fraction: Fraction of the training after which the learning rate drops.

    Returns:
        The optimizer, with its ``StepLR`` scheduler configuration when a schedule length is known.

    """
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay)
    max_epochs = trainer.max_epochs if trainer is not None else None
    max_steps = trainer.max_steps if trainer is not None else -1
    if max_epochs is not None and max_epochs > 0:
        step, interval = max(1, int(step_fraction * max_epochs)), "epoch"
    elif max_steps > 0:
        step, interval = max(1, int(step_fraction * max_steps)), "step"
    else:
        return optimizer
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=step, gamma=0.1)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": interval}}
