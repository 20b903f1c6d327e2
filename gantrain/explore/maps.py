"""A linear map between two latent spaces, z₂ ≈ M z₁ + b, fitted by least squares on points located in both,
and its coefficient of determination R²."""

from __future__ import annotations

import torch

Tensor = torch.Tensor


def fit_linear_map(source: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """(M, b) minimizing Σ ‖M sᵢ + b − tᵢ‖² over rows sᵢ of ``source`` (N, D₁) and tᵢ of ``target`` (N, D₂)."""
    s = torch.cat([source.double(), torch.ones(len(source), 1, dtype=torch.float64)], dim=1)
    solution = torch.linalg.lstsq(s, target.double(), driver="gelsd").solution  # (D₁ + 1, D₂)
    return solution[:-1].T.to(source.dtype), solution[-1].to(source.dtype)


def apply_map(m: Tensor, b: Tensor, source: Tensor) -> Tensor:
    return source @ m.T + b


def r_squared(predicted: Tensor, target: Tensor) -> float:
    """1 − Σ‖t − p‖² / Σ‖t − t̄‖² over all coordinates (the variance of ``target`` the map explains)."""
    t = target.double()
    return float(1 - (t - predicted.double()).pow(2).sum() / (t - t.mean(0)).pow(2).sum())
