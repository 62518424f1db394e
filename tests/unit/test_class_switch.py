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
