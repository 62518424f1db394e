# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Class switch: per-class heads and class-index validation."""

import pytest
import torch

from anomalib_hvq.models.hvq_trans.class_switch import ClassSwitchedLinear, check_class_index


def test_each_sample_uses_its_class_head() -> None:
    torch.manual_seed(0)
    heads = ClassSwitchedLinear(num_classes=3, in_dim=4, out_dim=5)
    x = torch.randn(2, 6, 4)
    out = heads(x, torch.tensor([2, 0]))
    reference = [x[0] @ heads.weight[2].T + heads.bias[2], x[1] @ heads.weight[0].T + heads.bias[0]]
    torch.testing.assert_close(out, torch.stack(reference))
    swapped = heads(x.flip(0), torch.tensor([0, 2]))
    torch.testing.assert_close(swapped, out.flip(0))


def test_heads_are_initialised_like_nn_linear() -> None:
    heads = ClassSwitchedLinear(num_classes=4, in_dim=100, out_dim=50)
    bound = 1 / 10
    assert heads.weight.abs().max() <= bound and heads.bias.abs().max() <= bound
    assert not torch.equal(heads.weight[0], heads.weight[1])


def test_out_of_range_class_index_is_rejected_with_the_valid_range() -> None:
    with pytest.raises(ValueError, match=r"\[5\] is outside the 3 classes.*0\.\.2"):
        check_class_index(torch.tensor([0, 5]), num_classes=3, batch_size=2)
    with pytest.raises(ValueError, match="shape"):
        check_class_index(torch.tensor([0, 1, 2]), num_classes=3, batch_size=2)


def test_head_gradients_are_the_per_class_sums_and_repeatable() -> None:
    # Sizes large enough for the CPU kernels to split the work over threads: the backward of an
    # index (the obvious way to pick heads) accumulated in a thread-dependent order there.
    torch.manual_seed(0)
    heads = ClassSwitchedLinear(num_classes=4, in_dim=256, out_dim=272)
    x, class_index, upstream = torch.randn(16, 196, 256), torch.arange(16) % 4, torch.randn(16, 196, 272)
    gradients = []
    for _ in range(5):
        heads.zero_grad()
        heads(x, class_index).backward(upstream)
        gradients.append(heads.weight.grad.clone())
    assert all(torch.equal(gradients[0], other) for other in gradients[1:])
    for head in range(4):
        mine = class_index == head
        expected = torch.einsum("blo,bli->oi", upstream[mine].double(), x[mine].double()).float()
        torch.testing.assert_close(gradients[0][head], expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(heads.bias.grad[1], upstream[class_index == 1].sum(dim=(0, 1)), rtol=1e-4, atol=1e-4)
