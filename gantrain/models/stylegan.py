"""StyleGAN's style-based generator (Karras, Laine & Aila 2019, "A Style-Based Generator Architecture for GANs").

A mapping network f (``mapping_layers`` fully connected layers, 8 in the paper) turns z into w. Synthesis
starts from a learned constant 4×4 tensor; every layer adds per-pixel noise scaled by learned per-channel
factors (B), a bias and a LeakyReLU, then AdaIN with the style y = A(w) of a learned affine map A (§2, Eq. 1).
Each resolution has two such layers (the first upsamples, convolves and blurs with [1 2 1]); a toRGB layer per
resolution lets the family grow the network as ProGAN does. All layers use the equalized learning rate, the
mapping network with a 0.01 multiplier (Appendix C).

In training mode the generator applies style mixing regularization (§3.1): with probability ``mixing_prob``
the batch draws a second z and the layers from a random crossover onwards take its w. It also tracks w̄, a
moving average of f(z) (decay ``w_avg_beta``), for the truncation trick w' = w̄ + ψ(w − w̄) (§3.1, Eq. 3).
The discriminator is ProGAN's (``gantrain.models.progan.Discriminator``) with ``blur=True``, as in the paper.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gantrain.models.layers import pyramid_levels, pyramid_widths
from gantrain.models.progan import Blur, PixelNorm, check_level, conv3x3, equalized, faded_output, lrelu

Tensor = torch.Tensor


class MappingNetwork(nn.Module):
    """f: z → w, pixel-normalized z through ``layers`` equalized-lr FC layers with LReLU (lr multiplier 0.01)."""

    def __init__(self, latent_dim: int, w_dim: int, layers: int = 8, lr_mul: float = 0.01):
        super().__init__()
        if layers < 1:
            raise ValueError(f"the mapping network needs at least one layer, not {layers}")
        dims = [latent_dim] + [w_dim] * layers
        fcs = [m for d_in, d_out in zip(dims[:-1], dims[1:]) for m in (equalized(nn.Linear(d_in, d_out), lr_mul=lr_mul), lrelu())]
        self.net = nn.Sequential(PixelNorm(), *fcs)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class NoiseInjection(nn.Module):
    """x + B·noise: one N(0, 1) value per pixel, shared by all channels, scaled by learned per-channel factors
    (initialized to zero). ``randomize=False`` uses a fixed noise image drawn at construction."""

    def __init__(self, channels: int, size: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(channels))
        self.register_buffer("fixed", torch.randn(1, 1, size, size))

    def forward(self, x: Tensor, randomize: bool = True) -> Tensor:
        noise = torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device, dtype=x.dtype) if randomize else self.fixed
        return x + self.weight.view(1, -1, 1, 1) * noise


class AdaIN(nn.Module):
    """AdaIN(x_i, y) = y_s,i·(x_i − μ(x_i))/σ(x_i) + y_b,i (StyleGAN Eq. 1), with y = (y_s, y_b) = A(w).

    μ and σ are each sample's and channel's spatial mean and standard deviation (σ² + 1e-8 under the root).
    A is an equalized-lr affine map whose bias starts at y_s = 1, y_b = 0.
    """

    def __init__(self, channels: int, w_dim: int):
        super().__init__()
        self.affine = equalized(nn.Linear(w_dim, 2 * channels), gain=1.0)
        with torch.no_grad():
            self.affine.bias[:channels] = 1.0

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        y_s, y_b = self.affine(w)[:, :, None, None].chunk(2, dim=1)
        return torch.addcmul(y_b, y_s, F.instance_norm(x, eps=1e-8))


class StyleLayer(nn.Module):
    """[conv] → noise → bias → LReLU → AdaIN(·, A(w)). ``conv``: None (the constant input), "same" or "up"."""

    def __init__(self, c_in: int, c_out: int, size: int, w_dim: int, conv: str | None):
        super().__init__()
        if conv is None:
            self.conv = nn.Identity()
        elif conv == "same":
            self.conv = conv3x3(c_in, c_out, bias=False)
        else:
            self.conv = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), conv3x3(c_in, c_out, bias=False), Blur())
        self.noise = NoiseInjection(c_out, size)
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.act = lrelu()
        self.adain = AdaIN(c_out, w_dim)

    def forward(self, x: Tensor, w: Tensor, randomize_noise: bool = True) -> Tensor:
        x = self.noise(self.conv(x), randomize_noise)
        return self.adain(self.act(x + self.bias.view(1, -1, 1, 1)), w)


class Generator(nn.Module):
    """Mapping network + synthesis network; ``forward(z, level, alpha, psi)`` returns images at 4·2^level px."""

    def __init__(
        self,
        latent_dim: int,
        channels: int,
        image_size: int,
        w_dim: int | None = None,
        mapping_layers: int = 8,
        mapping_lr_mul: float = 0.01,
        width: int = 64,
        max_width: int = 512,
        mixing_prob: float = 0.9,
        w_avg_beta: float = 0.995,
    ):
        super().__init__()
        if not 0.0 <= mixing_prob <= 1.0:
            raise ValueError(f"mixing_prob={mixing_prob} is a probability: use a value in [0, 1]")
        if not 0.0 <= w_avg_beta < 1.0:
            raise ValueError(f"w_avg_beta={w_avg_beta} is a moving-average decay: use a value in [0, 1)")
        self.latent_dim, self.w_dim = latent_dim, w_dim or latent_dim
        self.mixing_prob, self.w_avg_beta = mixing_prob, w_avg_beta
        self.max_level = pyramid_levels("StyleGAN", channels, image_size)
        ch = pyramid_widths(image_size, width, max_width)
        self.mapping = MappingNetwork(latent_dim, self.w_dim, mapping_layers, mapping_lr_mul)
        self.register_buffer("w_avg", torch.zeros(self.w_dim))
        self.const = nn.Parameter(torch.ones(1, ch[0], 4, 4))
        layers = [StyleLayer(ch[0], ch[0], 4, self.w_dim, None), StyleLayer(ch[0], ch[0], 4, self.w_dim, "same")]
        for level, (c_in, c_out) in enumerate(zip(ch[:-1], ch[1:]), start=1):
            size = 4 * 2**level
            layers += [StyleLayer(c_in, c_out, size, self.w_dim, "up"), StyleLayer(c_out, c_out, size, self.w_dim, "same")]
        self.layers = nn.ModuleList(layers)
        self.to_rgb = nn.ModuleList(equalized(nn.Conv2d(c, channels, 1), gain=1.0) for c in ch)

    @property
    def num_layers(self) -> int:
        """Number of style inputs (two per resolution)."""
        return len(self.layers)

    @staticmethod
    def layers_at(level: int) -> int:
        """Style layers in use at ``level``."""
        return 2 * (level + 1)

    def truncate(self, w: Tensor, psi: float) -> Tensor:
        """The truncation trick, w' = w̄ + ψ(w − w̄): ψ = 1 returns w, ψ = 0 returns w̄."""
        return torch.lerp(self.w_avg.to(w.dtype), w, psi)

    def _track_w_avg(self, w: Tensor) -> None:
        with torch.no_grad():
            self.w_avg.lerp_(w.mean(dim=0).to(self.w_avg.dtype), 1.0 - self.w_avg_beta)

    def styles(self, z: Tensor, level: int | None = None, psi: float = 1.0) -> Tensor:
        """Per-layer styles (N, layers_at(level), w_dim). In training mode: updates w̄ and mixes styles."""
        level = check_level(level, self.max_level)
        n_layers = self.layers_at(level)
        w = self.mapping(z)
        ws = w[:, None].expand(-1, n_layers, -1)
        if self.training:
            self._track_w_avg(w)
            if self.mixing_prob > 0 and float(torch.rand(())) < self.mixing_prob:
                crossover = int(torch.randint(1, n_layers, ()))
                second = self.mapping(torch.randn_like(z))[:, None].expand(-1, n_layers, -1)
                ws = self.mix(ws, second, crossover)
        return ws if psi == 1.0 else self.truncate(ws, psi)

    @staticmethod
    def mix(first: Tensor, second: Tensor, crossover: int) -> Tensor:
        """Styles of ``first`` in layers < ``crossover`` and of ``second`` from it on (both (N, layers, w_dim))."""
        return torch.cat([first[:, :crossover], second[:, crossover:]], dim=1)

    def synthesize(self, ws: Tensor, level: int | None = None, alpha: float = 1.0, randomize_noise: bool = True) -> Tensor:
        """Images at 4·2^level px from per-layer styles ``ws`` (N, layers_at(level), w_dim)."""
        level = check_level(level, self.max_level)
        if ws.shape[1] != self.layers_at(level):
            raise ValueError(f"level {level} takes {self.layers_at(level)} styles, got {ws.shape[1]}")
        h = self.const.expand(ws.shape[0], -1, -1, -1)
        previous = None
        for i, layer in enumerate(self.layers[: self.layers_at(level)]):
            if i % 2 == 0:
                previous = h
            h = layer(h, ws[:, i], randomize_noise)
        return faded_output(self.to_rgb, level, alpha, previous, h)

    def forward(self, z: Tensor, level: int | None = None, alpha: float = 1.0, psi: float = 1.0, randomize_noise: bool = True) -> Tensor:
        return self.synthesize(self.styles(z, level, psi), level, alpha, randomize_noise)
