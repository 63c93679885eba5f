"""A linear regression trained through `training.train`, runnable under torchrun: the DDP tests' subject.

    python -m torch.distributed.run --nproc_per_node 2 ddp_regression.py ROOT
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from facecraft_pipeline.training import RunFolder, RunSettings, run_key, train
from facecraft_pipeline.training.distributed import World, current_world
from facecraft_pipeline.training.loop import RunSpec

GLOBAL_BATCH = 8


class Regression:
    metric_names = ("loss",)
    images_per_step = GLOBAL_BATCH

    def __init__(self, world: World):
        self.world = world
        gen = torch.Generator().manual_seed(0)
        self.x = torch.randn(64, 5, generator=gen)
        self.y = self.x @ torch.tensor([1.0, -2.0, 0.5, 3.0, 0.0]) + 0.1 * torch.randn(64, generator=gen)
        self.model = torch.nn.Linear(5, 1)
        torch.nn.init.zeros_(self.model.weight)
        torch.nn.init.zeros_(self.model.bias)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=0.05)
        self.rng = torch.Generator().manual_seed(1)

    def step(self) -> torch.Tensor:
        index = torch.randint(len(self.x), (GLOBAL_BATCH,), generator=self.rng)  # the global batch, same on every rank
        x, y = self.world.shard(self.x[index]), self.world.shard(self.y[index])
        loss = ((self.model(x).squeeze(1) - y) ** 2).mean()
        self.opt.zero_grad()
        loss.backward()
        self.world.average_gradients(self.model.parameters())
        self.opt.step()
        return loss.detach().reshape(1)

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "opt": self.opt.state_dict(), "rng": self.rng.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])
        self.rng.set_state(state["rng"])

    def sample(self, folder: RunFolder, step: int) -> None:
        pass

    def finish(self, folder: RunFolder) -> dict[str, Path]:
        path = folder.path / "weights.pt"
        torch.save(self.model.state_dict(), path)
        return {"weights": path}


def main(root: Path, steps: int) -> None:
    world = current_world("cpu")
    settings = RunSettings(steps=steps, log_every=5, checkpoint_every=10)
    spec = RunSpec(root, run_key("regression", settings, 1), "regression", settings, {"device": "cpu"})
    result = train(spec, lambda: Regression(world), device="cpu", world=world)
    if world.main:
        print(result.folder)


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
