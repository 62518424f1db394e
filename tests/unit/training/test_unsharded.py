# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Validation statistics under DDP: every process reads the whole validation set, not its shard."""

from types import SimpleNamespace

import torch
from tiny_hvq import TINY_HVQ
from torch.utils.data import DataLoader, DistributedSampler

from anomalib_hvq import HVQTrans
from anomalib_hvq.training.unsharded import unsharded


def sharded_loader(rank: int) -> DataLoader:
    data = list(range(11))
    sampler = DistributedSampler(data, num_replicas=2, rank=rank, shuffle=False)
    return DataLoader(data, batch_size=3, sampler=sampler, collate_fn=torch.tensor)


def test_each_shard_becomes_the_whole_dataset_once_in_order() -> None:
    for rank in range(2):
        assert torch.cat(list(sharded_loader(rank))).tolist() != list(range(11))  # a shard (rank 1: 6 with a repeat)
        batches = list(unsharded(sharded_loader(rank)))
        assert torch.cat(batches).tolist() == list(range(11))
        assert [len(b) for b in batches] == [3, 3, 3, 2]  # the loader's batch size and collation


def test_a_single_process_loader_is_left_alone() -> None:
    loader = DataLoader(list(range(4)), batch_size=2)
    assert unsharded(loader) is loader


def test_calibration_under_ddp_reads_the_whole_validation_set(monkeypatch) -> None:
    model = HVQTrans(**TINY_HVQ, num_classes=2, calibrate_score=True)
    seen: list[int] = []
    monkeypatch.setattr(HVQTrans, "calibrate_score", lambda self, loader: seen.extend(torch.cat(list(loader)).tolist()))
    monkeypatch.setattr(HVQTrans, "trainer", SimpleNamespace(val_dataloaders=sharded_loader(rank=1)))
    model.on_validation_epoch_start()
    assert seen == list(range(11))
