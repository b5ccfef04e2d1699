"""The judge (trusted, its own process and uid): owns the data, the models, the losses and
gradients, the step budget and the result. The candidate's process holds only the rule and its
per-tensor state (clade_stepper.py, shipped beside the program): every optimiser step the judge
sends it the step number and each run's gradients (a run's tensors as one buffer of float32
values), for all runs of the stage at once (one round trip per step), and hears back each run's
new tensors the same way, which it checks (exactly the run's number of float32 values; a
non-finite value ends the run as diverged) before putting them in its own model. The candidate
never sees a batch, a label, the validation data or this process; the curves written here are
computed here.

Runs (from spec.json, written by the task; the runs of a stage train side by side, in lockstep):
- `digits`: an MLP 64-64-10 (ReLU) on scikit-learn's bundled 8x8 digits (1297 train / 500
  validation images), cross-entropy, minibatches of 64;
- `regression`: an MLP 8-64-1 (ReLU) fitting a random teacher network 8-32-1 (tanh) plus
  noise (1024 train / 512 validation points), mean squared error, minibatches of 64;
- `grokking`: a 2-layer transformer (width 128, 4 heads) on a*b mod 97 with half of all pairs
  for training, minibatches of 512, evaluated on the other half every `eval_every` steps until
  the validation accuracy reaches `target_accuracy` or the step budget ends.

Each run carries the stage's `secret` (None only outside an evaluation: the public data as
published, each run seeded with its own `seed`). With one, every problem is transformed with
values drawn from it, so weights known in advance fit nothing: digits' 64 pixels, 10 labels
and train/validation split are permuted, the regression's teacher and inputs are drawn from it,
grokking's operand token ids, answer classes and split are permuted; the initialisation and the
minibatch order come from it too. The same secret gives the same runs, to the last bit on CPU.

Written per run: the mean training loss of each window of `log_every` steps and the final
validation loss and accuracy (classification) for the supervised runs; the validation accuracy
and loss at each evaluation for grokking. A non-finite loss or parameter is written as the
string "nan" (or "inf"), and that run stops there.
"""

import itertools
import json
import math
import sys

import numpy as np
import torch
import torch.nn.functional as F
from clade_channel import CandidateFault, run_judge
from torch import nn

PER_CALL_S = 10.0
"""Time for one step of every tensor of every run (the candidate's `update` calls)."""
INIT_S = 60.0
"""Time for the rule's `init_state` over every tensor of every run."""


def encode(x):
    x = float(x)
    return x if math.isfinite(x) else repr(x)


def seed_everything(seed):
    torch.manual_seed(seed)
    np.random.seed(seed)


# ---- data ------------------------------------------------------------------------------------


def tensor(array, dtype, device):
    return torch.tensor(array, dtype=dtype, device=device)


PROBLEMS = ("digits", "regression", "grokking")


def secret_rng(run, *words):
    """A stream drawn from the stage's secret for this run's problem (`words` name its use)."""
    return np.random.default_rng(np.random.SeedSequence([run["secret"], PROBLEMS.index(run["problem"]), *words]))


def run_seeds(run):
    """The run's initialisation and minibatch seeds: its own seed on the public data (no
    secret), else drawn from the secret, so no one knows the initial weights in advance."""
    if run.get("secret") is None:
        return run["seed"], run["seed"]
    init, batches = secret_rng(run, 1, run["seed"]).integers(0, 2**32, size=2)
    return int(init), int(batches)


def digits_data(run, device):
    """The bundled digits; under a secret, its 64 pixels, its 10 labels and its split permuted."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))  # the published split
    if run.get("secret") is None:
        features, labels = np.arange(64), np.arange(10)
    else:
        rng = secret_rng(run, 0)
        features, labels = rng.permutation(64), rng.permutation(10)
    x, y = x[order][:, features] / 16.0, labels[y[order]]
    cut = len(x) - 500
    xs, ys = tensor(x, torch.float32, device), tensor(y, torch.long, device)
    return xs[:cut], ys[:cut], xs[cut:], ys[cut:]


def regression_data(run, device):
    """A random teacher network and its inputs, from the secret (or the public seed 1234)."""
    rng = np.random.default_rng(1234) if run.get("secret") is None else secret_rng(run, 0)
    w1, b1 = rng.normal(0, 1, (8, 32)) / math.sqrt(8), rng.normal(0, 0.5, 32)
    w2 = rng.normal(0, 1, (32, 1)) / math.sqrt(32)
    x = rng.normal(0, 1, (1536, 8))
    y = np.tanh(x @ w1 + b1) @ w2 + 0.05 * rng.normal(0, 1, (1536, 1))
    xs, ys = tensor(x, torch.float32, device), tensor(y, torch.float32, device)
    return xs[:1024], ys[:1024], xs[1024:], ys[1024:]


def grokking_data(run, device):
    """a*b mod p; under a secret, the operands' token ids, the answer classes and the split permuted."""
    p, train_fraction = run["p"], run["train_fraction"]
    a, b = (grid.ravel() for grid in np.meshgrid(np.arange(p), np.arange(p), indexing="ij"))
    if run.get("secret") is None:
        order, ids, classes = np.random.default_rng(0).permutation(len(a)), np.arange(p), np.arange(p)
    else:
        rng = secret_rng(run, 0)
        order, ids, classes = rng.permutation(len(a)), rng.permutation(p), rng.permutation(p)
    tokens = np.stack([ids[a], ids[b], np.full_like(a, p)], axis=1)  # [a, b, "="]
    labels = classes[(a * b) % p]
    cut = int(train_fraction * len(tokens))
    train, val = order[:cut], order[cut:]
    xs, ys = tensor(tokens, torch.long, device), tensor(labels, torch.long, device)
    return xs[train], ys[train], xs[val], ys[val]


# ---- models ----------------------------------------------------------------------------------


def mlp(sizes):
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
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


# ---- training runs ---------------------------------------------------------------------------


class Supervised:
    """One MLP run: `loss_and_grads` for the next minibatch, `record` after the rule's step."""

    def __init__(self, run, device):
        self.run, self.classify = run, run["problem"] == "digits"
        self.x, self.y, self.x_val, self.y_val = (digits_data if self.classify else regression_data)(run, device)
        init, batches = run_seeds(run)
        seed_everything(init)
        self.model = mlp([64, 64, 10] if self.classify else [8, 64, 1]).to(device)
        self.params = list(self.model.parameters())
        self.loss_fn = F.cross_entropy if self.classify else F.mse_loss
        self.batches = np.random.default_rng(batches)
        self.order, self.cursor, self.device = self.batches.permutation(len(self.x)), 0, device
        self.curve, self.window, self.steps, self.done, self.outcome = [], [], 0, False, None

    def loss_and_grads(self):
        if self.cursor + self.run["batch_size"] > len(self.order):
            self.order, self.cursor = self.batches.permutation(len(self.x)), 0
        index = torch.as_tensor(self.order[self.cursor : self.cursor + self.run["batch_size"]], device=self.device)
        self.cursor += self.run["batch_size"]
        loss = self.loss_fn(self.model(self.x[index]), self.y[index])
        loss.backward()
        self.loss = loss.item()

    def record(self, finite):
        self.steps += 1
        self.window.append(self.loss)
        if not math.isfinite(self.loss) or not finite:
            self.curve.append(encode(self.loss) if not math.isfinite(self.loss) else "nan")
            self.done, self.outcome = True, {"train_loss": self.curve, "val_loss": "nan", "val_accuracy": None}
            return
        if len(self.window) == self.run["log_every"]:
            self.curve.append(sum(self.window) / len(self.window))
            self.window = []
        if self.steps == self.run["steps"]:
            self.done, self.outcome = True, self.validate()

    @torch.no_grad()
    def validate(self):
        out = self.model(self.x_val)
        val_loss = self.loss_fn(out, self.y_val).item()
        accuracy = (out.argmax(1) == self.y_val).float().mean().item() if self.classify else None
        return {"train_loss": self.curve, "val_loss": encode(val_loss), "val_accuracy": accuracy}


class Grokking:
    """One grokking run, evaluated every `eval_every` steps until it reaches the target."""

    def __init__(self, run, device):
        self.run, p = run, run["p"]
        self.x, self.y, self.x_val, self.y_val = grokking_data(run, device)
        init, batches = run_seeds(run)
        seed_everything(init)
        self.model = Transformer(p + 1, 128, 4, 2, 3, p).to(device)
        self.params = list(self.model.parameters())
        self.sampler = torch.Generator(device="cpu").manual_seed(batches)
        self.batch, self.device = min(run["batch_size"], len(self.x)), device
        self.accuracy_curve, self.loss_curve, self.steps, self.done = [], [], 0, False

    def loss_and_grads(self):
        index = torch.randint(len(self.x), (self.batch,), generator=self.sampler).to(self.device)
        F.cross_entropy(self.model(self.x[index]), self.y[index]).backward()

    def record(self, finite):
        self.steps += 1
        if not finite:  # the rule diverged: the evaluation it would have reached is not finite
            self.loss_curve.append("nan")
            self.accuracy_curve.append(0.0)
        elif self.steps % self.run["eval_every"] == 0:
            with torch.no_grad():
                out = self.model(self.x_val)
                val_loss = F.cross_entropy(out, self.y_val).item()
                accuracy = (out.argmax(1) == self.y_val).float().mean().item()
            self.loss_curve.append(encode(val_loss))
            self.accuracy_curve.append(accuracy)
            finite = math.isfinite(val_loss) and accuracy < self.run["target_accuracy"]  # else: stop
        self.done = not finite or self.steps == self.run["steps"]
        self.outcome = {"val_loss": self.loss_curve, "val_accuracy": self.accuracy_curve}


# ---- the rule, across the channel ------------------------------------------------------------


def as_arrays(tensors):
    return [t.detach().to("cpu", torch.float32).numpy() for t in tensors]


def flat_bytes(tensors):
    """A run's tensors as one buffer of float32 values (one copy off the device, one frame value)."""
    return torch.cat([t.detach().reshape(-1) for t in tensors]).to("cpu", torch.float32).numpy().tobytes()


def grad_of(param):
    return torch.zeros_like(param) if param.grad is None else param.grad


def accepted(reply, run, index):
    """A run's new tensors from the candidate's buffer of float32 values, and whether all are finite."""
    sizes = [p.numel() for p in run.params]
    if not isinstance(reply, bytes) or len(reply) != 4 * sum(sizes):
        got = f"{len(reply)} bytes" if isinstance(reply, bytes) else type(reply).__name__
        raise CandidateFault(f"step() must return run {index}'s {sum(sizes)} float32 values as bytes, got {got}")
    flat = torch.frombuffer(bytearray(reply), dtype=torch.float32).to(run.params[0].device)
    return flat.split(sizes), bool(torch.isfinite(flat).all())


@torch.no_grad()
def apply(run, values):
    for param, value in zip(run.params, values, strict=True):
        param.copy_(value.view(param.shape))
        param.grad = None


def train(channel, runs, device):
    """Every run of the stage, side by side: one round trip per step carries all that are still going."""
    plans = [{"params": as_arrays(run.params), "hp": run.run["hp"], "seed": run.run["seed"]} for run in runs]
    channel.construct("rule", "clade_stepper:Stepper", plans, device, timeout_s=INIT_S)
    step = 0
    while not all(run.done for run in runs):
        step += 1
        going = [i for i, run in enumerate(runs) if not run.done]
        for i in going:
            runs[i].loss_and_grads()
        grads = {i: flat_bytes(grad_of(p) for p in runs[i].params) for i in going}
        reply = channel.call("rule.step", grads, step, timeout_s=PER_CALL_S)
        if not isinstance(reply, dict) or set(reply) != set(going):
            raise CandidateFault(f"step() must return the new tensors of runs {going}, got {type(reply).__name__}")
        for i in going:
            arrays, finite = accepted(reply[i], runs[i], i)
            apply(runs[i], arrays)
            runs[i].record(finite)
    return [{"problem": run.run["problem"], "seed": run.run["seed"], **run.outcome} for run in runs]


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
    runs = [(Grokking if run["problem"] == "grokking" else Supervised)(run, device) for run in spec["runs"]]
    run_judge(stage, lambda channel: {"device": device, "runs": train(channel, runs, device)}, timeout_s=PER_CALL_S)


if __name__ == "__main__":
    main()
