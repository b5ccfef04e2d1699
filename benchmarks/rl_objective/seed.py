"""RL objective discovery: the drift of PPO's policy objective (Mirror Learning / DPO form).

The harness trains an actor-critic with PPO whose policy loss is

    loss = -mean(ratio * advantage - drift(ratio, advantage, progress))

where `ratio` is pi_new(a|s) / pi_old(a|s) for each sample of a minibatch, `advantage` its
normalised GAE advantage, and `progress` the fraction of training done (0 at the start, 1 at
the end; a scalar). `drift` returns one value per sample, the same shape as `ratio`; everything
else of PPO (rollouts, GAE, value loss, entropy bonus, Adam, minibatches) is fixed. A drift
should be non-negative and zero (with zero gradient) at ratio == 1 to keep the update a
trust-region method, but nothing enforces it: only the returns count.

`drift` is traced by JAX (jit, vmap, grad): use `jax.numpy`, no Python control flow on values.
"""

import jax
import jax.numpy as jnp

# EVOLVE-BLOCK-START
CLIP_EPS = 0.2


def drift(ratio: jax.Array, advantage: jax.Array, progress: jax.Array) -> jax.Array:
    """PPO's clipped objective written as a drift: relu((ratio - clip(ratio)) * advantage)."""
    clipped = jnp.clip(ratio, 1.0 - CLIP_EPS, 1.0 + CLIP_EPS)
    return jax.nn.relu((ratio - clipped) * advantage)


# EVOLVE-BLOCK-END
