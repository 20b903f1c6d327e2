"""Shared fixtures: compose gantrain's config in-process and train small runs without a subprocess."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

import gantrain.cli  # registers the resolvers train.yaml uses

CONFIG_DIR = str(gantrain.cli.config_dir())
# A few steps, no periodic work: fast enough for one run per test.
QUICK = ["trainer.steps=2", "trainer.batch_size=16", "trainer.log_every=1", "trainer.sample_every=100",
         "trainer.checkpoint_every=100", "trainer.num_samples=16"]


def compose_config(overrides=()):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return hydra_compose("train", overrides=list(overrides))


@pytest.fixture
def compose():
    """compose(overrides) -> the DictConfig that `gantrain <overrides>` would run."""
    return compose_config


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)
    yield
