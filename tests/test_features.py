"""Feature extractors: the cached dataset classifier, the Inception network's offline errors, any module."""

import urllib.error

import pytest
import torch
from torch import nn

from gantrain.data import DataBundle, DataSpec, InMemory
from gantrain.data.digits import digits
from gantrain.errors import ConfigError
from gantrain.metrics import build_extractor, cache_dir
from gantrain.metrics import classifier as classifier_module

TINY = {"width": 4, "feature_dim": 16, "epochs": 1, "batch_size": 128}


@pytest.fixture(scope="module")
def bundle():
    return digits(image_size=16)


def test_classifier_is_trained_once_then_loaded_from_the_cache(bundle, tmp_path, monkeypatch):
    calls = []
    train = classifier_module.train_classifier

    def counting(*args, **kwargs):
        calls.append(1)
        return train(*args, **kwargs)

    monkeypatch.setattr(classifier_module, "train_classifier", counting)
    settings = {"classifier": TINY, "cache_dir": str(tmp_path)}
    first = build_extractor("classifier", bundle=bundle, dataset_key="digits-k", eval_cfg=settings)
    assert len(calls) == 1 and len(list(tmp_path.glob("classifier-*.pt"))) == 1
    assert 0.0 < first.accuracy <= 1.0 and first.name == "classifier"

    def refuse(*args, **kwargs):
        raise AssertionError("the cached classifier should have been reused")

    monkeypatch.setattr(classifier_module, "train_classifier", refuse)
    second = build_extractor("classifier", bundle=bundle, dataset_key="digits-k", eval_cfg=settings)
    assert second.accuracy == first.accuracy and second.cache_key == first.cache_key
    x = bundle.heldout.tensors()["image"][:20]
    f1, l1 = first.extract(x)
    f2, l2 = second.extract(x)
    assert f1.shape == (20, 16) and l1.shape == (20, 10)
    torch.testing.assert_close(f1, f2)
    # other settings or another dataset key: another classifier
    monkeypatch.setattr(classifier_module, "train_classifier", counting)
    build_extractor("classifier", bundle=bundle, dataset_key="digits-k", eval_cfg={**settings, "classifier": {**TINY, "seed": 1}})
    assert len(calls) == 2


@pytest.mark.slow
def test_classifier_learns_the_digits(bundle, tmp_path):
    extractor = build_extractor(
        "classifier", bundle=bundle, dataset_key=None, eval_cfg={"classifier": {"width": 8, "epochs": 8}, "cache_dir": str(tmp_path)}
    )
    assert extractor.accuracy > 0.85  # chance is 0.1
    assert list(tmp_path.iterdir()) == []  # no dataset key: nothing cached


def test_classifier_defaults_are_the_configs(compose):
    from omegaconf import OmegaConf

    assert OmegaConf.to_container(compose([]).eval.classifier) == classifier_module.DEFAULTS


def test_classifier_needs_labels_and_known_settings(bundle):
    unlabelled = DataBundle(
        InMemory({"image": torch.zeros(8, 1, 8, 8)}), InMemory({"image": torch.zeros(4, 1, 8, 8)}), DataSpec("image", (1, 8, 8), 0)
    )
    with pytest.raises(ConfigError, match="has none"):
        build_extractor("classifier", bundle=unlabelled)
    with pytest.raises(ConfigError, match="no setting depth"):
        build_extractor("classifier", bundle=bundle, eval_cfg={"classifier": {"depth": 3}})


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("GANTRAIN_CACHE_DIR", str(tmp_path / "a"))
    assert cache_dir() == tmp_path / "a"
    assert cache_dir(str(tmp_path / "b")) == tmp_path / "b"
    monkeypatch.delenv("GANTRAIN_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "gantrain"


def test_any_module_maps_images_to_features(bundle):
    flat = build_extractor({"_target_": "torch.nn.Flatten"})
    assert flat.name == "flatten" and flat.cache_key is None
    f, logits = flat.extract(torch.zeros(3, 1, 16, 16))
    assert f.shape == (3, 256) and logits is None
    named = build_extractor({"_target_": "torch.nn.AdaptiveAvgPool2d", "output_size": 2, "name": "pool2"})
    assert named.name == "pool2" and named.extract(torch.zeros(3, 1, 16, 16))[0].shape == (3, 4)
    with pytest.raises(ConfigError, match="classifier, inception"):
        build_extractor("vgg")
    with pytest.raises(ConfigError, match="_target_"):
        build_extractor({"output_size": 2})


# ------------------------------------------------------------------------------------------ inception
def test_inception_without_torch_fidelity_says_how_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "torch_fidelity.feature_extractor_inceptionv3", None)  # import fails
    with pytest.raises(ConfigError, match=r"pip install 'gantrain\[inception\]'"):
        build_extractor("inception")


def test_inception_offline_without_weights_is_one_clear_error(monkeypatch, tmp_path):
    fe = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3")
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(fe, "load_state_dict_from_url", offline)
    expected = str(tmp_path / "hub" / "checkpoints" / "weights-inception-2015-12-05-6726825d.pth")
    with pytest.raises(ConfigError, match="could not be downloaded") as err:
        build_extractor("inception")
    assert expected in str(err.value) and "eval.inception_weights=" in str(err.value)
    with pytest.raises(ConfigError, match="downloading is off"):
        build_extractor("inception", eval_cfg={"inception_download": False})
    with pytest.raises(ConfigError, match="does not exist"):
        build_extractor("inception", eval_cfg={"inception_weights": str(tmp_path / "missing.pth")})


@pytest.mark.slow
def test_inception_from_a_local_weights_file(monkeypatch, tmp_path):
    """A weights file of the right layout (random values: the real file cannot be fetched in tests)."""
    fe = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3")
    with monkeypatch.context() as m:
        m.setattr(fe, "load_state_dict_from_url", lambda *a, **k: {})
        m.setattr(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None)
        net = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    path = tmp_path / "inception.pth"
    torch.save(net.state_dict(), path)
    extractor = build_extractor("inception", eval_cfg={"inception_weights": str(path)})
    features, logits = extractor.extract(torch.rand(2, 1, 16, 16) * 2 - 1)
    assert features.shape == (2, 2048) and logits.shape == (2, 1008)
    assert extractor.name == "inception"
    bad = tmp_path / "code.pth"
    torch.save({"net": nn.Linear(1, 1)}, bad)  # a pickled module, not plain tensors: refused unread
    with pytest.raises(ConfigError, match="refused unread"):
        build_extractor("inception", eval_cfg={"inception_weights": str(bad)})
