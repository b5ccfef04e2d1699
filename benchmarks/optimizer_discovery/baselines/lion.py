"""Lion (Chen et al., "Symbolic Discovery of Optimization Algorithms", NeurIPS 2023): the sign of
an interpolated momentum, found by program search. The paper's advice for moving from AdamW:
a learning rate 3-10x smaller and a weight decay 3-10x larger, so lr / 5 and weight decay x 5."""

import torch

# EVOLVE-BLOCK-START
BETA1, BETA2 = 0.9, 0.99
LR_SCALE, WD_SCALE = 0.2, 5.0


def init_state(param: torch.Tensor) -> dict:
    return {"m": torch.zeros_like(param)}


def update(param: torch.Tensor, grad: torch.Tensor, state: dict, step: int, hp: dict) -> torch.Tensor:
    lr = hp["lr"] * LR_SCALE
    direction = (BETA1 * state["m"] + (1 - BETA1) * grad).sign()
    state["m"].mul_(BETA2).add_(grad, alpha=1 - BETA2)
    return param * (1 - lr * hp["weight_decay"] * WD_SCALE) - lr * direction


# EVOLVE-BLOCK-END
