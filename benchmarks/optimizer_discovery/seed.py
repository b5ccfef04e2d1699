"""Optimizer discovery: an update rule for training neural networks.

The harness trains small networks with this rule, one parameter tensor at a time:

    state = init_state(param)                      # once per tensor, before training
    param = update(param, grad, state, step, hp)   # every step; step counts from 1

`update` returns the new value of `param` (same shape) and may change `state` in place.
`hp` holds the setting's scale hints: `lr` and `weight_decay` (tuned for AdamW on this
setting) and `total_steps` (the training length, for schedules). Everything is a torch tensor
on the training device; no gradients are tracked inside `update`.
"""

import torch

# EVOLVE-BLOCK-START
MOMENTUM = 0.9


def init_state(param: torch.Tensor) -> dict:
    """Per-tensor optimizer state: a velocity."""
    return {"velocity": torch.zeros_like(param)}


def update(param: torch.Tensor, grad: torch.Tensor, state: dict, step: int, hp: dict) -> torch.Tensor:
    """SGD with heavy-ball momentum: a plain starting point."""
    state["velocity"].mul_(MOMENTUM).add_(grad)
    return param - hp["lr"] * state["velocity"]


# EVOLVE-BLOCK-END
