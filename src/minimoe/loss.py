"""The training loss: next-token cross-entropy plus the router's auxiliary losses.

    total = main + aux_alpha * aux + z_alpha * z

main_loss  cross-entropy of the next character: what the model is for.
aux        the Switch Transformer load-balancing loss (Fedus et al., 2021, eqs. 4-6), averaged
           over MoE layers. It is the only term that *pushes the router to spread tokens*; the
           main loss is happy to send everything to one expert if that expert keeps improving.
z          the router z-loss (Zoph et al., 2022, ST-MoE, eq. 5): keeps router logits small so the
           fp32 softmax stays well conditioned. Off by default.

What aux_alpha does: it sets how hard balance is bought against the main loss. 0.01 is the
Switch paper's value: small enough that the main loss dominates, large enough that the router
cannot collapse for free. Zero it and the model is no longer an MoE in any meaningful sense; make it
huge and the router balances perfectly and learns nothing about tokens.

All functions are pure: tensors in, tensors out.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .router import Routing


def aux_load_balancing_loss(probs_TE: torch.Tensor, ids_TK: torch.Tensor) -> torch.Tensor:
    """Switch load-balancing loss: aux = E * sum_e f_e * P_e.

    f_e  fraction of the T*K (token, expert) assignments that went to expert e (no gradient: counts)
    P_e  mean router probability of expert e over the T tokens (carries the gradient)

    aux = 1 when routing is perfectly uniform (f_e = P_e = 1/E), and aux = E when every token and
    all probability sit on one expert. Its gradient lowers P_e most where f_e is largest, i.e. it
    makes the router less eager to pick the experts that are already busiest.

    (f is normalised by T*K, so aux = 1 at balance for every K. Hugging Face's
    load_balancing_loss_func normalises by T and reads K at balance.)
    """
    E = probs_TE.shape[-1]
    f_E = torch.bincount(ids_TK.reshape(-1), minlength=E).to(probs_TE.dtype) / ids_TK.numel()
    P_E = probs_TE.mean(dim=0)
    return E * (f_E * P_E).sum()


def router_z_loss(logits_TE: torch.Tensor) -> torch.Tensor:
    """ST-MoE z-loss: mean over tokens of logsumexp(logits)^2; penalises large router logits."""
    return torch.logsumexp(logits_TE.float(), dim=-1).pow(2).mean()


def main_loss_fn(logits_BSV: torch.Tensor, targets_BS: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy, mean over all positions (nats per character)."""
    return F.cross_entropy(logits_BSV.reshape(-1, logits_BSV.shape[-1]).float(), targets_BS.reshape(-1))


@dataclass
class LossParts:
    total: torch.Tensor  # what the optimiser minimises
    main: torch.Tensor
    aux: torch.Tensor  # mean over MoE layers (reported even when aux_alpha = 0)
    z: torch.Tensor


def _mean_over_layers(values: list[torch.Tensor], like: torch.Tensor) -> torch.Tensor:
    return torch.stack(values).mean() if values else like.new_zeros(())


def combine_losses(main_loss: torch.Tensor, routings: list[Routing], aux_alpha: float,
                   z_alpha: float = 0.0) -> LossParts:
    """The total loss from the main loss and every MoE layer's routing."""
    aux = _mean_over_layers([aux_load_balancing_loss(r.probs_TE, r.ids_TK) for r in routings], main_loss)
    z = _mean_over_layers([router_z_loss(r.logits_TE) for r in routings] if z_alpha else [], main_loss)
    total_loss = main_loss + aux_alpha * aux + z_alpha * z
    return LossParts(total_loss, main_loss, aux, z)
