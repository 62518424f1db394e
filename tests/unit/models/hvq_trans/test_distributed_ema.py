# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Multi-process training: EMA codebooks and router statistics are reduced per class across processes.

The official code all-reduced the EMA statistics by sample position, so each class's codebook learned
from whatever classes the other GPUs held at that position. Here two CPU processes (gloo) each train
one step on half of a batch whose halves hold different classes at every position; their codebooks
must equal those of one process that trained on the whole batch.
"""

import os
import socket
from pathlib import Path

import torch
import torch.multiprocessing as mp
from tiny_hvq import TINY_HVQ
from torch import distributed as dist

from anomalib_hvq.models.hvq_trans.torch_model import HVQTransModel

# Position i holds class 0, 1, 2, 0 on rank 0 and 1, 2, 0, 1 on rank 1.
CLASS_INDEX = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])


def _model() -> HVQTransModel:
    torch.manual_seed(0)
    # No dropout: each process would draw other masks than the single process does for the same sample.
    return HVQTransModel(num_classes=3, **{**TINY_HVQ, "dropout": 0.0}, feature_size=(4, 4)).train()


def _statistics(model: HVQTransModel) -> dict[str, torch.Tensor]:
    """Codebooks with their EMA statistics, and the router's running sums."""
    return {
        name: tensor.clone() for name, tensor in model.state_dict().items() if "quantizer" in name or "router" in name
    }


def _worker(rank: int, world_size: int, port: int, features: torch.Tensor, output: Path) -> None:
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        model = _model()
        part = slice(rank * len(features) // world_size, (rank + 1) * len(features) // world_size)
        model.training_output(None, CLASS_INDEX[part], features=features[part])
        torch.save(_statistics(model), output / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_processes_learn_the_same_codebooks_as_one_process_on_the_whole_batch(tmp_path: Path) -> None:
    torch.manual_seed(1)
    features = torch.randn(len(CLASS_INDEX), 192, 4, 4)
    single = _model()
    before = _statistics(single)
    single.training_output(None, CLASS_INDEX, features=features)
    expected = _statistics(single)

    mp.spawn(_worker, args=(2, _free_port(), features, tmp_path), nprocs=2, join=True)

    for rank in range(2):
        result = torch.load(tmp_path / f"rank{rank}.pt")
        assert result.keys() == expected.keys()
        for name, tensor in expected.items():
            torch.testing.assert_close(result[name], tensor, rtol=1e-5, atol=1e-5, msg=f"rank {rank}: {name}")
    # Every class's codebook moved: the comparison is not between untouched buffers.
    assert all(
        not torch.equal(before[name][k], expected[name][k]) for name in before if "embed" in name for k in range(3)
    )
