"""Image domains made from scikit-learn's digits, each a known function of the original digit, so the true
translation between any two domains is known (what the unpaired and multi-domain methods are scored against).

``original``; ``thick``: the strokes dilated by a 3×3 square (grey-level dilation, a 3×3 max filter); ``thin``:
eroded by one (a 3×3 min filter); ``inverted``: dark strokes on white; ``tinted``: the strokes coloured
``TINT`` on black (RGB). A set of domains that includes ``tinted`` is RGB throughout: the grey domains are
given three equal channels, never broadcast implicitly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

Tensor = torch.Tensor

DOMAINS = ("original", "thick", "thin", "inverted", "tinted")
TINT = (1.0, 0.55, 0.1)  # an orange: distinct in every channel from the grey domains


def digits_unit(image_size: int) -> tuple[Tensor, Tensor]:
    """All 1797 digits bilinearly resized to ``image_size`` in [0, 1] (N×1×S×S) and their labels."""
    if image_size < 8:
        raise ValueError(f"dataset.image_size={image_size}: digits are 8×8, use 8 or more")
    x, y = load_digits(return_X_y=True)
    images = torch.as_tensor(x, dtype=torch.float32).view(-1, 1, 8, 8) / 16.0
    if image_size != 8:
        images = F.interpolate(images, size=(image_size, image_size), mode="bilinear", align_corners=False)
    return images.clamp_(0.0, 1.0), torch.as_tensor(y, dtype=torch.long)


def domain_channels(domains) -> int:
    """3 when any of ``domains`` is coloured, else 1."""
    unknown = sorted(set(domains) - set(DOMAINS))
    if unknown:
        raise ValueError(f"unknown digit domain {unknown[0]!r}; choose from {', '.join(DOMAINS)}")
    return 3 if "tinted" in domains else 1


def render(images: Tensor, domain: str, channels: int = 1) -> Tensor:
    """``images`` (N×1×S×S in [0, 1], strokes bright) in ``domain``, with ``channels`` channels, in [-1, 1]."""
    if domain == "original":
        out = images
    elif domain == "thick":
        out = F.max_pool2d(images, 3, stride=1, padding=1)
    elif domain == "thin":
        out = -F.max_pool2d(-images, 3, stride=1, padding=1)
    elif domain == "inverted":
        out = 1.0 - images
    elif domain == "tinted":
        if channels != 3:
            raise ValueError("the tinted domain is RGB: it needs 3 channels")
        out = images * torch.tensor(TINT, dtype=images.dtype).view(1, 3, 1, 1)
    else:
        raise ValueError(f"unknown digit domain {domain!r}; choose from {', '.join(DOMAINS)}")
    if out.shape[1] != channels:
        out = out.expand(-1, channels, -1, -1)
    return (out * 2.0 - 1.0).contiguous()
