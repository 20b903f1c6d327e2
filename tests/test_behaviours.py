"""Behaviours users rely on: mixed precision, the generator's own learning rate, TensorBoard curves across a
resume, loader workers that train and resume exactly."""

import math
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gantrain import checkpoint
from gantrain.cli import build_optimizers, train
from gantrain.data import BatchStream
from gantrain.trainer import Trainer

from test_reliability import TINY, assert_same_networks, networks, resume
from test_training import SMALL_MLP, build


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step:UserWarning")  # float16's skipped update
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_mixed_precision_steps_run_under_autocast_and_update_every_network(compose, tmp_path, dtype):
    """trainer.amp with trainer.amp_dtype: every phase's convolutions compute in that dtype, the steps update
    every network with finite losses, and only float16 scales the loss (GradScaler). The command line turns amp
    off without CUDA, so the Trainer is built directly to run it on the CPU. Without the default's tuned R1, whose
    double backward overflows float16's scales more often (updates of D skipped at steps 0, 1 and 4 of 8)."""
    cfg = compose(["model.generator.width=8", "model.discriminator.width=8", "regularizer=none"])
    bundle, family = build(cfg)
    seen = {name: set() for name in family.networks}
    for name, net in family.networks.items():
        for module in net.modules():
            if isinstance(module, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
                module.register_forward_hook(lambda m, args, out, name=name: seen[name].add(out.dtype))
    before = {name: [p.detach().clone() for p in net.parameters()] for name, net in family.networks.items()}
    trainer = Trainer(
        family,
        BatchStream(bundle.train, 16, seed=0),
        build_optimizers(cfg, family, 1),
        tmp_path,
        steps=6,
        amp=True,
        amp_dtype=dtype,
        num_samples=16,
        heldout={"image": torch.zeros(16, 1, 16, 16)},
    )
    logs = [trainer.train_step(measure=True) for _ in range(6)]
    assert seen == {"discriminator": {getattr(torch, dtype)}, "generator": {getattr(torch, dtype)}}
    assert {"loss/D", "loss/G"} <= set(logs[0])
    assert all(math.isfinite(v.item()) for step in logs for k, v in step.items() if not k.startswith("grad_norm/"))
    # float16's first gradients overflow at GradScaler's initial scale 2^16 (a NaN norm), and may again while the
    # scale settles: it skips those updates, so each network must have had a finite one among six steps
    assert all(any(math.isfinite(step[f"grad_norm/{phase}"].item()) for step in logs) for phase in family.networks)
    for name, net in family.networks.items():
        assert all(not torch.equal(p, b) for p, b in zip(net.parameters(), before[name])), name
    assert {phase: s.is_enabled() for phase, s in trainer.updater.scalers.items()} == {
        "discriminator": dtype == "float16",
        "generator": dtype == "float16",
    }


def test_optimizer_lr_g_sets_the_generator_learning_rate_only(compose):
    for overrides, lr_g, lr_d in (
        (["optimizer.lr=1e-3", "optimizer.lr_g=3e-4"], 3e-4, 1e-3),
        (["optimizer.lr_g=1e-4", "optimizer.lr_d=4e-4"], 1e-4, 4e-4),
    ):
        cfg = compose(SMALL_MLP + overrides)
        optimizers = build_optimizers(cfg, build(cfg)[1], 1)
        assert optimizers["generator"].param_groups[0]["lr"] == lr_g
        assert optimizers["discriminator"].param_groups[0]["lr"] == lr_d


def test_tensorboard_curves_after_a_resume_hold_every_logged_step_once(compose, tmp_path, monkeypatch):
    """A run that crashed at its end with its last checkpoint at step 3 (checkpoint_every=3; the step-3 file
    is put back as last.pt), then resumed: each scalar has steps 1…6 exactly once and the end-of-run preview
    one image. The resumed writer's purge_step drops what the crashed run logged after step 3, nothing before."""
    save = checkpoint.save

    def keeping_step_3(state, path):
        save(state, path)
        if state["step"] == 3:
            shutil.copy(path, tmp_path / "step3.pt")

    monkeypatch.setattr(checkpoint, "save", keeping_step_3)
    run = tmp_path / "run"
    train(compose([*TINY, "trainer.steps=6", "trainer.log_every=1"]), run)
    shutil.copy(tmp_path / "step3.pt", run / "checkpoints" / "last.pt")
    # TensorBoard reads event files in name order, seconds first: the resumed run's files start a later second
    time.sleep(1.01 - time.time() % 1)
    resume(compose, run)
    events = EventAccumulator(str(run)).Reload()
    scalars = events.Tags()["scalars"]
    assert {"loss/D", "loss/G", "lr/generator", "speed/images_per_s"} <= set(scalars)
    for tag in scalars:
        assert [e.step for e in events.Scalars(tag)] == [1, 2, 3, 4, 5, 6], tag
    assert [e.step for e in events.Images("samples")] == [6]


# Three runs of the original GAN on the conftest image folder in one fresh interpreter (forking loader workers
# out of a pytest-xdist worker, which runs threads, is not what users do): num_workers=0, num_workers=2, and
# num_workers=2 stopped at step 3 (mid-epoch: 23 training images, 5 batches an epoch, two batches a step) and
# resumed to step 6.
WORKER_RUNS = """
import sys
import torch
sys.path.insert(0, sys.argv[3])
from conftest import compose_config, counting_steps
import gantrain.cli
from gantrain.cli import train

workers = []  # each run's loader worker count


class Recorded(gantrain.cli.BatchStream):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        workers.append(self.loader.num_workers)


gantrain.cli.BatchStream = Recorded
torch.set_num_threads(1)
root, out = sys.argv[1], sys.argv[2]
common = ["model=mlp", "dataset=image_folder", f"dataset.root={root}", "dataset.image_size=8", "model.latent_dim=4",
          "model.generator.hidden=[16,16]", "model.discriminator.hidden=[16,16]", "model.discriminator.pieces=2",
          "trainer.batch_size=4", "trainer.log_every=4", "trainer.sample_every=1000", "trainer.checkpoint_every=1000",
          "trainer.num_samples=4", "trainer.eval_every=0", "trainer.device=cpu"]
train(compose_config(common + ["trainer.steps=6", "trainer.num_workers=0"]), f"{out}/main")
train(compose_config(common + ["trainer.steps=6", "trainer.num_workers=2"]), f"{out}/workers")
train(compose_config(common + ["trainer.steps=3", "trainer.num_workers=2"]), f"{out}/resumed")
more = [f"resume={out}/resumed", "trainer.steps=6", "override_resume=true"]
with counting_steps() as taken:
    train(compose_config(more), f"{out}/resumed", more)
print("loader workers:", workers, "resumed leg's steps:", taken)
"""


def test_loader_workers_train_and_resume_exactly_like_the_main_process(image_folder_root, tmp_path):
    """trainer.num_workers=2 trains the same weights as loading in the main process, and stopping it mid-epoch
    then resuming reaches them too: the stream's position, not the workers' prefetching, decides the batches."""
    log = tmp_path / "log.txt"
    with log.open("w") as f:  # a file, not a pipe: a stuck worker cannot hold the test open
        done = subprocess.run(
            [sys.executable, "-c", WORKER_RUNS, str(image_folder_root), str(tmp_path), str(Path(__file__).parent)],
            stdout=f,
            stderr=subprocess.STDOUT,
            timeout=240,
        )
    assert done.returncode == 0, log.read_text()
    assert "loader workers: [0, 2, 2, 2] resumed leg's steps: [3, 4, 5]" in log.read_text()
    main = networks(tmp_path / "main")
    assert_same_networks(main, networks(tmp_path / "workers"))
    assert_same_networks(main, networks(tmp_path / "resumed"))
    assert checkpoint.load(tmp_path / "resumed" / "checkpoints" / "last.pt")["data"] == {"epoch": 2, "consumed": 2}
