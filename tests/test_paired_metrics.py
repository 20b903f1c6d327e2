"""The paired metrics (gantrain/metrics/paired.py) against their closed forms, and the evaluator computing them
from what a family says its samples should be (``Family.targets``)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gantrain.data import DataBundle, DataSpec, InMemory
from gantrain.metrics.evaluator import Evaluator, best_metric_name
from gantrain.metrics.features import ModuleExtractor
from gantrain.metrics.paired import class_accuracy, paired_scores

from test_spine import Colorizer, colour_pairs


def test_identical_pairs_score_zero_l1_unit_ssim_and_an_offset_gives_the_closed_form_psnr():
    target = torch.rand(6, 3, 16, 16) * 1.2 - 0.6  # room for the offsets below without clamping
    same = paired_scores(target, target)
    assert same["L1"] == 0 and same["SSIM"] == pytest.approx(1.0) and math.isinf(same["PSNR"])
    shifted = paired_scores(target + 0.2, target)  # 0.1 in [0, 1]: MSE 0.01 → 20 dB
    assert shifted["L1"] == pytest.approx(0.2, abs=1e-6)
    assert shifted["PSNR"] == pytest.approx(20.0, abs=1e-4)
    assert shifted["SSIM"] < 1.0
    worse = paired_scores(target + 0.4, target)  # MSE 0.04 → 10·log10(25)
    assert worse["PSNR"] == pytest.approx(10 * math.log10(25), abs=1e-4)


def test_the_hole_metrics_count_only_the_masked_pixels():
    target = torch.zeros(2, 1, 8, 8)
    mask = torch.zeros(2, 1, 8, 8, dtype=torch.bool)
    mask[:, :, 2:6, 2:6] = True
    sample = target.clone()
    sample[mask] = 0.2  # error 0.2 inside the hole
    sample[~mask] = 1.0  # a large error outside it must not count
    scores = paired_scores(sample, target, mask)
    assert scores["L1/hole"] == pytest.approx(0.2, abs=1e-6)
    assert scores["PSNR/hole"] == pytest.approx(20.0, abs=1e-4)
    assert scores["L1"] > 0.5  # the whole image counts the outside too


def test_class_accuracy_is_the_fraction_predicted_as_their_target_class():
    logits = torch.tensor([[3.0, 0.0], [0.0, 2.0], [1.0, 0.0], [0.0, 1.0]])
    assert class_accuracy(logits, torch.tensor([0, 1, 1, 1])) == pytest.approx(0.75)


class PairedColorizer(Colorizer):
    def targets(self, inputs, heldout=None):
        return {"image": heldout["image"]}


def _evaluator(heldout, **kwargs):
    bundle = DataBundle(train=heldout, heldout=heldout, spec=DataSpec("image", (3, 8, 8)))
    return Evaluator(
        bundle, ModuleExtractor(nn.Flatten(), "pixels"), num_samples=12, batch_size=4, metrics=["fid", "l1", "psnr", "ssim"], **kwargs
    )


def test_the_evaluator_scores_a_familys_samples_against_its_targets_in_order():
    torch.manual_seed(0)
    heldout = colour_pairs(12, seed=3)
    family = PairedColorizer()
    with torch.no_grad():  # the exact map: grey ⊗ colour + 0.05, unclamped where it stays in range
        family.networks["colorizer"].weight.copy_(torch.tensor([0.9, -0.5, 0.2]).view(3, 1, 1, 1))
        family.networks["colorizer"].bias.fill_(0.05)
    evaluator = _evaluator(heldout)
    assert evaluator.metric_names(family) == ["FID/pixels", "L1/pixels", "PSNR/pixels", "SSIM/pixels"]
    metrics = evaluator.evaluate(evaluator.sample(family))
    direct = paired_scores(family.networks["colorizer"](heldout.fields["condition"]).detach(), heldout.fields["image"])
    assert metrics["L1/pixels"] == pytest.approx(direct["L1"]) and metrics["L1/pixels"] < 0.05
    assert metrics["SSIM/pixels"] == pytest.approx(direct["SSIM"])
    # a family without targets gets no paired metric, and a best metric needing one is refused
    plain = Colorizer()
    assert evaluator.metric_names(plain) == ["FID/pixels"]
    assert "L1/pixels" not in evaluator.evaluate(evaluator.sample(plain))
    cfg = type("Cfg", (), {"eval": {"best_metric": "PSNR"}})()
    assert best_metric_name(cfg, evaluator, family) == "PSNR/pixels"
    with pytest.raises(Exception, match="not a metric of this run"):
        best_metric_name(cfg, evaluator, plain)


def test_a_class_conditional_gan_is_scored_on_the_class_it_was_asked_for():
    from gantrain.families.gan import GANFamily
    from gantrain.losses import nonsaturating

    class Echo(nn.Module):  # "generates" the one-hot label as a 10-pixel image
        def __init__(self):
            super().__init__()
            self.unused = nn.Parameter(torch.zeros(1))

        def forward(self, z, label):
            return nn.functional.one_hot(label, 10).float().view(-1, 1, 1, 10)

    class Judge(nn.Module):
        pack = 1

        def forward(self, x, label):
            return x.flatten(1).sum(1)

    family = GANFamily("cgan", Echo(), Judge(), nonsaturating(), latent_dim=2, condition="label", num_classes=10)
    labels = torch.arange(20) % 10
    data = InMemory({"image": nn.functional.one_hot(labels, 10).float().view(-1, 1, 1, 10), "label": labels})
    bundle = DataBundle(train=data, heldout=data, spec=DataSpec("image", (1, 1, 10), num_classes=10))

    class Reader(ModuleExtractor):  # a "classifier" reading the class off the pixel that is lit
        predicts_dataset_classes = True

        def forward(self, images):
            return images.flatten(1), images.flatten(1)

    evaluator = Evaluator(bundle, Reader(nn.Identity(), "reader"), num_samples=20, batch_size=10, metrics=["class_accuracy"])
    assert evaluator.evaluate(evaluator.sample(family)) == {"class_accuracy/reader": 1.0}


def test_without_an_extractor_only_the_pixel_metrics_are_computed_and_psnr_picks_the_best_checkpoint():
    from gantrain.metrics.extractors import build_extractor

    assert build_extractor("none") is None and build_extractor(None) is None
    heldout = colour_pairs(12, seed=3)
    bundle = DataBundle(train=heldout, heldout=heldout, spec=DataSpec("image", (3, 8, 8)))
    evaluator = Evaluator(bundle, None, num_samples=12, batch_size=4)
    family = PairedColorizer()
    assert evaluator.metric_names(family) == ["L1/pixels", "PSNR/pixels", "SSIM/pixels"]
    samples = evaluator.sample(family)
    assert sorted(evaluator.evaluate(samples)) == ["L1/pixels", "PSNR/pixels", "SSIM/pixels"]
    assert evaluator.memorization(samples) == {}
    cfg = type("Cfg", (), {"eval": {"best_metric": None}})()
    assert best_metric_name(cfg, evaluator, family) == "PSNR/pixels"
    assert best_metric_name(cfg, evaluator, Colorizer()) is None  # nothing to pick by


def test_the_dataset_classifier_is_refused_for_attribute_domains_in_one_line():
    from gantrain.errors import ConfigError
    from gantrain.metrics.extractors import build_extractor

    data = InMemory({"image": torch.zeros(8, 3, 8, 8), "attributes": torch.ones(8, 3)})
    spec = DataSpec("image", (3, 8, 8), num_classes=3, fields={"image": (3, 8, 8), "attributes": (3,)})
    with pytest.raises(ConfigError, match="needs|class labels, but this dataset has none.*eval.features=inception.*none"):
        build_extractor("classifier", bundle=DataBundle(train=data, heldout=data, spec=spec))


def test_kid_of_exact_translations_is_near_zero_not_driven_negative_by_each_pair_s_likeness():
    """The unbiased MMD² assumes independent sets; translations paired row by row with their targets are not, and
    on the whole sets an exact translator scores far below zero. Disjoint halves give about 0."""
    from gantrain.metrics.scores import kernel_inception_distance

    torch.manual_seed(0)
    heldout = colour_pairs(64, seed=5)
    family = PairedColorizer()
    with torch.no_grad():
        family.networks["colorizer"].weight.copy_(torch.tensor([0.9, -0.5, 0.2]).view(3, 1, 1, 1))
        family.networks["colorizer"].bias.fill_(0.05)
    bundle = DataBundle(train=heldout, heldout=heldout, spec=DataSpec("image", (3, 8, 8)))
    evaluator = Evaluator(bundle, ModuleExtractor(nn.Flatten(), "pixels"), num_samples=64, batch_size=16, kid_subsets=20, metrics=["kid"])
    samples = evaluator.sample(family)
    kid = evaluator.evaluate(samples)["KID/pixels"]
    whole = kernel_inception_distance(heldout.fields["image"].flatten(1), samples.flatten(1), 20, 1000, 0)[0]
    assert whole < -10 * abs(kid)  # what the whole, paired sets would give
    assert abs(kid) < 0.05 * abs(whole)
