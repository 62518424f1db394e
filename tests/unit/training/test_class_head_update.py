# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""The shared class-head tensor gets the official per-class Linear heads' AdamW update, absent classes included."""

import torch
from torch import nn

from anomalib_hvq.models.hvq_trans.class_switch import ClassSwitchedLinear
from anomalib_hvq.training.optimization import adamw

LR, WEIGHT_DECAY = 1e-2, 0.1


def test_heads_of_classes_absent_from_a_batch_move_as_official_per_class_linear_layers() -> None:
    # The official code (torch 1.11, pinned in its requirements.txt) keeps zero gradients after zero_grad(), so
    # AdamW still decays an absent class's Linear and moves it by its momentum; set_to_none=False reproduces that.
    torch.manual_seed(0)
    heads = ClassSwitchedLinear(num_classes=3, in_dim=4, out_dim=5)
    official = nn.ModuleList(nn.Linear(4, 5) for _ in range(3))
    with torch.no_grad():
        for k, layer in enumerate(official):
            layer.weight.copy_(heads.weight[k])
            layer.bias.copy_(heads.bias[k])
    ours = adamw(heads.parameters(), LR, WEIGHT_DECAY)
    reference = torch.optim.AdamW(official.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    # Every class is seen once, then class 2 is absent for two steps.
    batches = [torch.tensor([0, 1, 2]), torch.tensor([0, 0, 1]), torch.tensor([1, 0, 1])]
    for step, class_index in enumerate(batches):
        x, target = torch.randn(3, 6, 4), torch.randn(3, 6, 5)
        ours.zero_grad()
        nn.functional.mse_loss(heads(x, class_index), target).backward()
        ours.step()
        reference.zero_grad(set_to_none=False)
        outputs = torch.stack([official[int(k)](sample) for sample, k in zip(x, class_index, strict=True)])
        nn.functional.mse_loss(outputs, target).backward()
        reference.step()
        if step == 0:
            absent_before = official[2].weight.detach().clone()
    assert not torch.allclose(official[2].weight, absent_before)  # the absent head did move
    for k, layer in enumerate(official):
        torch.testing.assert_close(heads.weight[k], layer.weight, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(heads.bias[k], layer.bias, rtol=1e-5, atol=1e-6)
