"""The one loop: k discriminator updates per generator update, fresh batches, logging, resume, previews."""

from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gantrain import checkpoint
from gantrain.cli import build_data, build_family, build_optimizers, train
from gantrain.data import BatchStream
from gantrain.errors import ConfigError
from gantrain.trainer import Trainer

from conftest import counting_steps, perturbed_copy


def build(cfg):
    """The data (first: it fills what the model reads of it) and the family of a composed config."""
    return build_data(cfg), build_family(cfg)


SMALL_MLP = ["model=mlp", "dataset=grid25", "dataset.source.n=2000", "model.generator.hidden=[32,32]", "model.discriminator.hidden=[32,32]"]


def test_each_step_runs_k_discriminator_updates_then_one_generator_update(compose, tmp_path):
    cfg = compose(SMALL_MLP + ["trainer.d_steps=3"])
    bundle, family = build(cfg)
    optimizers = build_optimizers(cfg, family, 3)
    order = []
    for name, opt in optimizers.items():
        opt.register_step_post_hook(lambda *_, name=name: order.append(name))
    stream = BatchStream(bundle.train, 16, seed=0)
    trainer = Trainer(
        family,
        stream,
        optimizers,
        tmp_path,
        steps=4,
        d_steps=3,
        log_every=2,
        sample_every=100,
        checkpoint_every=100,
        num_samples=16,
        heldout={"image": torch.zeros(16, 2)},
    )
    seen = []
    real_loss = family.loss
    family.loss = lambda phase, batch, step: (seen.append(batch["image"].sum().item()), real_loss(phase, batch, step))[1]
    trainer.fit()
    assert order == (["discriminator"] * 3 + ["generator"]) * 4
    assert stream.consumed == 16 and len(set(seen)) == 16  # a fresh batch for every update


def _final_networks(run_dir: Path) -> dict:
    return checkpoint.load(run_dir / "checkpoints" / "last.pt")["networks"]


@pytest.mark.parametrize("model", ["dcgan", "mlp"])
def test_resume_equals_an_uninterrupted_run_parameter_for_parameter(compose, tmp_path, model):
    common = [
        f"model={model}",
        "trainer.batch_size=16",
        "trainer.log_every=2",
        "trainer.sample_every=3",
        "trainer.checkpoint_every=3",
        "trainer.num_samples=16",
        "trainer.ema=0.9",
    ]
    if model == "dcgan":
        common += ["model.generator.width=8", "model.discriminator.width=8"]
    train(compose(common + ["trainer.steps=6"]), tmp_path / "full")
    train(compose(common + ["trainer.steps=3"]), tmp_path / "part")
    weight = perturbed_copy(tmp_path / "part", tmp_path / "perturbed")
    for run, extra in (("part", []), ("perturbed", ["trainer.eval_every=0"])):  # no metrics of the perturbed end
        overrides = ["trainer.steps=6", "override_resume=true", *extra]
        with counting_steps() as taken:
            train(compose([f"resume={tmp_path / run}", *overrides]), tmp_path / run, overrides=overrides)
        assert taken == [3, 4, 5]  # the resumed leg: steps 3…5 only
    full, part = _final_networks(tmp_path / "full"), _final_networks(tmp_path / "part")
    assert full.keys() == part.keys()
    for key in full:
        assert torch.equal(full[key], part[key]), key
    ema_full = checkpoint.load(tmp_path / "full" / "checkpoints" / "last.pt")["ema"]
    ema_part = checkpoint.load(tmp_path / "part" / "checkpoints" / "last.pt")["ema"]
    assert all(torch.equal(ema_full[k], ema_part[k]) for k in ema_full)
    assert not torch.equal(_final_networks(tmp_path / "perturbed")[weight], full[weight])  # it continued the checkpoint


def test_resume_refuses_silent_config_changes(compose, tmp_path, quick):
    train(compose(SMALL_MLP + quick), tmp_path / "run")
    with pytest.raises(ConfigError, match=r"trainer.steps: 2 -> 5.*override_resume=true"):
        train(compose([f"resume={tmp_path / 'run'}", "trainer.steps=5"]), tmp_path / "run", ["trainer.steps=5"])
    with pytest.raises(ConfigError, match="cannot switch model"):
        train(compose([f"resume={tmp_path / 'run'}", "model=dcgan"]), tmp_path / "run", ["model=dcgan"])
    with pytest.raises(ConfigError, match="not a gantrain run directory"):
        train(compose([f"resume={tmp_path}"]), tmp_path, [])


def test_a_new_run_never_reuses_a_run_directory(compose, tmp_path, quick):
    train(compose(SMALL_MLP + quick), tmp_path / "run")
    before = (tmp_path / "run" / "checkpoints" / "last.pt").read_bytes()
    with pytest.raises(ConfigError, match="already holds a run"):
        train(compose(SMALL_MLP + quick), tmp_path / "run")
    assert (tmp_path / "run" / "checkpoints" / "last.pt").read_bytes() == before


def test_tensorboard_scalars_samples_and_checkpoint(compose, tmp_path):
    cfg = compose(
        [
            "model.generator.width=8",
            "model.discriminator.width=8",
            "trainer.steps=4",
            "trainer.log_every=2",
            "trainer.sample_every=2",
            "trainer.batch_size=16",
        ]
    )
    train(cfg, tmp_path)
    events = EventAccumulator(str(tmp_path)).Reload()
    tags = set(events.Tags()["scalars"])
    expected = {
        "loss/D",
        "loss/G",
        "D/real",
        "D/fake",
        "grad_norm/discriminator",
        "grad_norm/generator",
        "lr/discriminator",
        "lr/generator",
        "speed/images_per_s",
    }
    assert expected <= tags
    assert [e.step for e in events.Scalars("loss/D")] == [1, 2, 4]  # the first step, then every log_every
    assert "samples" in events.Tags()["images"]
    assert sorted(p.name for p in (tmp_path / "samples").glob("step_*")) == ["step_0000002.png", "step_0000004.png"]
    state = checkpoint.load(tmp_path / "checkpoints" / "last.pt")
    assert state["step"] == 4 and "model:" in state["config"] and set(state["optimizers"]) == {"discriminator", "generator"}


def test_points_preview_is_a_scatter_plot(compose, tmp_path):
    from PIL import Image

    train(compose(SMALL_MLP + ["trainer.steps=2", "trainer.sample_every=2"]), tmp_path)
    image = Image.open(tmp_path / "samples" / "step_0000002.png")
    assert image.size == (400, 400)  # the 4×4 in, 100 dpi matplotlib figure


def test_conditional_preview_grid_has_one_column_per_class(compose, tmp_path):
    cfg = compose(
        [
            "model=acgan",
            "model.generator.width=8",
            "model.discriminator.width=8",
            "trainer.steps=1",
            "trainer.batch_size=16",
            "trainer.num_samples=20",
        ]
    )
    _, family = build(cfg)
    inputs = family.fixed_inputs(20, torch.Generator().manual_seed(0))
    assert inputs["label"].tolist() == [i % 10 for i in range(20)]


def test_learning_rates_per_network(compose):
    cfg = compose(SMALL_MLP + ["optimizer.lr=1e-3", "optimizer.lr_d=4e-3"])
    optimizers = build_optimizers(cfg, build(cfg)[1], 1)
    assert optimizers["discriminator"].param_groups[0]["lr"] == 4e-3
    assert optimizers["generator"].param_groups[0]["lr"] == 1e-3
    assert optimizers["generator"].param_groups[0]["betas"] == (0.5, 0.999)


def test_same_seed_same_run(compose, tmp_path, quick):
    for name in ("a", "b"):
        train(compose(SMALL_MLP + quick), tmp_path / name)
    a, b = _final_networks(tmp_path / "a"), _final_networks(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_ema_warms_up_then_follows_its_decay():
    from torch.optim.swa_utils import AveragedModel

    from gantrain.loop.update import ema_with_warmup

    net = torch.nn.Linear(1, 1, bias=False)
    ema = AveragedModel(net, multi_avg_fn=ema_with_warmup(0.99), use_buffers=True)
    expected = None
    for n in range(200):
        with torch.no_grad():
            net.weight.fill_(float(n))
        ema.update_parameters(net)
        if n == 0:
            expected = 0.0  # the first update copies the weights
        else:
            d = min(0.99, (1 + n) / (10 + n))  # n earlier updates averaged
            expected = d * expected + (1 - d) * n
        assert ema.module.weight.item() == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_previews_and_the_feature_classifier_leave_the_training_rng_untouched(compose, tmp_path):
    """Previews and metrics happen at steps that differ between a resumed and an uninterrupted run; they must
    not shift the random streams training draws from (else resuming would not be exact)."""
    from gantrain.metrics.classifier import train_classifier

    cfg = compose(SMALL_MLP + ["trainer.batch_size=16"])
    bundle, family = build(cfg)
    trainer = Trainer(
        family,
        BatchStream(bundle.train, 16, seed=0),
        build_optimizers(cfg, family, 1),
        tmp_path,
        steps=1,
        num_samples=16,
        heldout={"image": torch.zeros(16, 2)},
    )
    generate = family.generate
    family.generate = lambda inputs, net=None: generate(inputs, net) + 0 * torch.randn(1)  # a sampler that draws noise
    state = torch.get_rng_state()
    trainer.preview()
    assert torch.equal(state, torch.get_rng_state())
    digits = build_data(compose(["trainer.batch_size=16"]))
    settings = dict(seed=0, width=4, feature_dim=8, dropout=0.0, lr=1e-3, weight_decay=0.0, batch_size=64, epochs=1)
    train_classifier(digits, settings, "cpu")
    assert torch.equal(state, torch.get_rng_state())


@pytest.mark.parametrize("prior,low,high,var", [("normal", -float("inf"), float("inf"), 1.0), ("uniform", -1.0, 1.0, 1 / 3)])
def test_latent_prior_draws_and_fixed_inputs(compose, prior, low, high, var):
    """model.latent: N(0, I) or U[−1, 1]^d (variance 1/3), both in training draws and in the fixed preview noise."""
    family = build_family(compose(["model=mlp", "dataset=grid25", f"model.latent={prior}", "model.latent_dim=8"]))
    z = family.sample_latent(40_000)
    assert z.shape == (40_000, 8) and low <= z.min() and z.max() <= high
    assert z.mean().abs() < 0.01 and abs(z.var() - var) < 0.01 * var
    fixed = family.fixed_inputs(16, torch.Generator().manual_seed(3))["z"]
    assert torch.equal(fixed, family.fixed_inputs(16, torch.Generator().manual_seed(3))["z"])
    assert low <= fixed.min() and fixed.max() <= high


def test_categorical_code_is_one_hot_uniform_and_leaves_the_rest_continuous(compose):
    """model.latent_categories=K: z = [one-hot(c), noise] with c uniform on K categories (InfoGAN's code c)."""
    family = build_family(compose(["model=mlp", "dataset=grid25", "model.latent_dim=12", "model.latent_categories=10"]))
    z = family.sample_latent(50_000)
    code, noise = z[:, :10], z[:, 10:]
    assert z.shape == (50_000, 12) and set(code.unique().tolist()) == {0.0, 1.0} and torch.equal(code.sum(1), torch.ones(50_000))
    frequencies = code.mean(0)
    assert (frequencies - 0.1).abs().max() < 4 * (0.1 * 0.9 / 50_000) ** 0.5
    assert noise.mean().abs() < 0.02 and abs(noise.var() - 1) < 0.02
    fixed = family.fixed_inputs(8, torch.Generator().manual_seed(0))["z"]
    assert torch.equal(fixed, family.fixed_inputs(8, torch.Generator().manual_seed(0))["z"])
    assert torch.equal(fixed[:, :10].sum(1), torch.ones(8))


@pytest.mark.parametrize(
    "override,message",
    [
        ("model.latent=cauchy", "model.latent='cauchy' must be normal or uniform"),
        ("model.latent_categories=65", r"model.latent_categories=65 must be 0 \(none\) or 2 to model.latent_dim=64"),
        ("model.latent_categories=1", r"model.latent_categories=1 must be 0 \(none\) or 2"),
    ],
)
def test_bad_latent_settings_are_refused(compose, override, message):
    with pytest.raises(ConfigError, match=message):
        build_family(compose(["model=mlp", "dataset=grid25", override]))


@pytest.mark.parametrize("clip", [0.0, 1e-3])
def test_grad_clip_bounds_every_update_to_the_clipped_gradient(compose, tmp_path, monkeypatch, clip):
    """trainer.grad_clip=c: with plain SGD at lr 1, each update moves a network by exactly its gradient's global
    norm ‖g‖ rescaled to min(‖g‖, c); the logged grad_norm is ‖g‖ before clipping."""
    cfg = compose(SMALL_MLP + ["optimizer=sgd", "optimizer.lr=1.0", "optimizer.momentum=0"])
    bundle, family = build(cfg)
    optimizers = build_optimizers(cfg, family, 1)
    norms, moves, before = [], [], []
    clip_grad_norm = torch.nn.utils.clip_grad_norm_
    monkeypatch.setattr(
        torch.nn.utils, "clip_grad_norm_", lambda *a, **k: norms.append(clip_grad_norm(*a, **k).item()) or torch.tensor(norms[-1])
    )
    for opt in optimizers.values():
        params = [p for g in opt.param_groups for p in g["params"]]
        opt.register_step_pre_hook(lambda *_, params=params: before.__setitem__(slice(None), [p.detach().clone() for p in params]))
        opt.register_step_post_hook(
            lambda *_, params=params: moves.append(
                torch.linalg.vector_norm(torch.stack([(p - b).norm() for p, b in zip(params, before)])).item()
            )
        )
    trainer = Trainer(
        family,
        BatchStream(bundle.train, 16, seed=0),
        optimizers,
        tmp_path,
        steps=3,
        log_every=1,
        sample_every=100,
        checkpoint_every=100,
        num_samples=16,
        heldout={"image": torch.zeros(16, 2)},
        grad_clip=clip,
    )
    trainer.fit()
    assert len(moves) == len(norms) == 6 and min(norms) > 1e-3  # the clip binds on every update of this test
    for move, norm in zip(moves, norms):
        assert move == pytest.approx(min(norm, clip) if clip else norm, rel=1e-4)
    assert trainer.last_logs["grad_norm/generator"] == pytest.approx(norms[-1])
