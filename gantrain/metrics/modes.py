"""Mode coverage of 2D samples against a known Gaussian mixture (Lin et al., "PacGAN", 2018, Table 1).

Each generated point goes to its nearest mean; it is *high quality* (HQ) when it lies within
``hq_stds`` (3) standard deviations of that mean. *Modes captured*: means with at least one HQ point.
*HQ fraction*: share of HQ points. *Reverse KL*: KL(p̂ ‖ uniform) = Σ_k p̂_k log(M p̂_k), p̂ the
histogram of the HQ points over the M modes (empty modes contribute 0; natural log). With no HQ point
p̂ does not exist and the reverse KL is NaN.
"""

from __future__ import annotations

import math

import torch

from gantrain.data.mixtures import GaussianMixture


def mode_coverage(points: torch.Tensor, mixture: GaussianMixture, hq_stds: float = 3.0) -> dict[str, float]:
    """``points`` (N×d) against ``mixture``: modes captured, HQ fraction, reverse KL and the mode count."""
    if points.dim() != 2 or points.shape[1] != mixture.means.shape[1] or len(points) == 0:
        raise ValueError(f"expected a non-empty N×{mixture.means.shape[1]} tensor of points, got shape {tuple(points.shape)}")
    means = mixture.means.to(device=points.device, dtype=torch.float64)
    distance, nearest = torch.cdist(points.detach().to(torch.float64), means).min(dim=1)
    hq = distance < hq_stds * mixture.std
    counts = torch.bincount(nearest[hq], minlength=len(means)).to(torch.float64)
    total = counts.sum()
    if total > 0:
        p = counts / total
        nonzero = p[p > 0]
        reverse_kl = float((nonzero * (nonzero * len(means)).log()).sum())
    else:
        reverse_kl = math.nan
    return {
        "modes": int((counts > 0).sum()),
        "num_modes": len(means),
        "hq_fraction": float(hq.to(torch.float64).mean()),
        "reverse_kl": reverse_kl,
    }
