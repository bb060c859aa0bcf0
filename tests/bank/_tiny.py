"""A tiny deterministic CNN and synthetic images for extraction tests (also run as a script by the
kill-and-resume test: ``python _tiny.py OUT [kill_mode]``)."""
from __future__ import annotations

import os
import signal
import sys


def tiny_model():
    import torch
    from torch import nn

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(1, 6, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten())
            self.fc = nn.Linear(24, 5)

        def forward(self, x):
            return self.fc(self.features(x))

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return Tiny()


def tiny_data(n=90, seed=0):
    import torch

    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 1, 12, 12), generator=g, dtype=torch.uint8)
    y = torch.randint(0, 4, (n,), generator=g)
    return x, y


class Prep:
    """uint8 -> float; in the kill-and-resume script it can SIGKILL its own process before batch ``kill_at``."""

    description = "uint8/255"

    def __init__(self, kill_at=None):
        self.kill_at, self.calls = kill_at, 0

    def __call__(self, x):
        self.calls += 1
        if self.kill_at is not None and self.calls == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return x.float() / 255.0


def _main(out: str, mode: str) -> None:
    import transferlab.bank as bank_mod
    from transferlab import extract

    kill_at = None
    if mode == "between":  # killed while computing batch 4 (3 batches committed)
        kill_at = 4
    elif mode == "midwrite":  # killed halfway through writing the features of batch 3 (a torn block on disk)
        real, count = bank_mod._pwrite, {"n": 0}

        def torn(fd, data, offset):
            if len(data) == 16 * 24 * 4 and not data.startswith(b"{"):  # a features block, not meta.json
                count["n"] += 1
                if count["n"] == 3:
                    real(fd, data[: len(data) // 2], offset)
                    os.kill(os.getpid(), signal.SIGKILL)
            return real(fd, data, offset)

        bank_mod._pwrite = torn
    x, y = tiny_data()
    extract(tiny_model(), (x, y), out, batch_size=16, model_id="tiny", dataset_id="synthetic",
            preprocessing=Prep(kill_at), progress=False)


if __name__ == "__main__":
    _main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "none")
