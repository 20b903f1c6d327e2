"""Metrics of samples against their ground truth, one pair at a time: what translation and inpainting are
scored with on held-out pairs (a family's ``targets``, gantrain/families/base.py).

``L1/pixels`` is the mean absolute error in the model's [-1, 1] range; ``PSNR/pixels`` and ``SSIM/pixels`` are
scikit-image's ``peak_signal_noise_ratio`` and ``structural_similarity`` (Wang et al. 2004, with its default 7×7
window) on images mapped to [0, 1], averaged over the pairs. With a ``mask`` (an inpainting hole) the ``/hole``
variants count only the masked pixels: L1 over them, PSNR from their mean squared error. ``class_accuracy/<ext>``
is the fraction of samples the dataset's classifier assigns the class they should show (class preservation of
a translation, the target domain of StarGAN, the class of a conditional GAN).
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

Tensor = torch.Tensor


def _unit(images: Tensor) -> np.ndarray:
    """N×C×H×W in [-1, 1] → N×H×W×C float64 in [0, 1]."""
    return ((images.detach().cpu().double().clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).numpy()


def psnr_from_mse(mse: float) -> float:
    """10 log₁₀(1 / MSE) for images in [0, 1] (∞ for identical ones)."""
    return math.inf if mse == 0 else 10.0 * math.log10(1.0 / mse)


def paired_scores(samples: Tensor, targets: Tensor, mask: Optional[Tensor] = None) -> dict[str, float]:
    """``L1``, ``PSNR`` and ``SSIM`` of each sample against its target (same shape, [-1, 1]), averaged; with a
    ``mask`` (N×1×H×W or N×C×H×W, true inside the hole) also ``L1/hole`` and ``PSNR/hole``."""
    if samples.shape != targets.shape:
        raise ValueError(f"samples of shape {tuple(samples.shape)} against targets of shape {tuple(targets.shape)}")
    fake, real = _unit(samples), _unit(targets)
    side = min(fake.shape[1:3])
    window = min(7, side if side % 2 else side - 1)  # SSIM's window must fit the image
    with np.errstate(divide="ignore"):  # identical images: ∞ dB
        psnr = [peak_signal_noise_ratio(r, f, data_range=1.0) for r, f in zip(real, fake)]
    ssim = [structural_similarity(r, f, data_range=1.0, channel_axis=-1, win_size=window) for r, f in zip(real, fake)]
    out = {
        "L1": float((samples.float() - targets.float()).abs().mean()),
        "PSNR": float(np.mean(psnr)),
        "SSIM": float(np.mean(ssim)),
    }
    if mask is not None:
        hole = mask.expand_as(samples).cpu().bool()
        diff = (samples.float().cpu() - targets.float().cpu())[hole]
        out["L1/hole"] = float(diff.abs().mean())
        unit_mse = [float(((samples[i].float().cpu() - targets[i].float().cpu())[hole[i]] / 2).pow(2).mean()) for i in range(len(samples))]
        out["PSNR/hole"] = float(np.mean([psnr_from_mse(m) for m in unit_mse]))
    return out


def class_accuracy(logits: Tensor, labels: Tensor) -> float:
    """The fraction of samples whose predicted class (argmax of ``logits``) is ``labels``."""
    return float((logits.argmax(1).cpu() == labels.cpu()).double().mean())
