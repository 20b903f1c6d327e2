"""Feature extractors: images in [-1, 1] → feature vectors (and class logits, where the network has them).

``eval.features`` picks one (gantrain/metrics/extractors.py): ``classifier`` (a small CNN trained on the
dataset's own labels, see classifier.py), ``inception`` (the TF-ported FID Inception-v3 of torch-fidelity, optional extra
``gantrain[inception]``), or a ``{_target_: …}`` node naming any module that maps an image batch to an N×d
tensor (or to a ``(features, logits)`` pair). Every metric name carries the extractor's ``name``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from gantrain import checkpoint
from gantrain.data import fetch
from gantrain.errors import ConfigError

Tensor = torch.Tensor


def cache_dir(explicit: Optional[str] = None) -> Path:
    """Where trained classifiers and real-data features are kept: ``explicit``, else $GANTRAIN_CACHE_DIR,
    else $XDG_CACHE_HOME/gantrain, else ~/.cache/gantrain."""
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get("GANTRAIN_CACHE_DIR"):
        return Path(os.environ["GANTRAIN_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "gantrain"


def save_cached(state: dict, path: Path) -> None:
    """``checkpoint.save`` through a temporary file of this process's own (runs filling one cache at the same time
    never share one): one atomic ``os.replace``, the temporary file removed on any error, a full disk one line."""
    checkpoint.save(
        state, path, temporary=f".{path.name}.{os.getpid()}.tmp", what="the cached", advice="free some space or set eval.cache_dir"
    )


def settings_key(settings) -> str:
    """A short stable hash of JSON-able ``settings`` (names cached files)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Extractor(nn.Module):
    """Base of feature extractors. ``forward(images)`` → (N×d features, N×C logits or None).

    ``name`` goes into metric names (``FID/<name>``); ``cache_key`` (None = do not cache) identifies the
    network and its weights, so real-data features computed once can be reused from disk.
    """

    name: str = "features"
    cache_key: Optional[str] = None
    predicts_dataset_classes: bool = False  # logits are over the dataset's own classes

    @torch.no_grad()
    def extract(self, images: Tensor, batch_size: int = 250) -> tuple[Tensor, Optional[Tensor]]:
        """Features (and logits) of ``images`` in batches, in eval mode, returned in float32 on the CPU."""
        device = next(self.parameters(), torch.empty(0)).device
        was_training = self.training
        self.eval()
        feats, logits = [], []
        try:
            for start in range(0, len(images), batch_size):
                f, l = self(images[start : start + batch_size].to(device))
                feats.append(f.float().cpu())
                if l is not None:
                    logits.append(l.float().cpu())
        finally:
            self.train(was_training)
        return torch.cat(feats), (torch.cat(logits) if logits else None)


def dataset_features(extractor: Extractor, dataset, limit: Optional[int] = None, batch_size: int = 250, with_labels: bool = False):
    """Features and logits (None without) of the first ``limit`` samples of ``dataset`` (all by default),
    read batch by batch; with ``with_labels`` also their labels."""
    n = len(dataset) if limit is None else min(limit, len(dataset))
    feats, logits, labels = [], [], []
    for start in range(0, n, batch_size):
        batch = fetch(dataset, list(range(start, min(start + batch_size, n))))
        f, l = extractor.extract(batch["image"], batch_size)
        feats.append(f)
        if l is not None:
            logits.append(l)
        if with_labels:
            labels.append(batch["label"])
    out = (torch.cat(feats), torch.cat(logits) if logits else None)
    return (*out, torch.cat(labels)) if with_labels else out


class ModuleExtractor(Extractor):
    """Any module mapping images to an N×d tensor, or to a ``(features, logits)`` pair (``eval.features``
    given as a ``_target_`` node); its features are never cached on disk."""

    def __init__(self, module: nn.Module, name: str):
        super().__init__()
        self.module, self.name = module, name

    def forward(self, images: Tensor) -> tuple[Tensor, Optional[Tensor]]:
        out = self.module(images)
        features, logits = out if isinstance(out, tuple) else (out, None)
        return features.flatten(1), logits


INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"


def inception_cache_path() -> Path:
    """Where torch-fidelity (through torch.hub) keeps the FID Inception weights it downloads."""
    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE


class InceptionExtractor(Extractor):
    """The FID Inception-v3 (TF weights ``pt_inception-2015-12-05``, as pytorch-fid and torch-fidelity use):
    2048-d pool features and the 1008 unbiased logits for IS. Images in [-1, 1] are quantized to uint8
    (grey ones repeated to RGB); the network resizes them to 299×299 as TF1 did.

    Weights: ``weights`` (a local file), else torch-fidelity's cache, else its download where ``download``
    is true and the network allows; otherwise one ConfigError naming the file and where to put it.
    """

    name = "inception"
    cache_key = "inception-v3-compat-2015-12-05"

    def __init__(self, weights: Optional[str] = None, download: bool = True):
        super().__init__()
        try:
            from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
        except ImportError:
            raise ConfigError(
                "eval.features=inception needs torch-fidelity: pip install 'gantrain[inception]' (or use eval.features=classifier)"
            ) from None
        path = Path(weights).expanduser() if weights else inception_cache_path()
        if weights and not path.is_file():
            raise ConfigError(f"eval.inception_weights={weights!r} does not exist")
        where = (
            f"download {INCEPTION_FILE} (torch-fidelity's release v0.2.0) and pass eval.inception_weights=<file>, "
            f"or put it at {inception_cache_path()}"
        )
        if path.is_file():
            checkpoint.load(path)  # refuses a file holding more than tensors before torch-fidelity unpickles it
            self.net = FeatureExtractorInceptionV3(
                "inception-v3-compat", ["2048", "logits_unbiased"], feature_extractor_weights_path=str(path)
            )
        elif not download:
            raise ConfigError(f"the FID Inception weights are not in the cache and downloading is off: {where}")
        else:
            try:
                self.net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"])
            except (OSError, RuntimeError) as err:  # URLError is an OSError
                raise ConfigError(f"the FID Inception weights could not be downloaded ({type(err).__name__}): {where}") from None

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        x = ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        elif x.shape[1] != 3:
            raise ValueError(f"the Inception network takes grey or RGB images, not {x.shape[1]} channels")
        features, logits = self.net(x)
        return features, logits
