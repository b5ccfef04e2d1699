"""The candidate's side of optimizer_discovery (shipped beside the program as `clade_stepper.py`).

It holds the rule's per-tensor state and a mirror of every tensor (the value it last returned,
which is what the judge put in its model), so each step the judge sends only the gradients and
hears back the new values, a run's tensors as one buffer of float32 values each way. It runs
with the candidate's privilege and holds no authority: the judge checks every value it returns
and computes every loss and curve itself."""

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
        """The new tensors of the runs in `grads` (run index to its gradients, one float32 buffer)."""
        return {index: self._step(self.runs[index], buffer, step) for index, buffer in grads.items()}

    def _step(self, run, buffer, step):
        params, states, hp = run
        flat = torch.frombuffer(bytearray(buffer), dtype=torch.float32).to(self.device)
        grads = [g.view(p.shape) for g, p in zip(flat.split([p.numel() for p in params]), params, strict=True)]
        out = []
        for param, state, grad in zip(params, states, grads, strict=True):
            new = self.update(param, grad, state, step, hp)
            if not isinstance(new, torch.Tensor) or new.shape != param.shape:
                got = f"{type(new).__name__} {tuple(getattr(new, 'shape', ()))}"
                raise ValueError(f"update() must return a tensor of shape {tuple(param.shape)}, got {got}")
            param.copy_(new)
            out.append(param.reshape(-1))
        return torch.cat(out).cpu().numpy().tobytes()
