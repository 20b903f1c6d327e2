"""Conditional GANs: AC-GAN's losses recomputed by hand (Odena et al. 2017, Eqs. 2–3), the cGAN label reaching
both networks (Mirza & Osindero 2014), and the class-per-column preview grid."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from gantrain import checkpoint, cli
from gantrain.data import take

from conftest import preview_cells, upscaled

ACGAN = ["model=acgan", "model.generator.width=8", "model.discriminator.width=8", "loss=nonsaturating"]


def cross_entropy(class_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """−E[log softmax(c)_y], written out rather than F.cross_entropy."""
    return -(class_logits - class_logits.logsumexp(dim=1, keepdim=True)).gather(1, labels[:, None]).mean()


@pytest.fixture
def acgan(compose, monkeypatch):
    """An AC-GAN family with aux_weight 0.3 (≠ 1, so that a lost weight shows), a labelled batch of digits, and
    the z every fake sample is drawn from."""
    cfg = compose([*ACGAN, "model.aux_weight=0.3"])
    batch = take(cli.build_data(cfg).train, 16)
    family = cli.build_family(cfg)
    assert family.aux_weight == 0.3 and len(batch["label"].unique()) > 1
    z = torch.randn(16, family.latent_dim)
    monkeypatch.setattr(family, "sample_latent", lambda n, generator=None: z[:n])
    return family, batch, z


def test_acgan_discriminator_loss_adds_the_weighted_class_loss_on_real_and_fake(acgan):
    """L_D = −E log D(x) − E log(1 − D(G(z, y))) + w·(CE(C(x), y) + CE(C(G(z, y)), y)), fakes drawn for the
    batch's labels y."""
    family, batch, z = acgan
    real, labels = batch["image"], batch["label"]
    loss, logs = family.loss("discriminator", batch, step=0)
    G, D = family.networks["generator"], family.networks["discriminator"]
    with torch.no_grad():  # train mode as in the loss: each batch normalized by its own statistics
        on_real, on_fake = D(real, labels), D(G(z, labels), labels)
    (d_real, c_real), (d_fake, c_fake) = (on_real.adversarial, on_real.classes), (on_fake.adversarial, on_fake.classes)
    adversarial = -F.logsigmoid(d_real).mean() - F.logsigmoid(-d_fake).mean()
    classification = cross_entropy(c_real, labels) + cross_entropy(c_fake, labels)
    assert logs["loss/D"].item() == pytest.approx(adversarial.item(), rel=1e-5)
    assert logs["loss/D_class"].item() == pytest.approx(classification.item(), rel=1e-5)
    assert loss.item() == pytest.approx((adversarial + 0.3 * classification).item(), rel=1e-5)


def test_acgan_generator_loss_adds_the_weighted_class_loss_on_fake(acgan):
    """L_G = −E log D(G(z, y)) + w·CE(C(G(z, y)), y)."""
    family, batch, z = acgan
    labels = batch["label"]
    loss, logs = family.loss("generator", batch, step=0)
    G, D = family.networks["generator"], family.networks["discriminator"]
    with torch.no_grad():
        on_fake = D(G(z, labels), labels)
    d_fake, c_fake = on_fake.adversarial, on_fake.classes
    adversarial = -F.logsigmoid(d_fake).mean()
    classification = cross_entropy(c_fake, labels)
    assert logs["loss/G"].item() == pytest.approx(adversarial.item(), rel=1e-5)
    assert logs["loss/G_class"].item() == pytest.approx(classification.item(), rel=1e-5)
    assert loss.item() == pytest.approx((adversarial + 0.3 * classification).item(), rel=1e-5)


def test_cgan_label_reaches_the_generator_and_the_discriminator(compose):
    """One z under each of the 10 labels gives 10 different samples; one image under each label gets 10
    different verdicts of D (eval mode: no dropout, batch norm's running statistics)."""
    cfg = compose(["model=cgan", "model.generator.hidden=[32,32]", "model.discriminator.hidden=[32,32]"])
    real = take(cli.build_data(cfg).train, 1)["image"]
    family = cli.build_family(cfg).eval()
    labels = torch.arange(10)
    with torch.no_grad():
        samples = family.generate({"z": torch.randn(1, family.latent_dim).expand(10, -1), "label": labels}).flatten(1)
        verdicts = torch.stack(
            [family.loss("discriminator", {"image": real, "label": labels[k : k + 1]}, step=0)[1]["D/real"] for k in range(10)]
        )
    assert torch.cdist(samples, samples)[~torch.eye(10, dtype=torch.bool)].min() > 1e-3
    assert len(set(verdicts.tolist())) == 10


def test_conditional_preview_png_has_one_column_per_class(compose, tmp_path):
    """AC-GAN with 20 preview samples on 16×16 digits: the PNG a one-step run saves is 10 cells wide and 2 high,
    each cell the sample upscaled 4× to 64 px, under a label band; the cell in column c shows the sample of the
    fixed inputs with label c, and each column's label is drawn (ink in the band above it)."""
    cfg = compose(
        [
            *ACGAN,
            "trainer.steps=1",
            "trainer.batch_size=16",
            "trainer.sample_every=1",
            "trainer.log_every=1",
            "trainer.checkpoint_every=100",
            "trainer.num_samples=20",
            "trainer.eval_every=0",
        ]
    )
    cli.train(cfg, tmp_path)
    family = cli.build_family(cfg)
    checkpoint.restore(family, checkpoint.load(tmp_path / "checkpoints" / "last.pt")["networks"], "the run")
    inputs = family.fixed_inputs(20, torch.Generator().manual_seed(cfg.seed))
    generator = family.networks["generator"].eval()
    with torch.no_grad():
        samples = family.generate(inputs, generator)
    grid = family.sample_preview(samples, inputs)
    assert grid.images.shape[:2] == (2, 10) and list(grid.column_labels) == [f"class {c}" for c in range(10)]
    cells, at = preview_cells(tmp_path / "samples" / "step_0000001.png", grid)
    assert (at.cell_height, at.cell_width) == (64, 64) and at.top[0] > 12  # a band of labels above the cells
    shown = upscaled(samples, 4)
    picture = np.asarray(Image.open(tmp_path / "samples" / "step_0000001.png").convert("L"))
    for i, label in enumerate(inputs["label"].tolist()):
        row, column = divmod(i, 10)
        assert column == label
        assert np.abs(cells[row, column].astype(int) - shown[i]).max() <= 1, (row, column)
        if row == 0:
            band = picture[: at.top[0], at.left[column] : at.left[column] + at.cell_width]
            assert band.min() < 128, column  # its label is drawn
