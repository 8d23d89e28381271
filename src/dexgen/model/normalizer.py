"""Affine feature normalization fitted on the training data and stored inside the weights."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

STD_FLOOR = 1e-6
"""Smallest standard deviation used, so that constant features map to zero instead of dividing by zero."""


class Normalizer(nn.Module):
    """``normalize(x) = (x - mean) / std`` over trailing dimensions of shape ``shape``; the statistics are buffers,
    so they travel in the state dict (and a checkpoint) with the weights."""

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.register_buffer("mean", torch.zeros(shape))
        self.register_buffer("std", torch.ones(shape))

    def set(self, mean: np.ndarray | torch.Tensor, std: np.ndarray | torch.Tensor) -> None:
        """Set the statistics; their shapes must equal the normalizer's."""
        mean, std = torch.as_tensor(mean, dtype=torch.float32), torch.as_tensor(std, dtype=torch.float32)
        if mean.shape != self.mean.shape or std.shape != self.std.shape:
            raise ValueError(f"statistics of shape {tuple(mean.shape)} for a normalizer of {tuple(self.mean.shape)}")
        if not (torch.isfinite(mean).all() and torch.isfinite(std).all()):
            raise ValueError("normalization statistics hold NaN or inf")
        self.mean.copy_(mean)
        self.std.copy_(std.clamp_min(STD_FLOOR))

    def fit(self, x: np.ndarray | torch.Tensor) -> None:
        """Set mean and std from samples ``x`` of shape (N, *shape)."""
        x = torch.as_tensor(x, dtype=torch.float64)
        self.set(x.mean(0), x.std(0, unbiased=False))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def unnormalize(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.std + self.mean
