"""The candidate's side of rl_objective (shipped beside the program as `clade_drift.py`).

The judge sends, per PPO minibatch step, the probability ratios and normalised advantages of
every seed (arrays of shape (seeds, minibatch)) and the training progress; this answers the
gradient of the summed drift with respect to the ratios, per seed, computed with JAX from the
program's `drift` (traced once, as it was inside the training step). It runs with the
candidate's privilege and holds no authority: the judge keeps the policy, the environments and
the returns, and refuses a reply of the wrong shape or with a non-finite value."""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")  # one core, as the judge

import contextlib
import sys

import jax
import jax.numpy as jnp
import numpy as np


class DriftGradient:
    def __init__(self):
        # A minibatch of ratios is tiny: the CPU answers faster than a round trip to a GPU, and the
        # judge keeps the GPU's memory. A program that started a backend at import keeps it.
        with contextlib.suppress(RuntimeError):
            jax.config.update("jax_platforms", "cpu")
        drift = sys.modules["program"].drift

        def total(ratio, advantage, progress):
            d = drift(ratio, advantage, progress)
            if jnp.shape(d) != ratio.shape:
                raise ValueError(f"drift() must return one value per sample, shape {ratio.shape}, got {jnp.shape(d)}")
            return jnp.sum(d)

        self.function = jax.jit(jax.vmap(jax.grad(total), in_axes=(0, 0, None)))

    def gradient(self, ratio, advantage, progress):
        g = self.function(jnp.asarray(ratio, jnp.float32), jnp.asarray(advantage, jnp.float32), jnp.float32(progress))
        return np.asarray(g)
