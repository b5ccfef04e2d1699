"""Runs inside the sandbox (untrusted): trains PPO with the candidate's drift on each gymnax
environment of the stage, all seeds at once (vmap), and writes, per seed and per PPO update,
the sum of the returns of the episodes that ended during that update's rollout and their count.
The host checks those numbers and computes every metric.

PPO as in PureJaxRL (Lu et al. 2022): separate actor and critic MLPs (two tanh layers,
orthogonal initialisation), `num_envs` parallel environments, rollouts of `num_steps`, GAE,
`epochs` passes of `minibatches` minibatches with advantages normalised per minibatch, clipped
value loss, entropy bonus, Adam with a global-norm gradient clip and a linearly annealed
learning rate. A truncated episode (time limit) bootstraps from the value of its last
observation; a terminated one does not (gymnax 1.0's step returns both flags).
"""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")  # one core per evaluation

import importlib.util
import json
import math
import sys

import gymnax
import jax
import jax.numpy as jnp
import numpy as np

VALUE_CLIP = 0.2


def load_drift():
    spec = importlib.util.spec_from_file_location("program", "program.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.drift


# ---- networks and Adam -----------------------------------------------------------------------

def init_mlp(key, sizes, last_scale):
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
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
    params = jax.tree.map(
        lambda p, m, v: p - lr * (m / (1 - b1**t)) / (jnp.sqrt(v / (1 - b2**t)) + eps), params, m, v
    )
    return params, {"m": m, "v": v, "t": t}


# ---- PPO -------------------------------------------------------------------------------------

def make_train(cfg, drift):
    env, env_params = gymnax.make(cfg["env"])
    obs_size = int(np.prod(env.observation_space(env_params).shape))
    actions = env.num_actions
    n_envs, n_steps = cfg["num_envs"], cfg["num_steps"]
    batch = n_envs * n_steps
    n_updates = cfg["total_steps"] // batch
    minibatch = batch // cfg["minibatches"]
    gamma, lam = cfg["gamma"], cfg["gae_lambda"]
    env_reset = jax.vmap(env.reset, in_axes=(0, None))
    env_step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def policy(params, obs):
        obs = obs.reshape(obs.shape[0], -1).astype(jnp.float32)
        return mlp(params["actor"], obs), mlp(params["critic"], obs)[:, 0]

    def loss_fn(params, mb, progress):
        logits, value = policy(params, mb["obs"])
        logp_all = jax.nn.log_softmax(logits)
        logp = jnp.take_along_axis(logp_all, mb["action"][:, None], axis=1)[:, 0]
        ratio = jnp.exp(logp - mb["logp"])
        adv = (mb["advantage"] - mb["advantage"].mean()) / (mb["advantage"].std() + 1e-8)
        d = drift(ratio, adv, progress)
        if jnp.shape(d) != ratio.shape:
            raise ValueError(f"drift() must return one value per sample, shape {ratio.shape}, got {jnp.shape(d)}")
        policy_loss = -jnp.mean(ratio * adv - d)
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

    def update(runner, index):
        params, opt, env_state, obs, episode_return, key = runner
        (params, env_state, obs, episode_return, key), (steps, finished) = jax.lax.scan(
            rollout_step, (params, env_state, obs, episode_return, key), None, n_steps
        )
        _, last_value = policy(params, obs)
        advantages = gae(steps, last_value)
        data = {k: steps[k].reshape((batch, *steps[k].shape[2:])) for k in ("obs", "action", "logp", "value")}
        data["advantage"] = advantages.reshape(batch)
        data["target"] = data["advantage"] + data["value"]
        progress = index / n_updates
        lr = cfg["lr"] * (1.0 - progress) if cfg["anneal_lr"] else cfg["lr"]

        def epoch(carry, _):
            params, opt, key = carry
            key, k_perm = jax.random.split(key)
            order = jax.random.permutation(k_perm, batch)
            shuffled = jax.tree.map(lambda x: x[order].reshape((cfg["minibatches"], minibatch, *x.shape[1:])), data)

            def step(carry, mb):
                params, opt = carry
                grads = jax.grad(loss_fn)(params, mb, progress)
                return adam_step(params, grads, opt, lr, cfg["max_grad_norm"]), None

            (params, opt), _ = jax.lax.scan(step, (params, opt), shuffled)
            return (params, opt, key), None

        (params, opt, key), _ = jax.lax.scan(epoch, (params, opt, key), None, cfg["epochs"])
        return (params, opt, env_state, obs, episode_return, key), (finished[0].sum(), finished[1].sum())

    def train(key):
        key, k_actor, k_critic, k_env = jax.random.split(key, 4)
        hidden = cfg["hidden"]
        params = {
            "actor": init_mlp(k_actor, [obs_size, hidden, hidden, actions], 0.01),
            "critic": init_mlp(k_critic, [obs_size, hidden, hidden, 1], 1.0),
        }
        zeros = jax.tree.map(jnp.zeros_like, params)
        opt = {"m": zeros, "v": zeros, "t": jnp.zeros((), jnp.int32)}
        obs, env_state = env_reset(jax.random.split(k_env, n_envs), env_params)
        runner = (params, opt, env_state, obs, jnp.zeros(n_envs), key)
        _, (return_sums, episodes) = jax.lax.scan(update, runner, jnp.arange(n_updates))
        return return_sums, episodes

    return train


def encode(x):
    x = float(x)
    return x if math.isfinite(x) else repr(x)


def main():
    stage = sys.argv[1]
    with open("spec.json") as handle:
        spec = json.load(handle)
    if spec["device"] == "gpu" and jax.default_backend() != "gpu":
        sys.exit(f"this setting needs a GPU, and JAX's backend in the sandbox is {jax.default_backend()!r}")
    drift = load_drift()
    runs = []
    for cfg in spec["runs"]:
        train = jax.jit(jax.vmap(make_train(cfg, drift)))
        return_sums, episodes = train(jnp.stack([jax.random.PRNGKey(s) for s in cfg["seeds"]]))
        runs.append(
            {
                "env": cfg["env"],
                "seeds": cfg["seeds"],
                "return_sum": [[encode(x) for x in row] for row in np.asarray(return_sums)],
                "episodes": np.asarray(episodes).astype(int).tolist(),
            }
        )
        print(f"{cfg['env']} done", flush=True)
    with open("result.json", "w") as handle:
        json.dump({"stage": stage, "device": spec["device"], "runs": runs}, handle, allow_nan=False)


if __name__ == "__main__":
    main()
