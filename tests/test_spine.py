"""The loop contract (gantrain/families/base.py) carries conditioned, multi-phase and accumulated training through
the unchanged trainer: held-out conditions, named batch fields, phases as roles, accumulation, EMA, logging."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn

import gantrain
from gantrain import checkpoint
from gantrain.cli import build_data, build_family, build_optimizers, train
from gantrain.data import BatchStream, InMemory, take
from gantrain.errors import ConfigError
from gantrain.families.base import Family, Grid, Phase
from gantrain.metrics.evaluator import Evaluator
from gantrain.metrics.features import ModuleExtractor
from gantrain.trainer import Trainer

from conftest import preview_cells, upscaled

COLOURS = torch.tensor([[0.9, -0.5, 0.2], [0.1, 0.8, -0.7], [-0.6, 0.3, 0.9]])  # rgb = grey ⊗ colour + 0.05


def colour_pairs(n: int, seed: int) -> InMemory:
    """Grey 8×8 maps (``condition``), their colourings (``image``, a fixed affine map of grey) and a caption each."""
    g = torch.Generator().manual_seed(seed)
    grey = torch.rand(n, 1, 8, 8, generator=g) * 2 - 1
    rgb = (grey * COLOURS[0, :, None, None] + 0.05).clamp(-1, 1)
    captions = [f"sample {i}" for i in range(n)]
    return InMemory({"image": rgb, "condition": grey, "caption": captions})


class Colorizer(Family):
    """A trivial image-conditioned method: a 1×1 conv from the grey map to RGB, trained on L1 to the target."""

    sample_network = "colorizer"
    roles = {"generator": ("colorizer",)}

    def __init__(self):
        super().__init__("colorizer")
        self.networks["colorizer"] = nn.Conv2d(1, 3, 1)
        self.captions_seen: list = []

    def phases(self, d_steps):
        return [Phase("colorizer", ("colorizer",))]

    def loss(self, phase, batch, step):
        self.captions_seen.append(batch["caption"])
        loss = (self.networks["colorizer"](batch["condition"]) - batch["image"]).abs().mean()
        return loss, {"loss/L1": loss.detach()}

    def fixed_inputs(self, n, generator, heldout=None):
        return {"condition": heldout["condition"], "target": heldout["image"]}

    def generate(self, inputs, network=None):
        return self.sampling_network(network)(inputs["condition"])

    def previews(self, network, inputs, heldout):
        panels = [inputs["condition"], network(inputs["condition"]), inputs["target"]]  # grey input shown as RGB
        return {"input_output_target": Grid.of_groups(panels, ["input", "output", "target"])}


def colorizer_trainer(run_dir: Path, steps: int, **settings) -> Trainer:
    torch.manual_seed(0)
    family = Colorizer()
    stream = BatchStream(colour_pairs(64, seed=1), 16, seed=0)
    optimizers = {"colorizer": torch.optim.Adam(family.networks["colorizer"].parameters(), lr=0.2)}
    heldout = colour_pairs(32, seed=2)
    evaluator = Evaluator(
        _bundle(heldout),
        ModuleExtractor(nn.Flatten(), "pixels"),
        num_samples=24,
        batch_size=8,
        kid_subset_size=8,
        kid_subsets=4,
        precision_k=2,
        density_k=2,
        is_splits=2,
        metrics=["fid", "kid"],
    )
    return Trainer(
        family,
        stream,
        optimizers,
        run_dir,
        steps=steps,
        log_every=2,
        sample_every=3,
        checkpoint_every=3,
        eval_every=3,
        num_samples=8,
        heldout=take(heldout, 8),
        evaluator=evaluator,
        best_metric="FID/pixels",
        **settings,
    )


def _bundle(heldout: InMemory):
    from gantrain.data import DataBundle, DataSpec

    fields = {"image": (3, 8, 8), "condition": (1, 8, 8), "caption": "str"}
    return DataBundle(train=colour_pairs(64, seed=1), heldout=heldout, spec=DataSpec("image", (3, 8, 8), 0, fields))


def test_a_family_conditioned_on_held_out_images_trains_previews_evaluates_and_resumes_exactly(tmp_path):
    full = colorizer_trainer(tmp_path / "full", steps=6)
    first = full.family.loss("colorizer", colour_pairs(64, seed=1).tensors(), 0)[0].item()
    full.family.captions_seen.clear()
    logs = full.fit()
    assert logs["loss/L1"] < 0.7 * first and set(full.last_metrics) == {"FID/pixels", "KID/pixels"}  # eval.metrics's
    # previews: input | output | target of the fixed held-out conditions, groups of three 8-px panels drawn 8×,
    # two groups a row, cell by cell
    shown = colour_pairs(32, seed=2).tensors()
    condition, target = shown["condition"][:8], shown["image"][:8]
    with torch.no_grad():
        output = full.family.networks["colorizer"](condition)
    grid = full.family.previews(full.family.networks["colorizer"], {"condition": condition, "target": target}, {})["input_output_target"]
    cells, at = preview_cells(tmp_path / "full" / "samples" / "input_output_target_step_0000006.png", grid)
    assert cells.shape[:2] == (4, 6) and at.cell_height == at.cell_width == 64
    for i in range(8):
        row, group = divmod(i, 2)
        for k, panel in enumerate((condition, output, target)):
            assert np.abs(cells[row, 3 * group + k].astype(int) - upscaled(panel[i : i + 1], 8)[0]).max() <= 1, (i, k)
    assert (tmp_path / "full" / "checkpoints" / "best.pt").is_file()
    # the evaluator's samples are the network's outputs on the held-out conditions, in order
    with torch.no_grad():
        samples = full.evaluator.sample(full.family, full.family.networks["colorizer"])
        expected = full.family.networks["colorizer"](colour_pairs(32, seed=2).tensors()["condition"][:24])
    assert torch.allclose(samples, expected)
    # named non-tensor fields reach the family as the data source made them
    assert all(isinstance(c, list) and len(c) == 16 and all(isinstance(t, str) for t in c) for c in full.family.captions_seen)

    part = colorizer_trainer(tmp_path / "part", steps=3)
    part.fit()
    resumed = colorizer_trainer(tmp_path / "part", steps=6)
    resumed.load_state_dict(checkpoint.load(tmp_path / "part" / "checkpoints" / "last.pt"))
    assert resumed.step == 3
    resumed.fit()
    a, b = full.family.state_dict(), resumed.family.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


class ThreePhases(Family):
    """G and D as a regression pair plus a third network, ``anchor``, updated in its own phase without a batch."""

    sample_network = "painter"
    roles = {"generator": ("painter",), "discriminator": ("critic",)}

    def __init__(self):
        super().__init__("three_phases")
        self.networks.update({"painter": nn.Linear(2, 2), "critic": nn.Linear(2, 1), "anchor": nn.Linear(2, 2)})
        self.batches: dict[str, int] = {}

    def phases(self, d_steps):
        return [Phase("critic", ("critic",), d_steps), Phase("painter", ("painter",)), Phase("anchor", ("anchor",), takes_batch=False)]

    def loss(self, phase, batch, step):
        self.batches[phase] = self.batches.get(phase, 0) + bool(batch)
        if phase == "anchor":
            loss = self.networks["anchor"](torch.ones(4, 2, device=self.device)).pow(2).mean()
        else:
            loss = (self.networks[phase](batch["image"]).mean() - 1).pow(2)
        return loss, {f"loss/{phase}": loss.detach()}

    def fixed_inputs(self, n, generator, heldout=None):
        return {"x": torch.randn(n, 2, generator=generator)}

    def generate(self, inputs, network=None):  # points (x₁, f(x)) for the scatter preview
        return torch.cat([inputs["x"][:, :1], self.sampling_network(network)(inputs["x"])], dim=1)


def three_phase_trainer(run_dir, steps, ema=0.9):
    torch.manual_seed(0)
    family = ThreePhases()
    optimizers = {p.name: torch.optim.SGD(family.parameters_of(p), lr=0.1) for p in family.phases(2)}
    stream = BatchStream(InMemory({"image": torch.randn(40, 2, generator=torch.Generator().manual_seed(0))}), 4, seed=0)
    return Trainer(
        family,
        stream,
        optimizers,
        run_dir,
        steps=steps,
        d_steps=2,
        ema=ema,
        log_every=1,
        sample_every=2,
        checkpoint_every=2,
        num_samples=8,
        heldout={"image": torch.zeros(8, 2)},
    )


def test_three_phases_each_update_their_own_network_and_a_batchless_phase_takes_no_batch(tmp_path):
    trainer = three_phase_trainer(tmp_path / "full", steps=4)
    stepped = []
    for name, opt in trainer.optimizers.items():
        opt.register_step_post_hook(lambda *_, name=name: stepped.append(name))
    before = {k: v.clone() for k, v in trainer.family.state_dict().items()}
    trainer.fit()
    assert stepped == ["critic", "critic", "painter", "anchor"] * 4
    assert trainer.family.batches == {"critic": 8, "painter": 4, "anchor": 0}
    assert trainer.stream.state_dict() == {"epoch": 1, "consumed": 2}  # 12 batches of 4 from 40 samples
    assert all(not torch.equal(before[k], v) for k, v in trainer.family.state_dict().items())
    # the EMA follows the sampling network, whatever its phase is called: once per step, warmed up
    ema = trainer.ema.module.weight
    assert int(trainer.ema.n_averaged) == 4 and not torch.equal(ema, before["networks.painter.weight"])
    part = three_phase_trainer(tmp_path / "part", steps=2)
    part.fit()
    resumed = three_phase_trainer(tmp_path / "part", steps=4)
    resumed.load_state_dict(checkpoint.load(tmp_path / "part" / "checkpoints" / "last.pt"))
    resumed.fit()
    a, b = trainer.family.state_dict(), resumed.family.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a) and torch.equal(trainer.ema.module.weight, resumed.ema.module.weight)


class Regression(Family):
    """A linear map fitted by mean squared error: a loss that depends on the batch only (no noise, no batch norm)."""

    sample_network = "net"

    def __init__(self):
        super().__init__("regression")
        self.networks["net"] = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))

    def phases(self, d_steps):
        return [Phase("net", ("net",))]

    def loss(self, phase, batch, step):
        x = batch["image"]
        loss = F.mse_loss(self.networks["net"](x).squeeze(1), x.sum(1).sin())
        return loss, {"loss/mse": loss.detach()}

    def fixed_inputs(self, n, generator, heldout=None):
        return {"x": torch.randn(n, 3, generator=generator)}

    def generate(self, inputs, network=None):  # points (x₁, f(x)) for the scatter preview
        return torch.cat([inputs["x"][:, :1], self.sampling_network(network)(inputs["x"])], dim=1)


def regression_run(tmp_path, name, batch_size, accumulate, steps=1, log_every=1):
    torch.manual_seed(0)
    family = Regression()
    data = InMemory({"image": torch.randn(256, 3, generator=torch.Generator().manual_seed(1))})
    optimizers = {"net": torch.optim.SGD(family.networks["net"].parameters(), lr=0.5)}
    trainer = Trainer(
        family,
        BatchStream(data, batch_size, seed=0),
        optimizers,
        tmp_path / name,
        steps=steps,
        accumulate=accumulate,
        log_every=log_every,
        sample_every=1000,
        checkpoint_every=1000,
        num_samples=4,
    )
    return trainer, trainer.fit()


def test_one_update_accumulated_over_4_micro_batches_of_16_equals_one_update_on_a_batch_of_64(tmp_path):
    big, big_logs = regression_run(tmp_path, "big", 64, 1)
    small, small_logs = regression_run(tmp_path, "small", 16, 4)
    for (k, a), b in zip(big.family.state_dict().items(), small.family.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), k
    assert small.stream.consumed == 4 and small_logs["loss/mse"] == pytest.approx(big_logs["loss/mse"], rel=1e-5)
    assert small_logs["grad_norm/net"] == pytest.approx(big_logs["grad_norm/net"], rel=1e-5)
    one, _ = regression_run(tmp_path, "one", 16, 1)  # and not one update on the first micro-batch alone
    assert not torch.allclose(one.family.networks["net"][0].weight, small.family.networks["net"][0].weight)


def test_logged_grad_norm_is_the_last_steps_norm_with_log_every_above_one(tmp_path, monkeypatch):
    """The norm is measured on the interval's last step (and on the first step, which is logged too) and logged as
    measured, not averaged over the interval."""
    norms = []
    real_step = torch.optim.SGD.step

    def recording(self, *args, **kwargs):
        norms.append(torch.linalg.vector_norm(torch.stack([p.grad.norm() for g in self.param_groups for p in g["params"]])).item())
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.SGD, "step", recording)
    trainer, logs = regression_run(tmp_path, "run", 16, 1, steps=10, log_every=5)
    logged = EventAccumulator(str(tmp_path / "run")).Reload().Scalars("grad_norm/net")
    assert [e.step for e in logged] == [1, 5, 10]
    assert [e.value for e in logged] == pytest.approx([norms[0], norms[4], norms[9]], rel=1e-5)


SMALL_MLP = ["model=mlp", "dataset=grid25", "dataset.source.n=512", "model.generator.hidden=[8]", "model.discriminator.hidden=[8]"]


def test_optimizer_settings_per_phase_with_the_short_gan_names_still_working(compose):
    cfg = compose(SMALL_MLP + ["optimizer.lr=1e-3", "optimizer.lr_g=3e-3", "optimizer.per_phase={discriminator:{lr:5e-4,betas:[0.0,0.9]}}"])
    build_data(cfg)
    optimizers = build_optimizers(cfg, build_family(cfg), 1)
    d, g = optimizers["discriminator"].param_groups[0], optimizers["generator"].param_groups[0]
    assert (d["lr"], d["betas"]) == (5e-4, (0.0, 0.9)) and (g["lr"], g["betas"]) == (3e-3, (0.5, 0.999))
    cfg = compose(SMALL_MLP + ["optimizer.per_phase={critic:{lr:1e-3}}"])
    build_data(cfg)
    with pytest.raises(ConfigError, match="critic phase, but mlp's phases are discriminator, generator"):
        build_optimizers(cfg, build_family(cfg), 1)


def test_eval_metrics_chooses_what_is_computed(compose, tmp_path):
    cfg = compose(
        SMALL_MLP + ["trainer.steps=2", "trainer.eval_every=2", "trainer.batch_size=32", "eval.num_samples=200", "eval.metrics=[modes]"]
    )
    assert {"modes/captured", "modes/reverse_kl"} <= set(train(cfg, tmp_path / "a"))
    digits = [
        "model.generator.width=8",
        "model.discriminator.width=8",
        "trainer.steps=1",
        "trainer.batch_size=16",
        "trainer.eval_every=1",
        "eval.num_samples=64",
        "eval.batch_size=64",
        "eval.kid_subset_size=32",
        "eval.kid_subsets=2",
        "eval.classifier.epochs=1",
    ]
    logs = train(compose(digits + ["eval.metrics=[kid,precision]", "eval.best_metric=KID"]), tmp_path / "b")
    assert {k for k in logs if k.endswith("/classifier")} == {"KID/classifier", "precision/classifier"}
    with pytest.raises(ConfigError, match="eval.metrics lists 'fdi'; choose from fid, is, kid"):
        train(compose(digits + ["eval.metrics=[fdi]"]), tmp_path / "c")


# ------------------------------------------------------------------------------------------ the layers
METRICS = sorted(p.stem for p in (Path(gantrain.__file__).parent / "metrics").glob("*.py") if p.stem != "__init__")


def _imports(path: Path) -> set[str]:
    """gantrain.metrics modules ``path`` imports anywhere (top level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gantrain.metrics."):
            found.add(node.module.split(".")[2])
        elif isinstance(node, ast.ImportFrom) and node.module == "gantrain.metrics":
            found.update(a.name for a in node.names if a.name in METRICS)
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[2] for a in node.names if a.name.startswith("gantrain.metrics."))
    return found


def test_the_metrics_modules_import_each_other_without_a_circle():
    folder = Path(gantrain.__file__).parent / "metrics"
    graph = {m: _imports(folder / f"{m}.py") for m in METRICS}
    order, done = [], set()

    def visit(module, path=()):
        assert module not in path, f"import circle: {' -> '.join((*path, module))}"
        if module not in done:
            for dependency in sorted(graph[module]):
                visit(dependency, (*path, module))
            done.add(module)
            order.append(module)

    for module in METRICS:
        visit(module)
    # each module alone in a fresh interpreter, the most dependent first (the order a circle would break)
    for module in reversed(order):
        subprocess.run([sys.executable, "-c", f"import gantrain.metrics.{module}"], check=True, timeout=120)


def test_the_trainer_names_no_family_network_or_model():
    source = (Path(gantrain.__file__).parent / "trainer.py").read_text()
    for word in ("generator", "discriminator", "denoiser", "GANFamily", "gantrain.models", "label"):
        assert word not in source, word
