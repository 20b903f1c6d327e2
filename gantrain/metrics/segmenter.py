"""Semantic-image-synthesis scores (SPADE, Park et al. 2019, §4 "we run a semantic segmentation model on the
synthesized images and compare how well the predicted segmentation mask matches the ground truth input"):
``mIoU/segmenter`` and ``pixel_accuracy/segmenter`` of a segmenter's predictions on generated images against the
maps they were generated from.

The paper uses pretrained DeepLab/UperNet models; offline, the segmenter here is a small U-Net trained on the
dataset's real training images (cross-entropy, Adam), once per dataset + settings and cached like the feature
classifier (gantrain/metrics/classifier.py). Its scores on the real held-out images are the ceiling a generator
can reach in this metric (logged when it is trained, kept as ``Segmenter.real_scores``).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from gantrain import checkpoint
from gantrain.data import BatchStream, DataBundle, fetch
from gantrain.errors import ConfigError
from gantrain.metrics.features import save_cached, settings_key

log = logging.getLogger(__name__)
Tensor = torch.Tensor

DEFAULTS = {"width": 8, "epochs": 3, "batch_size": 32, "lr": 3e-3, "seed": 0}  # configs/dataset/base/segmentation.yaml
VERSION = 1  # bump when the network or its training changes: old cached segmenters are then not reused
NAMES = ("mIoU", "pixel_accuracy")


def segmentation_scores(pred: Tensor, target: Tensor, num_classes: int, ignore_index: Optional[int] = None) -> dict[str, float]:
    """``mIoU`` and ``pixel_accuracy`` of predicted class maps against target maps (same shape, int), over every pixel
    at once: IoU_c = TP_c / (TP_c + FP_c + FN_c) from the summed confusion matrix, averaged over the classes present in
    the targets or the predictions; pixel accuracy = Σ_c TP_c / pixels. Target pixels of ``ignore_index`` (or outside
    [0, num_classes)) count nowhere."""
    if pred.shape != target.shape:
        raise ValueError(f"predictions of shape {tuple(pred.shape)} against targets of shape {tuple(target.shape)}")
    pred, target = pred.flatten().long().cpu(), target.flatten().long().cpu()
    valid = (target >= 0) & (target < num_classes)
    if ignore_index is not None:
        valid &= target != ignore_index
    if not valid.any():
        raise ValueError("no target pixel has a class: every one is ignored")
    pred, target = pred[valid].clamp(0, num_classes - 1), target[valid]
    confusion = torch.bincount(target * num_classes + pred, minlength=num_classes**2).view(num_classes, num_classes).double()
    hits = confusion.diag()
    union = confusion.sum(0) + confusion.sum(1) - hits
    present = union > 0
    return {"mIoU": float((hits[present] / union[present]).mean()), "pixel_accuracy": float(hits.sum() / confusion.sum())}


class SegmenterNet(nn.Module):
    """A two-level U-Net (Ronneberger et al. 2015): (3×3 conv, BN, ReLU) × 2 at width w, 2w after a max-pool, 4w at
    the bottom; bilinear ×2 upsampling, concatenated skips, and a 1×1 conv to the class logits."""

    def __init__(self, channels: int, num_classes: int, width: int = 8):
        super().__init__()

        def stage(c_in: int, c_out: int) -> nn.Sequential:
            layers = []
            for c in (c_in, c_out):
                layers += [nn.Conv2d(c, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
            return nn.Sequential(*layers)

        self.down = nn.ModuleList([stage(channels, width), stage(width, 2 * width), stage(2 * width, 4 * width)])
        self.up = nn.ModuleList([stage(6 * width, 2 * width), stage(3 * width, width)])
        self.head = nn.Conv2d(width, num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        skips = []
        for i, stage in enumerate(self.down):
            x = stage(F.max_pool2d(x, 2) if i else x)
            skips.append(x)
        for stage, skip in zip(self.up, reversed(skips[:-1])):
            x = stage(torch.cat([F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False), skip], 1))
        return self.head(x)


class Segmenter(nn.Module):
    """A trained ``SegmenterNet`` and how it scores images against the maps they should show."""

    name = "segmenter"

    def __init__(self, net: SegmenterNet, num_classes: int, ignore_index: Optional[int], real_scores: dict, cache_key: Optional[str]):
        super().__init__()
        self.net, self.num_classes, self.ignore_index = net, num_classes, ignore_index
        self.real_scores, self.cache_key = dict(real_scores), cache_key

    @torch.no_grad()
    def predict(self, images: Tensor, batch_size: int = 250) -> Tensor:
        """The class map (int64 N×H×W, on the CPU) of each image in [-1, 1], in eval mode."""
        device = next(self.net.parameters()).device
        was_training = self.net.training
        self.net.eval()
        try:
            return torch.cat([self.net(images[s : s + batch_size].to(device)).argmax(1).cpu() for s in range(0, len(images), batch_size)])
        finally:
            self.net.train(was_training)

    def scores(self, images: Tensor, target: Tensor, batch_size: int = 250) -> dict[str, float]:
        """``mIoU/segmenter`` and ``pixel_accuracy/segmenter`` of the predictions on ``images`` against ``target``."""
        scores = segmentation_scores(self.predict(images, batch_size), target, self.num_classes, self.ignore_index)
        return {f"{k}/{self.name}": v for k, v in scores.items()}


def train_segmenter(bundle: DataBundle, settings: dict, ignore_index: Optional[int], device) -> tuple[SegmenterNet, dict]:
    """Train on ``bundle.train`` and return the network (eval mode) and its scores on the real held-out split.
    Seeded by ``settings["seed"]`` on forked generators: the caller's random streams are left as they were."""
    spec = bundle.spec
    with checkpoint.forked_rng(device):
        torch.manual_seed(settings["seed"])
        net = SegmenterNet(spec.channels, spec.num_classes, settings["width"]).to(device)
        optimizer = torch.optim.Adam(net.parameters(), lr=settings["lr"])
        batch_size = min(settings["batch_size"], len(bundle.train))
        stream = BatchStream(bundle.train, batch_size, seed=settings["seed"])
        ignore = -100 if ignore_index is None else ignore_index
        net.train()
        for _ in range(settings["epochs"] * (len(bundle.train) // batch_size)):
            batch = next(stream)
            loss = F.cross_entropy(net(batch["image"].to(device)), batch["segmentation"].to(device), ignore_index=ignore)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    segmenter = Segmenter(net.eval(), spec.num_classes, ignore_index, {}, None)
    heldout = fetch(bundle.heldout, list(range(len(bundle.heldout))))
    return net, segmenter.scores(heldout["image"], heldout["segmentation"])


def load_or_train_segmenter(
    bundle: DataBundle, dataset_key: Optional[str], settings: Optional[dict], cache: Path, ignore_index: Optional[int] = None, device="cpu"
) -> Segmenter:
    """The segmenter for ``bundle`` from ``cache`` (keyed by ``dataset_key``, the ignore index and ``settings``),
    trained and saved there on first use; without a ``dataset_key`` trained and not cached."""
    settings = {**DEFAULTS, **(settings or {})}
    unknown = set(settings) - set(DEFAULTS)
    if unknown:
        raise ConfigError(f"eval.segmenter has no setting {', '.join(sorted(unknown))}; known: {', '.join(DEFAULTS)}")
    spec = bundle.spec
    key = f"segmenter-{settings_key([VERSION, dataset_key, spec.shape, spec.num_classes, ignore_index, settings])}" if dataset_key else None
    path = cache / f"{key}.pt" if key else None
    if path is not None and path.is_file():
        state = checkpoint.load(path)
        net = SegmenterNet(spec.channels, spec.num_classes, settings["width"])
        checkpoint.restore(net, state["network"], str(path))
        real = {k: float(v) for k, v in state["real_scores"].items()}
        log.info("segmenter from %s (real held-out mIoU %.3f)", path, real["mIoU/segmenter"])
    else:
        tic = time.perf_counter()
        log.info("training the segmenter (%d epochs; once, then cached%s)", settings["epochs"], f" as {path}" if path else "")
        net, real = train_segmenter(bundle, settings, ignore_index, device)
        log.info(
            "trained the segmenter in %.1f s: real held-out mIoU %.3f, pixel accuracy %.3f",
            time.perf_counter() - tic,
            real["mIoU/segmenter"],
            real["pixel_accuracy/segmenter"],
        )
        if path is not None:
            cache.mkdir(parents=True, exist_ok=True)
            save_cached({"network": net.cpu().state_dict(), "real_scores": real, "settings": settings}, path)
    return Segmenter(net.eval(), spec.num_classes, ignore_index, real, key).to(device)
