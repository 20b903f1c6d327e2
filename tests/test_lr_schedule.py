"""trainer.lr_decay_start / lr_decay_final: every optimizer's learning rate follows the linear decay, and a
resumed run continues the schedule (and the training) exactly where it stopped."""

import pytest
import torch

from gantrain import checkpoint
from gantrain.cli import build_data, build_family, build_optimizers, seed_everything, train
from gantrain.data import BatchStream
from gantrain.errors import ConfigError
from gantrain.loop.update import linear_decay
from gantrain.trainer import Trainer

from conftest import counting_steps, perturbed_copy

SMALL_MLP = [
    "model=mlp",
    "dataset=grid25",
    "dataset.source.n=2000",
    "optimizer.lr=1e-3",
    "model.generator.hidden=[16,16]",
    "model.discriminator.hidden=[16,16]",
]


def test_linear_decay_is_constant_then_linear_to_the_final_factor():
    factor = linear_decay(10, start=0.6, final=0.1)
    assert [factor(n) for n in range(7)] == [1.0] * 7
    assert [factor(n) for n in range(6, 11)] == pytest.approx([1.0, 0.775, 0.55, 0.325, 0.1])
    assert factor(12) == pytest.approx(0.1)
    assert all(linear_decay(10, 1.0, 0.0)(n) == 1.0 for n in range(11))  # start = 1: no decay


def _trainer(cfg, run_dir, steps):
    seed_everything(cfg.seed)
    bundle = build_data(cfg)
    family = build_family(cfg)
    return Trainer(
        family,
        BatchStream(bundle.train, 16, seed=cfg.seed),
        build_optimizers(cfg, family, 1),
        run_dir,
        steps=steps,
        log_every=100,
        sample_every=100,
        checkpoint_every=100,
        num_samples=16,
        heldout={"image": torch.zeros(16, 2)},
        lr_decay_start=0.5,
        lr_decay_final=0.2,
    )


def test_every_phase_follows_the_schedule_and_resume_restores_it(compose, tmp_path):
    cfg = compose(SMALL_MLP + ["optimizer.lr_d=4e-3"])
    full = _trainer(cfg, tmp_path / "full", 6)
    seen = []
    for _ in range(6):
        seen.append({p: o.param_groups[0]["lr"] for p, o in full.optimizers.items()})
        full.train_step()
    seen.append({p: o.param_groups[0]["lr"] for p, o in full.optimizers.items()})
    # steps 0..3 at the base rate, then linearly down to 0.2 × that rate after the 6th (last) step
    factors = [1.0, 1.0, 1.0, 1.0, 1.0 - 0.8 / 3, 1.0 - 1.6 / 3, 0.2]
    assert [s["generator"] for s in seen] == pytest.approx([1e-3 * f for f in factors])
    assert [s["discriminator"] for s in seen] == pytest.approx([4e-3 * f for f in factors])

    part = _trainer(cfg, tmp_path / "part", 6)
    for _ in range(5):
        part.train_step()
    part.save()
    weight = perturbed_copy(tmp_path / "part", tmp_path / "perturbed")
    ends = {}
    for run in ("part", "perturbed"):
        resumed = _trainer(cfg, tmp_path / run, 6)
        resumed.load_state_dict(checkpoint.load(tmp_path / run / "checkpoints" / "last.pt"))
        assert resumed.optimizers["generator"].param_groups[0]["lr"] == pytest.approx(1e-3 * factors[5])
        with counting_steps() as taken:
            resumed.fit()
        assert taken == [5]  # the resumed leg: the last step only
        for phase, o in full.optimizers.items():
            assert resumed.optimizers[phase].param_groups[0]["lr"] == pytest.approx(o.param_groups[0]["lr"])
        ends[run] = resumed.family.state_dict()
    a, b = full.family.state_dict(), ends["part"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(ends["perturbed"][weight], a[weight])  # it continued the checkpoint


def test_cli_applies_the_schedule_and_refuses_bad_values(compose, tmp_path, quick):
    cfg = compose(SMALL_MLP + quick + ["trainer.steps=4", "trainer.lr_decay_start=0", "trainer.lr_decay_final=0.5"])
    train(cfg, tmp_path / "run")
    state = checkpoint.load(tmp_path / "run" / "checkpoints" / "last.pt")
    assert state["optimizers"]["generator"]["param_groups"][0]["lr"] == pytest.approx(0.5e-3)
    for bad in ("trainer.lr_decay_start=1.5", "trainer.lr_decay_final=-1"):
        with pytest.raises(ConfigError, match=bad.split("=")[0]):
            train(compose(SMALL_MLP + quick + [bad]), tmp_path / bad)
