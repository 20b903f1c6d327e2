"""Text-conditional networks of GAN-INT-CLS (Reed, Akata, Yan, Logeswaran, Schiele & Lee 2016, §3–4).

``CharCNNEncoder`` φ: a caption, as character indices (``encode_text``: lower-cased code points below 128, others
one "unknown" index, padding 0), → a character embedding → two 1-D convolutions (ReLU) → max over positions → a
linear map to ``embed_dim``, scaled to unit norm. Measured on captioned digits (25 CPU seconds): with embeddings of
norm 16 (√embed_dim, or unscaled) G collapsed to one image whatever the caption and z, also with a frozen encoder
and with D blind to the text; at norm 0.8 its samples were as diverse as with no text. The paper pre-trains a char-CNN-RNN φ with a structured joint embedding of images and
text and keeps it fixed; this one is small, needs no pre-training or extra data, and is trained with D (see
gantrain/families/text2image.py).

``TextConditionalGenerator``: φ(t) is projected to ``projection`` (128) dimensions by a linear layer and a leaky
ReLU (0.2), concatenated to z, and decoded by DCGAN's generator (gantrain/models/dcgan.py).
``TextConditionalDiscriminator``: DCGAN's strided convolutions down to 4×4, then the projected φ(t) replicated
spatially and concatenated along channels, a 1×1 convolution with batch norm and leaky ReLU, and a 4×4
convolution to one logit (the paper's §3.1).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from gantrain.models import dcgan
from gantrain.models.layers import pyramid_widths

Tensor = torch.Tensor
ALPHABET = 128  # code points 2…127 are their own index; 1 is any other character; 0 pads


def encode_text(texts: Sequence[str], length: int) -> Tensor:
    """Captions → N × ``length`` int64 character indices (lower-cased, cut at ``length``, padded with 0)."""
    out = torch.zeros(len(texts), length, dtype=torch.long)
    for i, text in enumerate(texts):
        codes = [ord(ch) if 1 < ord(ch) < ALPHABET else 1 for ch in text.lower()[:length]]
        out[i, : len(codes)] = torch.tensor(codes, dtype=torch.long)
    return out


class CharCNNEncoder(nn.Module):
    def __init__(self, embed_dim: int = 256, char_dim: int = 32, width: int = 128, kernel: int = 5):
        super().__init__()
        self.embed_dim = embed_dim
        self.chars = nn.Embedding(ALPHABET, char_dim, padding_idx=0)
        self.convs = nn.Sequential(
            nn.Conv1d(char_dim, width, kernel, padding=kernel // 2),
            nn.ReLU(True),
            nn.Conv1d(width, width, kernel, padding=kernel // 2),
            nn.ReLU(True),
        )
        self.out = nn.Linear(width, embed_dim)

    def forward(self, tokens: Tensor) -> Tensor:
        h = self.convs(self.chars(tokens).transpose(1, 2))
        return F.normalize(self.out(h.max(dim=2).values), dim=1)


def _projection(text_dim: int, projection: int) -> nn.Module:
    return nn.Sequential(nn.Linear(text_dim, projection), nn.LeakyReLU(0.2, True))


class TextConditionalGenerator(nn.Module):
    def __init__(
        self, latent_dim: int, text_dim: int, channels: int, image_size: int, projection: int = 128, width: int = 64, max_width: int = 512
    ):
        super().__init__()
        self.latent_dim = latent_dim
        self.project = _projection(text_dim, projection)
        self.decoder = dcgan.Generator(latent_dim + projection, channels, image_size, width, max_width)

    def forward(self, z: Tensor, text: Tensor) -> Tensor:
        return self.decoder(torch.cat([z, self.project(text)], dim=1))


class TextConditionalDiscriminator(nn.Module):
    def __init__(self, text_dim: int, channels: int, image_size: int, projection: int = 128, width: int = 64, max_width: int = 512):
        super().__init__()
        self.features = dcgan.Discriminator(channels, image_size, width, max_width).features  # image → 4×4 maps
        top = pyramid_widths(image_size // 2, width, max_width)[0]
        self.project = _projection(text_dim, projection)
        self.joint = nn.Sequential(
            nn.Conv2d(top + projection, top, 1, bias=False), nn.BatchNorm2d(top), nn.LeakyReLU(0.2, True), nn.Conv2d(top, 1, 4)
        )

    def forward(self, x: Tensor, text: Tensor) -> Tensor:
        h = self.features(x)
        t = self.project(text)[:, :, None, None].expand(-1, -1, h.shape[2], h.shape[3])
        return self.joint(torch.cat([h, t], dim=1)).flatten()
