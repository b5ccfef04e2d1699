"""Discovered Policy Optimisation (Lu et al., "Discovered Policy Optimisation", NeurIPS 2022):
the closed-form drift distilled from the learned LPO objective, with the paper's alpha = 2 and
beta = 0.6. Positive advantages are bounded through ratio - 1, negative ones through log ratio."""

import jax
import jax.numpy as jnp

# EVOLVE-BLOCK-START
ALPHA, BETA = 2.0, 0.6


def drift(ratio: jax.Array, advantage: jax.Array, progress: jax.Array) -> jax.Array:
    positive = jax.nn.relu((ratio - 1.0) * advantage - ALPHA * jnp.tanh((ratio - 1.0) * advantage / ALPHA))
    log_ratio = jnp.log(ratio)
    negative = jax.nn.relu(log_ratio * advantage - BETA * jnp.tanh(log_ratio * advantage / BETA))
    return jnp.where(advantage >= 0.0, positive, negative)


# EVOLVE-BLOCK-END
