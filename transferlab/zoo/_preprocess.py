"""The zoo's image preprocessing: an image batch (uint8 or float in [0, 1], N x C x H x W) to a model's input.

Its own module so that the model loaders (``_models``) and the expert pool (``_experts``) both import it without
importing each other.
"""
from __future__ import annotations

from typing import Any, Dict, Tuple

__all__ = ["Preprocess"]


class Preprocess:
    """Image batch -> model input: to float in [0, 1] (uint8 / 255), channel adaptation (gray -> RGB by
    repetition, RGB -> gray by luma weights), bilinear resize to ``size`` (antialiased when shrinking), then
    per-channel normalisation. Accepts N x C x H x W or N x H x W tensors / arrays; never mutates its input."""

    def __init__(self, size: int, channels: int, mean: Tuple[float, ...], std: Tuple[float, ...]):
        self.size, self.channels = int(size), int(channels)
        self.mean, self.std = tuple(float(m) for m in mean), tuple(float(s) for s in std)

    def __call__(self, images):
        import numpy as np
        import torch
        import torch.nn.functional as F

        x = images if isinstance(images, torch.Tensor) else torch.as_tensor(np.asarray(images))
        if x.ndim == 3:
            x = x[:, None]
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"images must be N x C x H x W with C in (1, 3) (or N x H x W), got {tuple(x.shape)}")
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        if x.shape[1] == 1 and self.channels == 3:
            x = x.expand(-1, 3, -1, -1)
        elif x.shape[1] == 3 and self.channels == 1:
            x = (x * torch.tensor([0.299, 0.587, 0.114], device=x.device).view(1, 3, 1, 1)).sum(1, keepdim=True)
        if tuple(x.shape[-2:]) != (self.size, self.size):
            shrink = x.shape[-1] > self.size or x.shape[-2] > self.size
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False,
                              antialias=shrink)
        mean = torch.tensor(self.mean, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, -1, 1, 1)
        return ((x - mean) / std).contiguous()

    def to_dict(self) -> Dict[str, Any]:
        return {"size": self.size, "channels": self.channels, "mean": list(self.mean), "std": list(self.std),
                "resize": "bilinear", "scale": "uint8/255"}

    def __repr__(self) -> str:
        return (f"Preprocess(size={self.size}, channels={self.channels}, mean={self.mean}, std={self.std})")
