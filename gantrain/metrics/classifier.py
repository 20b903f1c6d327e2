"""The ``classifier`` feature extractor: a small CNN trained on the dataset's own labels ("MNIST-FID with a
LeNet"), trained once per dataset + settings and cached; its penultimate layer gives the features, its
logits the Inception-Score predictions. Offline, so it is the default for labelled datasets."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from gantrain import checkpoint
from gantrain.data import BatchStream, DataBundle
from gantrain.errors import ConfigError
from gantrain.metrics.features import Extractor, dataset_features, save_cached, settings_key

log = logging.getLogger(__name__)

DEFAULTS = {"width": 16, "feature_dim": 128, "epochs": 20, "batch_size": 128, "lr": 1e-3, "weight_decay": 5e-4, "dropout": 0.3, "seed": 0}
VERSION = 1  # bump when the network or its training changes: old cached classifiers are then not reused


class ClassifierNet(nn.Module):
    """Two conv–conv–max-pool stages (width, 2·width channels), pooled to 4×4, a ``feature_dim`` ReLU layer
    (the features) and a linear classifier."""

    def __init__(self, channels: int, num_classes: int, width: int = 16, feature_dim: int = 128, dropout: float = 0.3):
        super().__init__()

        def stage(cin, cout):
            return [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(), nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]

        self.body = nn.Sequential(
            *stage(channels, width),
            *stage(width, 2 * width),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Linear(2 * width * 16, feature_dim),
            nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(feature_dim, num_classes))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.body(images)
        return features, self.head(features)


class ClassifierExtractor(Extractor):
    name = "classifier"
    predicts_dataset_classes = True

    def __init__(self, net: ClassifierNet, accuracy: float, cache_key: Optional[str]):
        super().__init__()
        self.net, self.accuracy, self.cache_key = net, accuracy, cache_key

    def forward(self, images):
        return self.net(images)


def train_classifier(bundle: DataBundle, settings: dict, device) -> tuple[ClassifierNet, float]:
    """Train on ``bundle.train`` with Adam and cross-entropy; return the network and its held-out accuracy.
    Seeded by ``settings["seed"]`` on forked generators: the caller's random streams are left as they were."""
    with checkpoint.forked_rng(device):
        torch.manual_seed(settings["seed"])
        return _train_classifier(bundle, settings, device)


def _train_classifier(bundle: DataBundle, settings: dict, device) -> tuple[ClassifierNet, float]:
    spec = bundle.spec
    net = ClassifierNet(spec.channels, spec.num_classes, settings["width"], settings["feature_dim"], settings["dropout"]).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=settings["lr"], weight_decay=settings["weight_decay"])
    batch_size = min(settings["batch_size"], len(bundle.train))
    stream = BatchStream(bundle.train, batch_size, seed=settings["seed"])
    steps = settings["epochs"] * (len(bundle.train) // batch_size)
    net.train()
    for _ in range(steps):
        batch = next(stream)
        loss = F.cross_entropy(net(batch["image"].to(device))[1], batch["label"].to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    extractor = ClassifierExtractor(net, 0.0, None)
    _, logits, labels = dataset_features(extractor, bundle.heldout, with_labels=True)
    return net.eval(), float((logits.argmax(1) == labels).double().mean())


def load_or_train_classifier(
    bundle: DataBundle, dataset_key: Optional[str], settings: dict, cache: Path, device="cpu"
) -> ClassifierExtractor:
    """The classifier for ``bundle`` from ``cache`` (keyed by ``dataset_key`` and ``settings``), trained and
    saved there on first use. Without a ``dataset_key`` it is trained and not cached."""
    settings = {**DEFAULTS, **(settings or {})}
    unknown = set(settings) - set(DEFAULTS)
    if unknown:
        raise ConfigError(f"eval.classifier has no setting {', '.join(sorted(unknown))}; known: {', '.join(DEFAULTS)}")
    spec = bundle.spec
    key = None
    if dataset_key is not None:
        key = f"classifier-{settings_key([VERSION, dataset_key, spec.shape, spec.num_classes, settings])}"
    path = cache / f"{key}.pt" if key else None
    if path is not None and path.is_file():
        state = checkpoint.load(path)
        net = ClassifierNet(spec.channels, spec.num_classes, settings["width"], settings["feature_dim"], settings["dropout"])
        checkpoint.restore(net, state["network"], str(path))
        accuracy = float(state["accuracy"])
        log.info("feature classifier from %s (held-out accuracy %.2f%%)", path, 100 * accuracy)
    else:
        tic = time.perf_counter()
        # Ctrl-C here stops the run (gantrain.cli's one line); nothing reaches the cache before save_cached's rename
        log.info("training the feature classifier (%d epochs; once, then cached%s)", settings["epochs"], f" as {path}" if path else "")
        net, accuracy = train_classifier(bundle, settings, device)
        log.info("trained the feature classifier in %.1f s: held-out accuracy %.2f%%", time.perf_counter() - tic, 100 * accuracy)
        if path is not None:
            save_cached({"network": net.cpu().state_dict(), "accuracy": accuracy, "settings": settings}, path)
    return ClassifierExtractor(net.eval(), accuracy, key).to(device)
