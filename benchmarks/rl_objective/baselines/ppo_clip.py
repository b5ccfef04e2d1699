"""Standard PPO-clip (Schulman et al., "Proximal Policy Optimization Algorithms", 2017), its
clipped surrogate min(r A, clip(r, 1-eps, 1+eps) A) written as the drift r A - min(...), which
equals relu((r - clip(r)) A). The reference every candidate's return is normalised by."""

import jax
import jax.numpy as jnp

# EVOLVE-BLOCK-START
CLIP_EPS = 0.2


def drift(ratio: jax.Array, advantage: jax.Array, progress: jax.Array) -> jax.Array:
    clipped = jnp.clip(ratio, 1.0 - CLIP_EPS, 1.0 + CLIP_EPS)
    return jax.nn.relu((ratio - clipped) * advantage)


# EVOLVE-BLOCK-END
