# Copyright (C) 2026 anomalib-hvq contributors
# SPDX-License-Identifier: Apache-2.0

"""Layer-wise query decoder: own queries per layer, no query self-attention, no residual carry-over."""

import torch

from anomalib_hvq.models.components.transformer import TransformerDecoderLayer
from anomalib_hvq.models.uniad.neighbor_mask import neighbor_mask
from anomalib_hvq.models.uniad.query_decoder import LayerWiseQueryDecoder

DIM, GRID = 8, (5, 5)


def _decoder(num_layers: int = 2) -> LayerWiseQueryDecoder:
    torch.manual_seed(0)
    return LayerWiseQueryDecoder(GRID[0] * GRID[1], DIM, num_heads=2, hidden_dim=16, num_layers=num_layers, dropout=0)


def test_one_layer_decodes_its_queries_against_the_encoder_output() -> None:
    decoder = _decoder(num_layers=1).eval()
    encoded, pos = torch.randn(2, 25, DIM), torch.randn(25, DIM)
    queries = decoder.queries[0].weight.expand(2, -1, -1)
    expected = decoder.norm(decoder.layers[0](queries, encoded, pos, first_memory=encoded))
    torch.testing.assert_close(decoder(encoded, pos), expected)


def test_queries_do_not_attend_to_each_other() -> None:
    decoder = _decoder(num_layers=1).eval()
    encoded, pos = torch.randn(1, 25, DIM), torch.randn(25, DIM)
    base = decoder(encoded, pos)
    with torch.no_grad():
        decoder.queries[0].weight[3] += 10.0
    moved = decoder(encoded, pos)
    # Only the changed query's own output moves (a DETR decoder's self-attention would spread it).
    unchanged = torch.ones(25, dtype=torch.bool)
    unchanged[3] = False
    torch.testing.assert_close(moved[0, unchanged], base[0, unchanged])
    assert not torch.allclose(moved[0, 3], base[0, 3])


def test_previous_output_enters_only_through_masked_attention() -> None:
    decoder = _decoder(num_layers=2).eval()
    mask = neighbor_mask(GRID, (3, 3))
    encoded, pos = torch.randn(1, 25, DIM), torch.randn(25, DIM)
    base = decoder(encoded, pos, mask)

    def perturb_token_12(module, inputs, output):
        output = output.clone()
        output[:, 12] += 10.0
        return output

    handle = decoder.layers[0].register_forward_hook(perturb_token_12)
    moved = decoder(encoded, pos, mask)
    handle.remove()
    # Layer 2 restarts from its own queries: token 12 of layer 1 is in its own (masked) window only.
    torch.testing.assert_close(moved[0, 12], base[0, 12])
    assert not torch.allclose(moved[0, 0], base[0, 0])  # outside the window it is attended to


def test_every_query_table_is_trained() -> None:
    decoder = _decoder(num_layers=3).train()
    decoder(torch.randn(2, 25, DIM), torch.randn(25, DIM)).sum().backward()
    assert all(q.weight.grad is not None and q.weight.grad.abs().sum() > 0 for q in decoder.queries)


def test_decoder_layer_default_is_still_self_attention() -> None:
    torch.manual_seed(0)
    layer = TransformerDecoderLayer(DIM, 2, 16, dropout=0.0).eval()
    state, memory, pos = torch.randn(1, 25, DIM), torch.randn(1, 25, DIM), torch.randn(25, DIM)
    torch.testing.assert_close(layer(state, memory, pos), layer(state, memory, pos, first_memory=state))
    assert not torch.allclose(layer(state, memory, pos), layer(state, memory, pos, first_memory=memory))
