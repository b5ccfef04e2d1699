"""AdamW (Loshchilov and Hutter, "Decoupled Weight Decay Regularization", ICLR 2019): the
reference every candidate is measured against, with the setting's tuned `lr` and `weight_decay`."""

import torch

# EVOLVE-BLOCK-START
BETA1, BETA2, EPS = 0.9, 0.98, 1e-8


def init_state(param: torch.Tensor) -> dict:
    return {"m": torch.zeros_like(param), "v": torch.zeros_like(param)}


def update(param: torch.Tensor, grad: torch.Tensor, state: dict, step: int, hp: dict) -> torch.Tensor:
    state["m"].mul_(BETA1).add_(grad, alpha=1 - BETA1)
    state["v"].mul_(BETA2).addcmul_(grad, grad, value=1 - BETA2)
    m_hat = state["m"] / (1 - BETA1**step)
    v_hat = state["v"] / (1 - BETA2**step)
    decayed = param * (1 - hp["lr"] * hp["weight_decay"])
    return decayed - hp["lr"] * m_hat / (v_hat.sqrt() + EPS)


# EVOLVE-BLOCK-END
