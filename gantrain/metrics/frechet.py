"""Fréchet distance between Gaussian fits of two feature sets (Heusel et al. 2017, "GANs Trained by a Two
Time-Scale Update Rule …", Eq. 6): the FID when the features are Inception pool features.

    d² = ‖μ₁ − μ₂‖² + Tr Σ₁ + Tr Σ₂ − 2 Tr (Σ₁Σ₂)^½

as pytorch-fid's ``calculate_frechet_distance`` defines it (μ, Σ in float64, Σ the unbiased covariance).
The trace term is computed without a general matrix square root: Σ₁Σ₂ is similar to the symmetric PSD
matrix Σ₁^½ Σ₂ Σ₁^½, so Tr (Σ₁Σ₂)^½ = Σᵢ √λᵢ(Σ₁^½ Σ₂ Σ₁^½), two symmetric eigendecompositions
(one when Σ₁^½ is cached, as it is for the real statistics) instead of a Schur-based ``sqrtm``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch


@dataclass
class GaussianStats:
    """Mean and covariance (float64) of a feature set; caches the covariance's symmetric square root."""

    mu: np.ndarray
    sigma: np.ndarray
    _sqrt: Optional[np.ndarray] = field(default=None, repr=False, compare=False)

    @property
    def sqrt_sigma(self) -> np.ndarray:
        """Σ^½ from ``eigh``; eigenvalues below zero (round-off of a singular Σ) are clipped to zero."""
        if self._sqrt is None:
            w, v = np.linalg.eigh(self.sigma)
            self._sqrt = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
        return self._sqrt


def gaussian_stats(features) -> GaussianStats:
    """μ and the unbiased covariance (``np.cov``, rows are samples) of N×d ``features``, in float64."""
    x = features.detach().cpu().double().numpy() if isinstance(features, torch.Tensor) else np.asarray(features, np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"need an N×d feature matrix with N ≥ 2, got shape {x.shape}")
    return GaussianStats(x.mean(axis=0), np.cov(x, rowvar=False))


def frechet_distance(a: GaussianStats, b: GaussianStats) -> float:
    """The Fréchet distance of ``a`` and ``b`` (Eq. 6 above), the trace term from the eigenvalues of
    Σa^½ Σb Σa^½. Put the statistics whose Σ^½ is reused (the real data's) first."""
    if a.mu.shape != b.mu.shape or a.sigma.shape != b.sigma.shape:
        raise ValueError(f"feature dimensions differ: {a.mu.shape[0]} and {b.mu.shape[0]}")
    s = a.sqrt_sigma
    product = s @ b.sigma @ s
    eigenvalues = np.linalg.eigvalsh((product + product.T) / 2)
    trace_sqrt = np.sqrt(np.clip(eigenvalues, 0.0, None)).sum()
    diff = a.mu - b.mu
    return float(diff @ diff + np.trace(a.sigma) + np.trace(b.sigma) - 2.0 * trace_sqrt)


def frechet_distance_sqrtm(a: GaussianStats, b: GaussianStats, eps: float = 1e-6) -> float:
    """The reference computation pytorch-fid uses: ``scipy.linalg.sqrtm`` of Σa Σb; if it is not finite
    both Σ get ``eps`` added to the diagonal; the imaginary round-off of the result is dropped.
    Slow (a Schur decomposition of a non-symmetric matrix); kept to check ``frechet_distance`` against."""
    from scipy import linalg

    covmean = linalg.sqrtm(a.sigma @ b.sigma)
    if not np.isfinite(covmean).all():
        offset = np.eye(a.sigma.shape[0]) * eps
        covmean = linalg.sqrtm((a.sigma + offset) @ (b.sigma + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"sqrtm has an imaginary component of {np.abs(covmean.imag).max():.3g}")
        covmean = covmean.real
    diff = a.mu - b.mu
    return float(diff @ diff + np.trace(a.sigma) + np.trace(b.sigma) - 2.0 * np.trace(covmean))
