"""StarGAN (Choi et al. 2018): the official networks' parameter counts and shapes, each loss term against the
paper's equations computed by hand, target domains as a permutation of the batch's, and training from the CLI."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from gantrain.cli import train
from gantrain.data import DataBundle, DataSpec, InMemory
from gantrain.errors import ConfigError
from gantrain.families.stargan import StarGANFamily
from gantrain.metrics.evaluator import Evaluator
from gantrain.models.outputs import DiscriminatorOutput
from gantrain.models.stargan import Discriminator, Generator

from conftest import assert_three_plus_three_equals_six, grouped

K = 4


def tiny_family(channels=3, size=8, k=K, **options) -> StarGANFamily:
    generator = Generator(channels, k, width=4, res_blocks=1, image_size=size)
    return StarGANFamily(generator, Discriminator(channels, size, k, width=4, repeat_num=None), k, **options)


def batch(n=6, channels=3, size=8, attributes=False):
    g = torch.Generator().manual_seed(1)
    out = {"image": torch.rand(n, channels, size, size, generator=g) * 2 - 1}
    if attributes:
        out["attributes"] = torch.randint(2, (n, K), generator=g).float()
    else:
        out["label"] = torch.arange(n) % K
    return out


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_the_official_networks_have_the_official_parameter_counts_and_output_shapes():
    # printed by the official code (print_network) for CelebA's 5 attributes at 128 px, 64 filters, 6 blocks / 6 convs
    assert count(Generator(3, 5, width=64, res_blocks=6)) == 8_430_528
    assert count(Discriminator(3, 128, 5, width=64, repeat_num=6)) == 44_762_048
    g, d = Generator(3, 5, width=64, res_blocks=6), Discriminator(3, 128, 5, width=64, repeat_num=None)
    assert count(d) == 44_762_048  # repeat_num=None halves 128 px down to 2×2, as the official 6
    assert all(m.affine and m.track_running_stats for m in g.modules() if isinstance(m, nn.InstanceNorm2d))
    assert not any(m.bias is not None for m in g.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)))
    small = Discriminator(3, 32, 5, width=8, repeat_num=None)
    out = small(torch.zeros(2, 3, 32, 32))
    assert out.adversarial.shape == (2, 1, 2, 2) and out.classes.shape == (2, 5)  # 4 halvings: a 2×2 PatchGAN map
    assert Generator(1, 5, width=4, res_blocks=1)(torch.zeros(2, 1, 32, 32), torch.eye(5)[:2]).shape == (2, 1, 32, 32)
    with pytest.raises(ValueError, match="image_size=32 is not divisible by 2\\^6; use a repeat_num of 1 to 5"):
        Discriminator(3, 32, 5, repeat_num=6)
    with pytest.raises(ValueError, match="size divisible by 4"):
        Generator(3, 5, image_size=30)
    with pytest.raises(ValueError, match="StarGAN translates images, but this dataset gives points"):
        Discriminator(None, None, 5)
    with pytest.raises(ValueError, match="num_domains=0: the data needs domain labels or attributes"):
        Generator(3, 0)


def test_eval_mode_normalizes_each_image_by_its_own_statistics_as_the_official_sampling_does():
    torch.manual_seed(0)
    g = Generator(3, K, width=4, res_blocks=1)
    x, c = torch.randn(3, 3, 8, 8), torch.eye(K)[:3]
    g(x * 5 + 2, c)  # moves the running statistics away from the batch's
    with torch.no_grad():
        trained = g(x, c)
        g.eval()
        assert torch.allclose(g(x, c), trained, atol=1e-6)
        for m in g.modules():
            m.eval_running_stats = True
        assert not torch.allclose(g(x, c), trained, atol=1e-3)


def test_the_reconstruction_term_is_x_against_g_of_g_x_target_with_the_original_domains():
    torch.manual_seed(0)
    family = tiny_family()
    x, original = batch()["image"], batch()["label"]
    target = (original + 1) % K
    fake, term = family.reconstruction(x, original, target)
    g = family.networks["generator"].main

    def by_hand(image, domains):  # the one-hot domains tiled over the image, concatenated as channels
        tiled = torch.zeros(len(image), K, 8, 8)
        tiled[torch.arange(len(image)), domains] = 1.0
        return g(torch.cat([image, tiled], 1))

    assert torch.allclose(fake, by_hand(x, target))
    assert torch.allclose(term, (x - by_hand(by_hand(x, target), original)).abs().mean())
    assert not torch.allclose(term, (x - by_hand(by_hand(x, target), target)).abs().mean())
    other = Generator(3, K, width=4, res_blocks=1).eval()  # e.g. the EMA copy: the held-out reconstruction L1
    one_hot = lambda d: F.one_hot(d, K).float()  # noqa: E731
    assert torch.allclose(
        family.reconstruction(x, original, target, other)[1], (x - other(other(x, one_hot(target)), one_hot(original))).abs().mean()
    )


def test_the_generator_loss_is_adversarial_plus_classification_plus_ten_times_reconstruction(monkeypatch):
    torch.manual_seed(0)
    family = tiny_family()
    data = batch()
    target = data["label"].flip(0)
    monkeypatch.setattr(StarGANFamily, "target_domains", staticmethod(lambda domains: domains.flip(0)))
    loss, logs = family.loss("generator", data, 0)
    g, x = family.networks["generator"], data["image"]
    fake = g(x, F.one_hot(target, K).float())
    rec = (x - g(fake, F.one_hot(data["label"], K).float())).abs().mean()
    on_fake = family.networks["discriminator"](fake)
    expected = -on_fake.adversarial.mean() + F.cross_entropy(on_fake.classes, target) + 10.0 * rec
    assert torch.allclose(loss, expected) and torch.allclose(logs["loss/G_rec"], rec)


@pytest.mark.parametrize("attributes", [False, True])
def test_target_domains_are_a_permutation_of_the_batchs_domains(attributes):
    family = tiny_family()
    data = batch(8, attributes=attributes)
    own = family.condition(family.batch_domains(data))
    seen = []
    family.networks["generator"].register_forward_hook(lambda module, args, out: seen.append(args[1].clone()))
    for _ in range(5):
        family.loss("discriminator", data, 0)
    assert len(seen) == 5
    for c in seen:  # the rows of the batch's own conditions, reordered
        assert sorted(map(tuple, c.tolist())) == sorted(map(tuple, own.tolist()))
    assert any(not torch.equal(c, own) for c in seen)


@pytest.mark.parametrize("attributes", [False, True])
def test_the_critic_classifies_real_images_with_cross_entropy_for_labels_and_summed_bce_for_attributes(attributes):
    torch.manual_seed(0)
    family = tiny_family()
    data = batch(attributes=attributes)
    _, logs = family.loss("discriminator", data, 0)
    logits = family.networks["discriminator"](data["image"]).classes
    if attributes:
        expected = F.binary_cross_entropy_with_logits(logits, data["attributes"], reduction="none").sum(1).mean()
    else:
        expected = F.cross_entropy(logits, data["label"])
    assert torch.allclose(logs["loss/D_cls"], expected)


class LinearCritic(nn.Module):
    """D_src(x) = ⟨w, x⟩ with a chosen ‖w‖ (its gradient has that norm everywhere); a class head that is not."""

    num_domains = K

    def __init__(self, norm: float):
        super().__init__()
        w = torch.randn(3 * 8 * 8)
        self.w = nn.Parameter(norm * w / w.norm())
        self.head = nn.Linear(3 * 8 * 8, K)

    def forward(self, x):
        flat = x.flatten(1)
        return DiscriminatorOutput((flat @ self.w)[:, None], 3 * self.head(flat.pow(3)))


@pytest.mark.parametrize("norm, penalty", [(1.0, 0.0), (2.0, 10.0), (0.5, 2.5)])
def test_the_gradient_penalty_is_lambda_times_the_squared_excess_of_the_source_heads_gradient_norm(norm, penalty):
    torch.manual_seed(0)
    family = StarGANFamily(Generator(3, K, width=4, res_blocks=1), LinearCritic(norm), K)
    loss, logs = family.loss("discriminator", batch(), 0)
    assert logs["penalty/gradient_penalty"].item() == pytest.approx(penalty, abs=1e-4)
    assert torch.allclose(loss, logs["loss/D"] + logs["loss/D_cls"] + logs["penalty/gradient_penalty"])
    assert logs["loss/D"] == pytest.approx((logs["D/fake"] - logs["D/real"]).item(), abs=1e-6)


def test_held_out_inputs_targets_previews_and_translate():
    family = tiny_family().eval()
    g = torch.Generator().manual_seed(0)
    data = batch()
    paired = {**data, "source": -data["image"], "source_label": (data["label"] + 1) % K}
    inputs = family.fixed_inputs(6, g, paired)
    assert torch.equal(inputs["source"], paired["source"]) and torch.equal(inputs["domain"].argmax(1), data["label"])
    targets = family.targets(inputs, paired)
    assert torch.equal(targets["image"], data["image"]) and torch.equal(targets["label"], data["label"])
    unpaired = family.fixed_inputs(6, g, data)  # a folder's held-out images go to another domain
    assert (unpaired["domain"].argmax(1) != data["label"]).all() and "image" not in family.targets(unpaired, data)
    flipped = family.fixed_inputs(6, g, batch(attributes=True))
    assert ((flipped["domain"] - batch(attributes=True)["attributes"]).abs().sum(1) == 1).all()
    with torch.no_grad():
        preview = family.previews(family.networks["generator"], inputs, paired)["translation"]
        assert list(preview.column_labels[: K + 1]) == ["input", *(f"domain {k}" for k in range(K))]
        row = grouped(preview)  # sample × (input, domain 0 … K−1)
        assert row.shape == (6, K + 1, 3, 8, 8)
        assert torch.equal(row[:, 0], paired["source"])
        assert torch.allclose(row[:, 3], family.translate(paired["source"], domain=2))
    with pytest.raises(ValueError, match="domains 0 to 3"):
        family.translate(paired["source"], domain=4)


class DomainShift(nn.Module):
    """G(x, c) = x + 0.1·(index of c's domain): a round trip moves x by exactly 0.1·(target + origin)."""

    num_domains = K

    def forward(self, x, c):
        return x + 0.1 * (c @ torch.arange(K, dtype=c.dtype)).view(-1, 1, 1, 1)


def test_the_held_out_round_trip_l1_is_x_against_g_of_g_x_target_with_its_own_domain():
    data = batch(n=10)
    paired = {**data, "source": -data["image"], "source_label": (data["label"] + 1) % K}
    spec = DataSpec("image", (3, 8, 8), K, fields={"image": (3, 8, 8), "label": (), "source": (3, 8, 8), "source_label": ()})
    evaluator = Evaluator(DataBundle(InMemory(paired), InMemory(paired), spec), None, num_samples=10, batch_size=4)
    family = tiny_family()
    family.networks["generator"] = DomainShift()
    assert "L1/round_trip" in evaluator.metric_names(family)
    with torch.no_grad():
        metrics = evaluator.evaluate(evaluator.sample(family))
    expected = (0.1 * (paired["label"] + paired["source_label"]).float()).mean().item()
    assert metrics["L1/round_trip"] == pytest.approx(expected, abs=1e-6)


# ------------------------------------------------------------------------------------------ from the command line
TINY = [
    "model=stargan",
    "dataset=digit_styles",
    "dataset.image_size=8",
    "model.generator.width=4",
    "model.generator.res_blocks=1",
    "model.discriminator.width=4",
    "trainer.batch_size=8",
    "trainer.num_samples=4",
    "trainer.log_every=1",
]
EVAL = ["eval.num_samples=16", "eval.batch_size=16", "eval.kid_subset_size=8", "eval.kid_subsets=2", "eval.classifier.epochs=1"]


def test_gantrain_model_stargan_dataset_digit_styles_trains_with_eval(compose, tmp_path):
    cfg = compose(TINY + ["trainer.steps=2", "trainer.sample_every=2", "trainer.eval_every=2", "trainer.checkpoint_every=2"] + EVAL)
    assert (cfg.trainer.d_steps, cfg.optimizer.lr, list(cfg.optimizer.betas)) == (5, 1e-4, [0.5, 0.999])
    logs = train(cfg, tmp_path / "run")
    assert {"class_accuracy/classifier", "L1/pixels", "PSNR/pixels", "SSIM/pixels", "FID/classifier", "L1/round_trip"} <= set(logs)
    assert {"loss/G_rec", "loss/G_cls", "loss/D_cls", "penalty/gradient_penalty"} <= set(logs)
    from gantrain.visualize import GAP, GROUP_GAP, Grid, layout

    preview = Image.open(tmp_path / "run" / "samples" / "translation_step_0000002.png")
    # 4 groups of input + 5 domains, two groups a row, 8-px images drawn at 64 px, the groups 12 px apart
    assert preview.size[0] == GAP + 12 * (64 + GAP) + (GROUP_GAP - GAP)
    at = layout(Grid.of_groups([torch.zeros(4, 3, 8, 8)] * 6, ["input", *(f"domain {k}" for k in range(5))]))
    assert preview.size == (at.width, at.height) and at.top[1] - at.top[0] == 64 + GAP


def test_resume_after_three_steps_equals_six_uninterrupted_steps(tmp_path):
    assert_three_plus_three_equals_six(TINY + ["trainer.lr_decay_start=1.0"], tmp_path)


def test_networks_that_do_not_fit_the_data_are_refused_in_one_line(compose, tmp_path):
    with pytest.raises(ConfigError, match="repeat_num=4.*image_size=8 is not divisible by 2\\^4"):
        train(compose(TINY + ["trainer.steps=1", "trainer.eval_every=0", "model.discriminator.repeat_num=4"]), tmp_path / "a")
    with pytest.raises(ConfigError, match="stargan has its own gradient penalty .* leave out regularizer=r1"):
        train(compose(TINY + ["trainer.steps=1", "trainer.eval_every=0", "regularizer=r1"]), tmp_path / "b")
    with pytest.raises(ValueError, match="networks are built for"):
        StarGANFamily(Generator(3, 3, width=4, res_blocks=1), Discriminator(3, 8, 4, width=4, repeat_num=None), 4)
