# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Dead-code revival across processes: every process re-seeds a dead code with the same token of its class."""

import os
import socket
from pathlib import Path

import torch
import torch.multiprocessing as mp
from torch import distributed as dist

from anomalib_hvq.models.hvq_trans.ema_codebook import EMAVectorQuantizer

FAR = 500.0


def _quantizer() -> EMAVectorQuantizer:
    torch.manual_seed(0)
    quantizer = EMAVectorQuantizer(num_classes=2, dim=3, num_codes=3, decay=0.9, revive_after=1)
    quantizer.embed[:, :2] = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]])
    quantizer.embed_avg[:, :2] = quantizer.embed[:, :2]
    quantizer.cluster_size.fill_(1.0)
    quantizer.embed[:, 2] = FAR  # code 2 of both classes is never chosen
    quantizer.embed_avg[:, 2] = FAR
    return quantizer.train()


def _worker(rank: int, port: int, output: Path) -> None:
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        torch.manual_seed(rank)  # the processes draw different random tokens
        quantizer = _quantizer()
        # Rank 0 holds only class 0 (tokens around 1), rank 1 only class 1 (tokens around 10 + rank).
        tokens = torch.rand(2, 5, 3) + (1.0 if rank == 0 else 10.0)
        quantizer(tokens, torch.full((2,), rank))
        torch.save({"tokens": tokens, **quantizer.state_dict(), "revived": quantizer.revived}, output / f"{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_revived_codes_agree_across_processes_and_come_from_their_class(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mp.spawn(_worker, args=(port, tmp_path), nprocs=2, join=True)
    results = [torch.load(tmp_path / f"{rank}.pt") for rank in range(2)]
    for name in ("embed", "embed_avg", "cluster_size"):
        torch.testing.assert_close(results[0][name], results[1][name], rtol=0, atol=0)
    embed = results[0]["embed"]
    for cls in range(2):
        # Class c's dead code is now a token of class c, which only rank c held.
        owner_tokens = results[cls]["tokens"].reshape(-1, 3)
        assert (owner_tokens - embed[cls, 2]).abs().sum(-1).min() == 0
    assert int(results[0]["revived"]) >= 2
