"""The candidate's side of optimizer_discovery (shipped beside the program as `clade_stepper.py`).

It holds the rule's per-tensor state and a mirror of every tensor (the value it last returned,
which is what the judge put in its model), so each step the judge sends only the gradients and
hears back the new values. It runs with the candidate's privilege and holds no authority: the
judge checks every value it returns and computes every loss and curve itself."""

import sys

import numpy as np
import torch


class Stepper:
    def __init__(self, plans, device):
        program = sys.modules["program"]
        self.update = program.update
        torch.set_num_threads(1)
        if device == "cpu":
            torch.use_deterministic_algorithms(True)
        self.device = device if device == "cpu" or torch.cuda.is_available() else "cpu"
        self.runs = []
        for plan in plans:
            torch.manual_seed(plan["seed"])
            np.random.seed(plan["seed"])
            params = [torch.tensor(p, dtype=torch.float32, device=self.device) for p in plan["params"]]
            with torch.no_grad():
                states = [program.init_state(p) for p in params]
            self.runs.append((params, states, plan["hp"]))

    @torch.no_grad()
    def step(self, grads, step):
        """The new value of every tensor of the runs in `grads` (run index to its gradients)."""
        return {index: self._step(self.runs[index], tensors, step) for index, tensors in grads.items()}

    def _step(self, run, grads, step):
        params, states, hp = run
        out = []
        for param, state, grad in zip(params, states, grads, strict=True):
            grad = torch.from_numpy(grad).to(self.device, torch.float32)
            new = self.update(param, grad, state, step, hp)
            if not isinstance(new, torch.Tensor) or new.shape != param.shape:
                got = f"{type(new).__name__} {tuple(getattr(new, 'shape', ()))}"
                raise ValueError(f"update() must return a tensor of shape {tuple(param.shape)}, got {got}")
            param.copy_(new)
            out.append(param.cpu().numpy())
        return out
