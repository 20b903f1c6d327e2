"""CycleGAN (Zhu et al. 2017): the official ResNet generator's size, the objective's terms against their closed forms,
the image history pool's rule, the identity loss's channel check, and exact resume of a run through its pools."""

from __future__ import annotations

import signal

import pytest
import torch
from torch import nn

from gantrain import checkpoint
from gantrain.cli import train
from gantrain.data import DataBundle, DataSpec, InMemory
from gantrain.errors import ConfigError
from gantrain.families.cyclegan import CycleGANFamily, ImagePool
from gantrain.losses import lsgan, lsgan_discriminator, lsgan_generator
from gantrain.metrics.evaluator import Evaluator
from gantrain.models.patchgan import PatchGAN
from gantrain.models.resnet_generator import ResnetGenerator
from gantrain.trainer import Interrupted, Trainer

TINY = [
    "model=cyclegan",
    "dataset=digit_domains",
    "dataset.image_size=16",
    "model.G_AB.width=4",
    "model.G_AB.blocks=1",
    "model.D_A.width=4",
    "model.D_A.n_layers=2",
    "trainer.batch_size=2",
    "trainer.log_every=1",
    "trainer.sample_every=3",
    "trainer.num_samples=4",
    "eval.num_samples=32",
    "eval.batch_size=32",
    "eval.kid_subset_size=8",
    "eval.kid_subsets=2",
    "eval.is_splits=2",
    "eval.classifier.epochs=1",
]


class Shift(nn.Module):
    def __init__(self, c: float):
        super().__init__()
        self.c = nn.Parameter(torch.tensor(c))

    def forward(self, x):
        return x + self.c


def make_family(g_ab=None, g_ba=None, channels_a=1, channels_b=1, size=16, pool_size=0, identity_weight=0.5):
    return CycleGANFamily(
        "cyclegan",
        g_ab if g_ab is not None else ResnetGenerator(channels_a, channels_b, 4, 1),
        g_ba if g_ba is not None else ResnetGenerator(channels_b, channels_a, 4, 1),
        PatchGAN(channels_a, 4, 2, "instance"),
        PatchGAN(channels_b, 4, 2, "instance"),
        lsgan(),
        channels_a,
        channels_b,
        size,
        identity_weight=identity_weight,
        pool_size=pool_size,
    )


def batch(n=3, channels=1, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        "source": torch.rand(n, channels, size, size, generator=g) * 2 - 1,
        "image": torch.rand(n, channels, size, size, generator=g) * 2 - 1,
    }


def test_resnet_9blocks_has_the_official_parameter_count_and_keeps_the_size():
    g = ResnetGenerator(3, 3, width=64, blocks=9, norm="instance")
    assert sum(p.numel() for p in g.parameters()) == 11_378_179
    out = ResnetGenerator(1, 3, width=4, blocks=2)(torch.randn(2, 1, 20, 20))
    assert out.shape == (2, 3, 20, 20) and out.abs().max() < 1
    with pytest.raises(ValueError, match="multiples of 4"):
        ResnetGenerator.check_size(18)


def test_identity_generators_make_the_cycle_and_identity_losses_exactly_zero():
    family = make_family(nn.Identity(), nn.Identity())
    loss, terms = family.loss("generator", batch(), 0)
    assert terms["loss/cycle"].item() == 0.0 and terms["loss/identity"].item() == 0.0
    assert loss.item() == pytest.approx(2.0 * terms["loss/G_adversarial"].item(), rel=1e-6)


def test_the_held_out_round_trip_l1_is_the_mean_cycle_error_of_g_ba_after_g_ab():
    """G_AB(x) = x + 0.1 and G_BA(y) = y + 0.2 move every held-out A image by exactly 0.3 there and back; identities by 0."""
    data = batch(n=10)
    bundle = DataBundle(
        InMemory(data), InMemory(data), DataSpec("image", (1, 16, 16), fields={"source": (1, 16, 16), "image": (1, 16, 16)})
    )
    evaluator = Evaluator(bundle, None, num_samples=10, batch_size=4)
    for g_ab, g_ba, error in ((Shift(0.1), Shift(0.2), 0.3), (nn.Identity(), nn.Identity(), 0.0)):
        family = make_family(g_ab, g_ba)
        assert "L1/round_trip" in evaluator.metric_names(family)
        with torch.no_grad():
            metrics = evaluator.evaluate(evaluator.sample(family))
        assert metrics["L1/round_trip"] == pytest.approx(error, abs=1e-6)


def test_generator_and_discriminator_losses_are_eqs_1_to_3_with_the_identity_term_and_d_on_the_generators_fakes():
    """G_AB(x) = x + 0.1, G_BA = identity: cycle = |0.1| + |0.1|, identity = |0.1| + 0; weights λ 10, 0.5λ, GAN 2."""
    family = make_family(Shift(0.1), nn.Identity())
    x = batch()
    a, b = x["source"], x["image"]
    loss, terms = family.loss("generator", x, 0)
    d_a, d_b = family.networks["D_A"], family.networks["D_B"]
    adversarial = lsgan_generator(d_b(a + 0.1)) + lsgan_generator(d_a(b))
    assert terms["loss/cycle"].item() == pytest.approx(0.2, abs=1e-6)
    assert terms["loss/identity"].item() == pytest.approx(0.1, abs=1e-6)
    assert loss.item() == pytest.approx(2 * adversarial.item() + 10 * 0.2 + 5 * 0.1, rel=1e-5)
    loss.backward()
    assert all(p.grad is None for p in [*d_a.parameters(), *d_b.parameters()])  # D frozen in G's phase
    # D's phase takes no batch: it judges the fakes of G's phase against the same real images (pool of 0)
    d_loss, d_terms = family.loss("discriminator", {}, 0)
    with torch.no_grad():
        expected_b = lsgan_discriminator(d_b(b), d_b(a + 0.1))
        expected_a = lsgan_discriminator(d_a(a), d_a(b))
    assert d_terms["loss/D_B"].item() == pytest.approx(expected_b.item(), rel=1e-6)
    assert d_loss.item() == pytest.approx((expected_a + expected_b).item(), rel=1e-6)
    assert torch.isnan(family.loss("discriminator", {}, 0)[0])  # no generator update to judge: skipped


def test_with_accumulated_micro_batches_each_discriminator_micro_batch_judges_its_generator_micro_batch():
    family = make_family(Shift(0.1), nn.Identity())
    batches = [batch(seed=1), batch(seed=2)]
    for x in batches:  # trainer.accumulate=2: G's two micro-batches, then D's two
        family.loss("generator", x, 5)
    d_b = family.networks["D_B"]
    for x in batches:
        with torch.no_grad():
            expected = lsgan_discriminator(d_b(x["image"]), d_b(x["source"] + 0.1))
        assert family.loss("discriminator", {}, 5)[1]["loss/D_B"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_identity_loss_is_refused_between_grey_and_colour_domains_unless_turned_off():
    with pytest.raises(ConfigError, match=r"model.identity_weight=0.5.*A has 1 channel\(s\) and B 3; set model.identity_weight=0"):
        make_family(channels_a=1, channels_b=3)
    family = make_family(channels_a=1, channels_b=3, identity_weight=0.0)
    x = {"source": torch.rand(2, 1, 16, 16), "image": torch.rand(2, 3, 16, 16)}
    assert family.loss("generator", x, 0)[1]["loss/identity"].item() == 0.0
    assert family.translate(x["image"], direction="BtoA").shape == (2, 1, 16, 16)
    with pytest.raises(ConfigError, match="AtoB takes images of 1 channel"):
        family.translate(x["image"])


def test_a_discriminator_with_no_patch_at_the_image_size_is_refused():
    with pytest.raises(ValueError, match="model.D_A leaves no patch at 16 px"):
        CycleGANFamily("cyclegan", nn.Identity(), nn.Identity(), PatchGAN(1, 4, 3), PatchGAN(1, 4, 2), lsgan(), 1, 1, 16)


def test_a_pool_of_size_zero_returns_its_input_and_below_capacity_returns_and_stores_it():
    x = torch.randn(4, 1, 2, 2)
    assert ImagePool(0, (1, 2, 2))(x) is x
    pool = ImagePool(6, (1, 2, 2))
    assert torch.equal(pool(x), x) and int(pool.count) == 4 and torch.equal(pool.images[:4], x)
    y = torch.randn(4, 1, 2, 2)  # 2 fill the pool (returned), 2 meet a full one
    out = pool(y)
    assert torch.equal(out[:2], y[:2]) and torch.equal(pool.images[4:], y[:2])


def test_a_full_pool_returns_the_query_or_a_stored_image_which_it_then_replaces_half_of_the_time():
    torch.manual_seed(0)
    size, queries = 10, 2000
    pool = ImagePool(size, (1, 1, 1))
    stored = [float(k) for k in range(size)]
    pool(torch.tensor(stored).view(size, 1, 1, 1))
    replaced = 0
    for t in range(queries):
        new = 100.0 + t
        out = float(pool(torch.tensor([[[[new]]]])))
        if out != new:
            assert out in stored  # an image stored before this query, now swapped for the new one
            stored[stored.index(out)] = new
            replaced += 1
        assert sorted(stored) == sorted(pool.images.flatten().tolist())
    assert 0.45 < replaced / queries < 0.55


def test_interrupted_and_resumed_run_equals_an_uninterrupted_one_pools_included_and_evaluates_translations(compose, tmp_path, monkeypatch):
    common = [*TINY, "model.pool_size=3", "trainer.steps=6", "trainer.checkpoint_every=3", "trainer.eval_every=6"]
    logs = train(compose(common), tmp_path / "full")
    assert {"class_accuracy/classifier", "L1/pixels", "PSNR/pixels", "SSIM/pixels", "L1/round_trip"} <= set(logs)
    assert (tmp_path / "full" / "samples" / "translation_step_0000006.png").is_file()

    step = Trainer.train_step

    def stop_after_three(self, measure=False):
        out = step(self, measure)
        if self.step == 3:
            self.signals.received = signal.SIGINT
        return out

    monkeypatch.setattr(Trainer, "train_step", stop_after_three)
    with pytest.raises(Interrupted):
        train(compose(common), tmp_path / "part")
    at_three = checkpoint.load(tmp_path / "part" / "checkpoints" / "last.pt")["networks"]
    monkeypatch.undo()
    train(compose([f"resume={tmp_path / 'part'}"]), tmp_path / "part", overrides=[])
    full = checkpoint.load(tmp_path / "full" / "checkpoints" / "last.pt")["networks"]
    part = checkpoint.load(tmp_path / "part" / "checkpoints" / "last.pt")["networks"]
    assert full.keys() == part.keys() and {"pools.A.images", "pools.B.count"} <= set(full)
    assert all(torch.equal(full[k], part[k]) for k in full)
    assert int(at_three["pools.B.count"]) == 3 and not torch.equal(at_three["pools.B.images"], full["pools.B.images"])


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["regularizer=r1"], r"model=cyclegan takes no regularizers \(regularizer=r1 given\)"),
        (["loss=relativistic"], "generator term reads D on real images"),
        (["model.D_A.n_layers=3"], "model.D_A leaves no patch at 16 px"),
        (["dataset.image_size=18"], "multiples of 4 from 8 px"),
        (["dataset.domain_b=tinted"], r"thin → tinted have 3 channel\(s\)"),
    ],
)
def test_impossible_settings_are_refused_in_one_line_before_training(compose, tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message) as err:
        train(compose([*TINY, "trainer.steps=1", "trainer.eval_every=0", *overrides]), tmp_path)
    assert "\n" not in str(err.value) and not (tmp_path / "checkpoints").exists()
    with pytest.raises(ConfigError, match="trainer.d_steps=2: CycleGAN updates D once on the fakes of each generator update"):
        make_family().phases(2)
