"""The judge (trusted, its own process and uid): trains PPO on each gymnax environment of the
stage, all seeds at once (vmap), and writes, per seed and per PPO update, the sum of the returns
of the episodes that ended during that update's rollout and their count. The host checks those
numbers and computes every metric.

It owns everything but the drift: the environments and their seeds (drawn from the stage's
secret), the actor and critic, Adam, the rollouts, GAE, the minibatches and the bookkeeping of
returns. The candidate's side (clade_drift.py) hears, per minibatch step, only the probability
ratios, the normalised advantages and the training progress, and answers the gradient of the
summed drift with respect to the ratios, `g = d sum(drift(ratio, adv, progress)) / d ratio`.
The judge's policy loss is `-mean(ratio * adv) + mean(stop_gradient(g) * ratio)`, whose gradient
with respect to the parameters is exactly that of `-mean(ratio * adv - drift)`: the drift only
enters PPO through the ratios, so this is the same update, while the parameters, the
observations and the environments never leave this process. A reply of the wrong shape or with
a non-finite value is a fault; so is a drift that drives the policy's parameters non-finite.

PPO as in PureJaxRL (Lu et al. 2022): separate actor and critic MLPs (two tanh layers,
orthogonal initialisation), `num_envs` parallel environments, rollouts of `num_steps`, GAE,
`epochs` passes of `minibatches` minibatches with advantages normalised per minibatch, clipped
value loss, entropy bonus, Adam with a global-norm gradient clip and a linearly annealed
learning rate. A truncated episode (time limit) bootstraps from the value of its last
observation; a terminated one does not (gymnax 1.0's step returns both flags).
"""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")  # one core per evaluation

import itertools
import json
import math
import sys
import time

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
from clade_channel import CandidateFault, run_judge

VALUE_CLIP = 0.2
WAITED = [0.0]
"""Seconds spent in calls to the candidate (round trips included), for the log."""


# ---- networks and Adam -----------------------------------------------------------------------


def init_mlp(key, sizes, last_scale):
    layers = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        key, sub = jax.random.split(key)
        scale = last_scale if i == len(sizes) - 2 else math.sqrt(2.0)
        layers.append((jax.nn.initializers.orthogonal(scale)(sub, (n_in, n_out)), jnp.zeros(n_out)))
    return layers


def mlp(layers, x):
    for w, b in layers[:-1]:
        x = jnp.tanh(x @ w + b)
    w, b = layers[-1]
    return x @ w + b


def adam_step(params, grads, opt, lr, max_norm, b1=0.9, b2=0.999, eps=1e-5):
    norm = jnp.sqrt(sum(jnp.sum(g**2) for g in jax.tree.leaves(grads)))
    grads = jax.tree.map(lambda g: g * jnp.minimum(1.0, max_norm / (norm + 1e-12)), grads)
    t = opt["t"] + 1
    m = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, opt["m"], grads)
    v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g**2, opt["v"], grads)
    params = jax.tree.map(lambda p, m, v: p - lr * (m / (1 - b1**t)) / (jnp.sqrt(v / (1 - b2**t)) + eps), params, m, v)
    return params, {"m": m, "v": v, "t": t}


# ---- PPO, with the drift's gradient from the candidate ---------------------------------------


def make_ppo(cfg):
    """Per-seed pieces of PPO, each jitted over all seeds: `init`, `collect` (a rollout, GAE and
    the minibatch order of every epoch), `first` (the ratios of a minibatch) and `advance` (one
    Adam step with the candidate's drift gradient, then the next minibatch's ratios)."""
    env, env_params = gymnax.make(cfg["env"])
    obs_size = int(np.prod(env.observation_space(env_params).shape))
    n_envs, n_steps = cfg["num_envs"], cfg["num_steps"]
    batch = n_envs * n_steps
    n_updates = cfg["total_steps"] // batch
    n_mb = cfg["minibatches"]
    minibatch = batch // n_mb
    gamma, lam = cfg["gamma"], cfg["gae_lambda"]
    env_reset = jax.vmap(env.reset, in_axes=(0, None))
    env_step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def policy(params, obs):
        obs = obs.reshape(obs.shape[0], -1).astype(jnp.float32)
        return mlp(params["actor"], obs), mlp(params["critic"], obs)[:, 0]

    def take(data, order, k):
        rows = jax.lax.dynamic_slice_in_dim(order.reshape(-1), k * minibatch, minibatch)
        return jax.tree.map(lambda x: x[rows], data)

    def ratios(params, mb):
        logits, value = policy(params, mb["obs"])
        logp_all = jax.nn.log_softmax(logits)
        logp = jnp.take_along_axis(logp_all, mb["action"][:, None], axis=1)[:, 0]
        adv = (mb["advantage"] - mb["advantage"].mean()) / (mb["advantage"].std() + 1e-8)
        return jnp.exp(logp - mb["logp"]), adv, logp_all, value

    def loss_fn(params, mb, g):
        ratio, adv, logp_all, value = ratios(params, mb)
        policy_loss = -jnp.mean(ratio * adv) + jnp.mean(jax.lax.stop_gradient(g) * ratio)
        clipped = mb["value"] + jnp.clip(value - mb["value"], -VALUE_CLIP, VALUE_CLIP)
        value_loss = 0.5 * jnp.mean(jnp.maximum((value - mb["target"]) ** 2, (clipped - mb["target"]) ** 2))
        entropy = -jnp.mean(jnp.sum(jnp.exp(logp_all) * logp_all, axis=1))
        return policy_loss + cfg["vf_coef"] * value_loss - cfg["ent_coef"] * entropy

    def rollout_step(carry, _):
        params, env_state, obs, episode_return, key = carry
        key, k_action, k_step = jax.random.split(key, 3)
        logits, value = policy(params, obs)
        action = jax.random.categorical(k_action, logits)
        logp = jnp.take_along_axis(jax.nn.log_softmax(logits), action[:, None], axis=1)[:, 0]
        next_obs, env_state, reward, terminated, truncated, info = env_step(
            jax.random.split(k_step, n_envs), env_state, action, env_params
        )
        reward = reward.astype(jnp.float32)
        done = jnp.logical_or(terminated, truncated)
        episode_return = episode_return + reward
        finished = (jnp.sum(jnp.where(done, episode_return, 0.0)), jnp.sum(done))
        # A time limit is not a terminal state: bootstrap from the value of the last observation.
        _, final_value = policy(params, info["final_observation"])
        bootstrap = jnp.where(jnp.logical_and(truncated, jnp.logical_not(terminated)), gamma * final_value, 0.0)
        step = {"obs": obs, "action": action, "logp": logp, "value": value, "reward": reward + bootstrap, "done": done}
        return (params, env_state, next_obs, jnp.where(done, 0.0, episode_return), key), (step, finished)

    def gae(steps, last_value):
        def back(carry, step):
            advantage, next_value = carry
            not_done = 1.0 - step["done"].astype(jnp.float32)
            delta = step["reward"] + gamma * next_value * not_done - step["value"]
            advantage = delta + gamma * lam * not_done * advantage
            return (advantage, step["value"]), advantage

        _, advantages = jax.lax.scan(back, (jnp.zeros_like(last_value), last_value), steps, reverse=True)
        return advantages

    def init(key):
        key, k_actor, k_critic, k_env = jax.random.split(key, 4)
        hidden = cfg["hidden"]
        params = {
            "actor": init_mlp(k_actor, [obs_size, hidden, hidden, env.num_actions], 0.01),
            "critic": init_mlp(k_critic, [obs_size, hidden, hidden, 1], 1.0),
        }
        zeros = jax.tree.map(jnp.zeros_like, params)
        opt = {"m": zeros, "v": zeros, "t": jnp.zeros((), jnp.int32)}
        obs, env_state = env_reset(jax.random.split(k_env, n_envs), env_params)
        return params, opt, env_state, obs, jnp.zeros(n_envs), key

    def collect(params, env_state, obs, episode_return, key):
        (params, env_state, obs, episode_return, key), (steps, finished) = jax.lax.scan(
            rollout_step, (params, env_state, obs, episode_return, key), None, n_steps
        )
        _, last_value = policy(params, obs)
        advantages = gae(steps, last_value)
        data = {k: steps[k].reshape((batch, *steps[k].shape[2:])) for k in ("obs", "action", "logp", "value")}
        data["advantage"] = advantages.reshape(batch)
        data["target"] = data["advantage"] + data["value"]

        def epoch(key, _):
            key, k_perm = jax.random.split(key)
            return key, jax.random.permutation(k_perm, batch)

        key, order = jax.lax.scan(epoch, key, None, cfg["epochs"])
        ratio, adv, _, _ = ratios(params, take(data, order, 0))
        runner = (env_state, obs, episode_return, key)
        return runner, data, order, (finished[0].sum(), finished[1].sum()), ratio, adv

    def advance(params, opt, data, order, k, g, lr):
        grads = jax.grad(loss_fn)(params, take(data, order, k), g)
        params, opt = adam_step(params, grads, opt, lr, cfg["max_grad_norm"])
        ratio, adv, _, _ = ratios(params, take(data, order, (k + 1) % (cfg["epochs"] * n_mb)))
        return params, opt, ratio, adv

    def schedule(index):
        progress = index / n_updates
        return progress, cfg["lr"] * (1.0 - progress) if cfg["anneal_lr"] else jnp.float32(cfg["lr"])

    seeds = (0, 0, 0, 0, None, 0, None)  # one of each per seed, but the step index and the rate
    return {
        "init": jax.jit(jax.vmap(init)),
        "collect": jax.jit(jax.vmap(collect)),
        "advance": jax.jit(jax.vmap(advance, in_axes=seeds)),
        "schedule": jax.jit(schedule),
        "updates": n_updates,
        "steps": cfg["epochs"] * n_mb,
    }


# ---- the protocol ----------------------------------------------------------------------------


def drift_gradient(channel, ratio, adv, progress, timeout_s, where):
    """The candidate's `d sum(drift) / d ratio` at these ratios, checked: one finite value per sample."""
    ratio, adv = np.asarray(ratio), np.asarray(adv)
    if not (np.isfinite(ratio).all() and np.isfinite(adv).all()):
        raise CandidateFault(f"{where}: the policy's parameters became non-finite (the drift's gradient diverged)")
    started = time.perf_counter()
    g = channel.call("drift.gradient", ratio, adv, progress, timeout_s=timeout_s)
    WAITED[0] += time.perf_counter() - started
    if not isinstance(g, np.ndarray) or g.dtype.kind not in "fi":
        raise CandidateFault(f"{where}: the drift's gradient must be an array of numbers, got {type(g).__name__}")
    if g.shape != ratio.shape:
        raise CandidateFault(f"{where}: the drift's gradient has shape {g.shape}, expected {ratio.shape}")
    g = g.astype(np.float32)
    if not np.isfinite(g).all():
        raise CandidateFault(f"{where}: the drift's gradient is not finite (NaN, an infinity, or beyond float32)")
    return jnp.asarray(g)


def train(channel, cfg, timeouts):
    """PPO on one environment for every seed; the returns of the episodes that ended, per update."""
    ppo = make_ppo(cfg)
    params, opt, *runner = ppo["init"](jnp.stack([jax.random.PRNGKey(s) for s in cfg["seeds"]]))
    sums, counts = [], []
    timeout_s = timeouts["compile_s"]  # the first call traces and compiles the drift
    for index in range(ppo["updates"]):
        progress, lr = ppo["schedule"](jnp.int32(index))
        runner, data, order, (total, count), ratio, adv = ppo["collect"](params, *runner)
        for k in range(ppo["steps"]):
            where = f"{cfg['env']} update {index} minibatch step {k}"
            g = drift_gradient(channel, ratio, adv, float(progress), timeout_s, where)
            timeout_s = timeouts["call_s"]
            params, opt, ratio, adv = ppo["advance"](params, opt, data, order, jnp.int32(k), g, lr)
        sums.append(total)
        counts.append(count)
    return {
        "env": cfg["env"],
        "seeds": cfg["seeds"],
        "return_sum": [[encode(x) for x in row] for row in np.asarray(jnp.stack(sums, axis=1))],
        "episodes": np.asarray(jnp.stack(counts, axis=1)).astype(int).tolist(),
    }


def encode(x):
    x = float(x)
    return x if math.isfinite(x) else repr(x)


def main():
    stage = sys.argv[1]
    with open("spec.json") as handle:
        spec = json.load(handle)
    if spec["device"] == "gpu" and jax.default_backend() != "gpu":
        sys.exit(f"this setting needs a GPU, and JAX's backend in the sandbox is {jax.default_backend()!r}")

    def body(channel):
        channel.construct("drift", "clade_drift:DriftGradient", timeout_s=spec["timeouts"]["compile_s"])
        runs = []
        for cfg in spec["runs"]:
            calls, waited, started = channel.calls, WAITED[0], time.perf_counter()
            runs.append(train(channel, cfg, spec["timeouts"]))
            calls, waited = channel.calls - calls, WAITED[0] - waited
            print(
                f"{cfg['env']} done in {time.perf_counter() - started:.1f}s: {calls} drift calls, "
                f"{waited:.2f}s in them ({1e3 * waited / max(calls, 1):.2f} ms each)",
                flush=True,
            )
        return {"device": spec["device"], "runs": runs}

    run_judge(stage, body, timeout_s=spec["timeouts"]["call_s"])


if __name__ == "__main__":
    main()
