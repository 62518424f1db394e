# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Optimal-transport (OT) prototype score at the lowest quantization level.

Each token is softly assigned to the prototypes of its class (softmax of dot products divided by a
temperature, the codebook size in the paper's code) and pays the cosine distance to each prototype:
``OT(p) = sum_j softmax_j(z_p . e_j / T) * (1 - cos(z_p, e_j))``. Normal tokens sit close to their
prototypes; anomalous ones are far from all of them.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def ot_score(tokens: torch.Tensor, prototypes: torch.Tensor, temperature: float) -> torch.Tensor:
    """Soft-assignment transport cost of each token to its prototypes.

    Args:
        tokens: Tokens ``z``, ``(B, L, D)``.
        prototypes: Codebook of each sample's class, ``(B, N, D)``.
        temperature: Softmax temperature T.

    Returns:
        OT score per token, ``(B, L)``, in ``[0, 2]``.

    """
    tokens, prototypes = tokens.float(), prototypes.float()
    # softmax subtracts the row maximum, so large logits cannot overflow (the reference used raw exp).
    assignment = torch.softmax(tokens @ prototypes.transpose(1, 2) / temperature, dim=-1)
    cosine = F.normalize(tokens, dim=-1) @ F.normalize(prototypes, dim=-1).transpose(1, 2)
    return (assignment * (1 - cosine)).sum(-1)
