"""Trunks: calling a trunk on a sequence in two pieces (carrying its memory) equals one call on the whole."""

from __future__ import annotations

import pytest
import torch

from wam_isaac.models.config import TrunkCfg
from wam_isaac.models.trunks import make_trunk

TOKEN_DIM, STEPS = 6, 9


@pytest.mark.parametrize("kind", ["mlp", "gru", "transformer"])
@pytest.mark.parametrize("split", [1, 4, 8])
def test_two_pieces_equal_one_call(kind, split):
    torch.manual_seed(0)
    trunk = make_trunk(TOKEN_DIM, TrunkCfg(kind=kind, hidden=16, layers=2, heads=2, context=STEPS)).eval()
    tokens = torch.randn(3, STEPS, TOKEN_DIM)
    with torch.no_grad():
        whole, _ = trunk(tokens)
        first, memory = trunk(tokens[:, :split])
        second, _ = trunk(tokens[:, split:], memory)
    assert whole.shape == (3, STEPS, 16)
    torch.testing.assert_close(torch.cat((first, second), 1), whole, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["gru", "transformer"])
def test_history_trunks_depend_on_earlier_tokens_only(kind):
    """Causality: changing token 5 changes the features of steps >= 5 and leaves the earlier ones unchanged."""
    torch.manual_seed(0)
    trunk = make_trunk(TOKEN_DIM, TrunkCfg(kind=kind, hidden=16, layers=2, heads=2, context=STEPS)).eval()
    tokens = torch.randn(2, STEPS, TOKEN_DIM)
    changed = tokens.clone()
    changed[:, 5] += 1.0
    with torch.no_grad():
        before, after = trunk(tokens)[0], trunk(changed)[0]
    torch.testing.assert_close(after[:, :5], before[:, :5], rtol=1e-5, atol=1e-6)
    assert (after[:, 5:] - before[:, 5:]).abs().amax(dim=(0, 2)).min() > 1e-4


def test_transformer_refuses_more_new_tokens_than_its_context():
    trunk = make_trunk(TOKEN_DIM, TrunkCfg(kind="transformer", hidden=8, layers=1, heads=2, context=4))
    with pytest.raises(ValueError, match="5 new tokens exceed the transformer's context of 4"):
        trunk(torch.randn(1, 5, TOKEN_DIM))
