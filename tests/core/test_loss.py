"""The Switch aux loss at its two ends, and the z-loss."""

import pytest
import torch

from minimoe.loss import aux_load_balancing_loss, router_z_loss


@pytest.mark.parametrize("E", [2, 4, 16])
def test_aux_is_one_for_perfectly_uniform_top1_routing(E):
    T = 8 * E
    probs = torch.full((T, E), 1.0 / E)
    ids = torch.arange(T).remainder(E).unsqueeze(-1)  # every expert gets T/E tokens
    assert aux_load_balancing_loss(probs, ids).item() == pytest.approx(1.0)


@pytest.mark.parametrize("E", [2, 4, 16])
def test_aux_is_E_when_all_tokens_and_probability_sit_on_one_expert(E):
    T = 32
    probs = torch.zeros(T, E)
    probs[:, 0] = 1
    ids = torch.zeros(T, 1, dtype=torch.long)
    assert aux_load_balancing_loss(probs, ids).item() == pytest.approx(E)


def test_aux_is_one_at_balance_for_top2_too():
    E, T = 4, 16
    probs = torch.full((T, E), 1.0 / E)
    ids = torch.stack([torch.arange(T) % E, (torch.arange(T) + 1) % E], -1)
    assert aux_load_balancing_loss(probs, ids).item() == pytest.approx(1.0)


def test_aux_gradient_lowers_probability_of_the_busiest_expert():
    logits = torch.zeros(10, 3, requires_grad=True)
    ids = torch.zeros(10, 1, dtype=torch.long)  # all tokens went to expert 0
    aux_load_balancing_loss(logits.softmax(-1), ids).backward()
    assert (logits.grad[:, 0] > 0).all()  # gradient descent lowers expert 0's score


def test_z_loss_grows_with_logit_scale():
    x = torch.randn(20, 4)
    assert router_z_loss(10 * x) > router_z_loss(x)
