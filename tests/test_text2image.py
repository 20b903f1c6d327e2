"""GAN-INT-CLS (Reed et al. 2016): the matching-aware D's three terms, GAN-INT's midpoints and the text encoding."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gantrain.cli import build_data, build_family, train
from gantrain.data import take
from gantrain.models.text2image import encode_text

MODEL = ["model=gan_int_cls", "dataset=captioned_digits", "model.generator.width=8", "model.discriminator.width=8"]
FAST = ["trainer.batch_size=8", "trainer.num_samples=9", "trainer.eval_every=0", "trainer.log_every=1"]


@pytest.fixture(scope="module")
def batch():
    from gantrain.data.captions import captioned_digits

    return take(captioned_digits().train, 6)


class ConstantD(nn.Module):
    """Scores a (real image, matching text) pair a, (real, mismatched) b, (generated, matching) c."""

    def __init__(self, real, text, values):
        super().__init__()
        self.real, self.text, self.values, self.seen = real, text, values, []
        self.offset = nn.Parameter(torch.zeros(()))

    def forward(self, x, t):
        key = ("real" if torch.equal(x, self.real) else "fake") + ("/match" if torch.equal(t, self.text) else "/other")
        self.seen.append(key)
        return torch.full((len(x),), self.values[key]) + self.offset


@pytest.mark.parametrize(
    "loss,closed_form",
    [
        ("nonsaturating", lambda a, b, c: F.softplus(-a) + 0.5 * F.softplus(b) + 0.5 * F.softplus(c)),
        ("hinge", lambda a, b, c: F.relu(1 - a) + 0.5 * F.relu(1 + b) + 0.5 * F.relu(1 + c)),
        ("lsgan", lambda a, b, c: 0.5 * (a - 1) ** 2 + 0.5 * (0.5 * b**2 + 0.5 * c**2)),
    ],
)
def test_with_constant_d_outputs_the_d_loss_is_the_three_term_closed_form(compose, batch, loss, closed_form):
    family = build_family(compose([*MODEL, f"loss={loss}"]))
    with torch.no_grad():
        text = family.embed(family.tokens(batch["text"]))
    a, b, c = torch.tensor(1.3), torch.tensor(-0.4), torch.tensor(0.7)
    family.networks["discriminator"] = d = ConstantD(batch["image"], text, {"real/match": a, "real/other": b, "fake/match": c})
    value, logs = family.loss("discriminator", batch, 0)
    assert sorted(d.seen) == ["fake/match", "real/match", "real/other"]
    torch.testing.assert_close(value, closed_form(a, b, c))
    torch.testing.assert_close(logs["D/wrong"], b)


def test_the_mismatched_text_is_the_batch_rolled_by_one(compose, batch):
    family = build_family(compose(MODEL))
    texts = []
    family.networks["discriminator"].register_forward_pre_hook(lambda m, args: texts.append(args[1].detach()))
    family.loss("discriminator", batch, 0)
    with torch.no_grad():
        text = family.embed(family.tokens(batch["text"]))
    assert [torch.equal(t, text) for t in texts] == [True, True, False]
    assert torch.equal(texts[2], text.roll(1, 0))


def test_interpolated_embeddings_are_exact_midpoints_and_d_updates_never_receive_them(compose, batch):
    family = build_family(compose(MODEL))
    g_texts, d_texts = [], []
    family.networks["generator"].register_forward_pre_hook(lambda m, args: g_texts.append(args[1].detach()))
    family.networks["discriminator"].register_forward_pre_hook(lambda m, args: d_texts.append(args[1].detach()))
    with torch.no_grad():
        text = family.embed(family.tokens(batch["text"]))
    midpoints = (text + text.roll(1, 0)) / 2
    loss, _ = family.loss("generator", batch, 0)
    assert len(g_texts) == 2 and torch.equal(g_texts[0], text) and torch.equal(g_texts[1], midpoints)
    assert torch.equal(d_texts[1], midpoints)  # D scores them for G's loss, frozen …
    loss.backward()
    assert all(p.grad is None for p in family.networks["discriminator"].parameters())
    assert all(p.grad is None for p in family.networks["text_encoder"].parameters())
    g_texts.clear(), d_texts.clear()
    family.loss("discriminator", batch, 0)  # … and never in its own update
    assert len(d_texts) == 3 and not any(torch.allclose(t, midpoints) for t in d_texts)
    assert all(torch.equal(t, text) or torch.equal(t, text.roll(1, 0)) for t in d_texts)


def test_without_interpolation_or_matching_awareness_the_terms_drop_out(compose, batch):
    family = build_family(compose([*MODEL, "model.interpolate=false", "model.matching_aware=false"]))
    g_calls, d_calls = [], []
    family.networks["generator"].register_forward_pre_hook(lambda m, args: g_calls.append(1))
    family.networks["discriminator"].register_forward_pre_hook(lambda m, args: d_calls.append(1))
    family.loss("generator", batch, 0)
    family.loss("discriminator", batch, 0)
    assert len(g_calls) == 2 and len(d_calls) == 3  # G: 1 + 1 (D's fake); D: real and fake only


def test_encode_text_lowercases_pads_cuts_and_marks_unknown_characters():
    tokens = encode_text(["Ab", "a thick seven", "é"], 4)
    assert tokens.tolist() == [[97, 98, 0, 0], [97, 32, 116, 104], [1, 0, 0, 0]]


def test_the_d_phase_updates_the_text_encoder_and_the_g_phase_only_g(compose):
    family = build_family(compose(MODEL))
    assert {p.name: p.networks for p in family.phases(1)} == {
        "discriminator": ("discriminator", "text_encoder"),
        "generator": ("generator",),
    }


def test_trains_on_captioned_digits_and_scores_the_asked_class(compose, tmp_path):
    cfg = compose(
        [
            *MODEL,
            *FAST,
            "trainer.steps=2",
            "trainer.eval_every=2",
            "eval.num_samples=50",
            "eval.metrics=[class_accuracy]",
            "eval.classifier.epochs=1",
            "eval.classifier.width=4",
        ]
    )
    logs = train(cfg, tmp_path)
    assert {"loss/D", "loss/G", "D/wrong", "class_accuracy/classifier"} <= set(logs)
    family = build_family(cfg)
    heldout = take(build_data(cfg).heldout, 9)
    inputs = family.fixed_inputs(9, torch.Generator().manual_seed(0), heldout)
    assert torch.equal(family.targets(inputs)["label"], heldout["label"])
    assert family.generate(inputs).shape == (9, 1, 16, 16)


def test_text_embeddings_have_unit_norm_whatever_the_encoders_weights():
    from gantrain.models.text2image import CharCNNEncoder

    encoder = CharCNNEncoder(embed_dim=64, width=16)
    with torch.no_grad():
        encoder.out.weight.mul_(1000)
    norms = encoder(encode_text(["a thick seven", "a thin one"], 16)).norm(dim=1)
    torch.testing.assert_close(norms, torch.ones(2))
