"""Runs inside the sandbox (untrusted): trains each run of the stage with the candidate's update
rule and writes the raw curves as JSON; the host checks them and computes every metric.

Runs (from spec.json, written by the task):
- `digits`: an MLP 64-64-10 (ReLU) on scikit-learn's bundled 8x8 digits (1297 train / 500
  validation images, a fixed split), cross-entropy, minibatches of 64;
- `regression`: an MLP 8-64-1 (ReLU) fitting a seeded random teacher network 8-32-1 (tanh) plus
  noise (1024 train / 512 validation points), mean squared error, minibatches of 64;
- `grokking`: a 2-layer transformer (width 128, 4 heads) on a*b mod 97 with half of all pairs
  for training, minibatches of 512, evaluated on the other half every `eval_every` steps until
  the validation accuracy reaches `target_accuracy` or the step budget ends.

Written per run: the mean training loss of each window of `log_every` steps and the final
validation loss and accuracy (classification) for the supervised runs; the validation accuracy
and loss at each evaluation for grokking. A non-finite value is written as the string "nan"
(or "inf"), and training stops there.
"""

import importlib.util
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def load_rule():
    spec = importlib.util.spec_from_file_location("program", "program.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.init_state, module.update


def encode(x):
    x = float(x)
    return x if math.isfinite(x) else repr(x)


class Rule:
    """Applies the candidate's rule to every parameter tensor of a model."""

    def __init__(self, init_state, update, params, hp):
        self.update, self.hp = update, hp
        self.params = list(params)
        with torch.no_grad():
            self.states = [init_state(p.detach()) for p in self.params]
        self.step_count = 0

    @torch.no_grad()
    def step(self):
        self.step_count += 1
        for param, state in zip(self.params, self.states):
            new = self.update(param.detach(), param.grad.detach(), state, self.step_count, self.hp)
            if not isinstance(new, torch.Tensor) or new.shape != param.shape:
                raise ValueError(f"update() must return a tensor of shape {tuple(param.shape)}, got {type(new).__name__} {getattr(new, 'shape', '')}")
            param.copy_(new)
            param.grad = None


def seed_everything(seed):
    torch.manual_seed(seed)
    np.random.seed(seed)


# ---- data ------------------------------------------------------------------------------------

def digits_data(device):
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order] / 16.0, y[order]
    cut = len(x) - 500
    as_x = lambda a: torch.tensor(a, dtype=torch.float32, device=device)
    as_y = lambda a: torch.tensor(a, dtype=torch.long, device=device)
    return as_x(x[:cut]), as_y(y[:cut]), as_x(x[cut:]), as_y(y[cut:])


def regression_data(device):
    rng = np.random.default_rng(1234)
    w1, b1 = rng.normal(0, 1, (8, 32)) / math.sqrt(8), rng.normal(0, 0.5, 32)
    w2 = rng.normal(0, 1, (32, 1)) / math.sqrt(32)
    x = rng.normal(0, 1, (1536, 8))
    y = np.tanh(x @ w1 + b1) @ w2 + 0.05 * rng.normal(0, 1, (1536, 1))
    as_t = lambda a: torch.tensor(a, dtype=torch.float32, device=device)
    return as_t(x[:1024]), as_t(y[:1024]), as_t(x[1024:]), as_t(y[1024:])


def grokking_data(p, train_fraction, device):
    a, b = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
    a, b = a.ravel(), b.ravel()
    tokens = np.stack([a, b, np.full_like(a, p)], axis=1)  # [a, b, "="]
    labels = (a * b) % p
    order = np.random.default_rng(0).permutation(len(tokens))
    cut = int(train_fraction * len(tokens))
    as_t = lambda arr: torch.tensor(arr, dtype=torch.long, device=device)
    return as_t(tokens[order[:cut]]), as_t(labels[order[:cut]]), as_t(tokens[order[cut:]]), as_t(labels[order[cut:]])


# ---- models ----------------------------------------------------------------------------------

def mlp(sizes):
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class Block(nn.Module):
    """A pre-norm causal transformer block."""

    def __init__(self, width, heads):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, x):
        mask = torch.triu(torch.ones(x.shape[1], x.shape[1], dtype=torch.bool, device=x.device), diagonal=1)
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, attn_mask=mask, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, vocab, width, heads, layers, length, classes):
        super().__init__()
        self.tokens, self.positions = nn.Embedding(vocab, width), nn.Embedding(length, width)
        self.blocks = nn.Sequential(*[Block(width, heads) for _ in range(layers)])
        self.ln, self.head = nn.LayerNorm(width), nn.Linear(width, classes)

    def forward(self, x):
        h = self.tokens(x) + self.positions(torch.arange(x.shape[1], device=x.device))
        return self.head(self.ln(self.blocks(h))[:, -1])


# ---- training --------------------------------------------------------------------------------

def supervised(run, rule_fns, device):
    classify = run["problem"] == "digits"
    x, y, x_val, y_val = digits_data(device) if classify else regression_data(device)
    seed_everything(run["seed"])
    model = mlp([64, 64, 10] if classify else [8, 64, 1]).to(device)
    loss_fn = F.cross_entropy if classify else F.mse_loss
    rule = Rule(*rule_fns, model.parameters(), run["hp"])
    batches = np.random.default_rng(run["seed"])
    order, cursor = batches.permutation(len(x)), 0
    curve, window = [], []
    for _ in range(run["steps"]):
        if cursor + run["batch_size"] > len(order):
            order, cursor = batches.permutation(len(x)), 0
        index = torch.as_tensor(order[cursor : cursor + run["batch_size"]], device=device)
        cursor += run["batch_size"]
        loss = loss_fn(model(x[index]), y[index])
        loss.backward()
        rule.step()
        window.append(loss.item())
        if not math.isfinite(window[-1]):
            curve.append(encode(window[-1]))
            return {"train_loss": curve, "val_loss": "nan", "val_accuracy": None}
        if len(window) == run["log_every"]:
            curve.append(sum(window) / len(window))
            window = []
    with torch.no_grad():
        out = model(x_val)
        val_loss = loss_fn(out, y_val).item()
        accuracy = (out.argmax(1) == y_val).float().mean().item() if classify else None
    return {"train_loss": curve, "val_loss": encode(val_loss), "val_accuracy": accuracy}


def grokking(run, rule_fns, device):
    p = run["p"]
    x, y, x_val, y_val = grokking_data(p, run["train_fraction"], device)
    seed_everything(run["seed"])
    model = Transformer(p + 1, 128, 4, 2, 3, p).to(device)
    rule = Rule(*rule_fns, model.parameters(), run["hp"])
    sampler = torch.Generator(device="cpu").manual_seed(run["seed"])
    batch = min(run["batch_size"], len(x))
    accuracy_curve, loss_curve = [], []
    for step in range(1, run["steps"] + 1):
        index = torch.randint(len(x), (batch,), generator=sampler).to(device)
        loss = F.cross_entropy(model(x[index]), y[index])
        loss.backward()
        rule.step()
        if step % run["eval_every"] == 0:
            with torch.no_grad():
                out = model(x_val)
                val_loss = F.cross_entropy(out, y_val).item()
                accuracy = (out.argmax(1) == y_val).float().mean().item()
            loss_curve.append(encode(val_loss))
            accuracy_curve.append(accuracy)
            if not math.isfinite(val_loss) or accuracy >= run["target_accuracy"]:
                break
    return {"val_loss": loss_curve, "val_accuracy": accuracy_curve}


def main():
    stage = sys.argv[1]
    with open("spec.json") as handle:
        spec = json.load(handle)
    device = spec["device"]
    if device == "cuda" and not torch.cuda.is_available():
        sys.exit("this setting needs a GPU, and torch.cuda.is_available() is False in the sandbox")
    torch.set_num_threads(1)
    if device == "cpu":
        torch.use_deterministic_algorithms(True)
    rule_fns = load_rule()
    runs = []
    for run in spec["runs"]:
        train = grokking if run["problem"] == "grokking" else supervised
        runs.append({"problem": run["problem"], "seed": run["seed"], **train(run, rule_fns, device)})
        print(f"{run['problem']} seed {run['seed']} done", flush=True)
    with open("result.json", "w") as handle:
        json.dump({"stage": stage, "device": device, "runs": runs}, handle, allow_nan=False)


if __name__ == "__main__":
    main()
