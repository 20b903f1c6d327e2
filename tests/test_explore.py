"""gantrain-explore: the closed forms of its math (slerp, directions, decoupling, maps, inversion) and one run of
every tool on tiny trained checkpoints."""

import json
import math

import pytest
import torch

import gantrain.cli
from gantrain.errors import ConfigError
from gantrain.evaluate import load_run
from gantrain.explore.cli import explore, main, parse_args
from gantrain.explore.directions import decouple, edit, fit_direction, slope
from gantrain.explore.edit_tools import combine
from gantrain.explore.maps import apply_map, fit_linear_map, r_squared
from gantrain.explore.paths import interpolate, lerp, slerp, step_ratio
from gantrain.explore.project import project
from gantrain.explore.spaces import latent_space
from gantrain.families.base import Family
from gantrain.metrics.properties import brightness, slant, stroke_width
from gantrain.validate import check_command_line

from conftest import QUICK, compose_config

# ------------------------------------------------------------------ paths


def test_slerp_endpoints_norm_and_angle():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(5, 7, generator=g), torch.randn(5, 7, generator=g)
    b = b / b.norm(dim=1, keepdim=True) * a.norm(dim=1, keepdim=True)  # ‖a‖ = ‖b‖
    t = torch.tensor([0.0, 0.25, 0.6, 1.0])
    path = slerp(a, b, t)
    assert torch.allclose(path[0], a, atol=1e-6) and torch.allclose(path[-1], b, atol=1e-5)
    assert torch.allclose(path.norm(dim=2), a.norm(dim=1).expand(4, -1), rtol=1e-5)
    omega = torch.arccos((a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)))
    angle = torch.arccos(((path * a).sum(2) / (path.norm(dim=2) * a.norm(dim=1))).clamp(-1, 1))
    assert torch.allclose(angle[1:3], t[1:3, None] * omega, atol=1e-4)
    assert torch.allclose(slerp(a, b, 0.25), path[1])


def test_slerp_falls_back_to_lerp_for_parallel_endpoints():
    a = torch.tensor([[1.0, 2.0, 3.0]])
    for b in (2 * a, a + 1e-9):
        t = torch.linspace(0, 1, 5)
        assert torch.allclose(slerp(a, b, t), lerp(a, b, t)) and torch.isfinite(slerp(a, b, t)).all()


def test_interpolate_visits_the_latents_and_step_ratio_is_one_for_an_even_path():
    latents = torch.randn(3, 4)
    path = interpolate(latents, 5, "slerp")
    assert path.shape == (2, 5, 4) and torch.allclose(path[0, 0], latents[0]) and torch.allclose(path[1, -1], latents[2], atol=1e-5)
    assert torch.allclose(path[0, -1], path[1, 0], atol=1e-5)
    even = interpolate(latents, 5, "lerp")
    assert torch.allclose(step_ratio(even), torch.ones(2))  # a line at an even pace: every step the mean
    jump = torch.tensor([[[0.0], [1.0], [2.0], [10.0]]])
    assert step_ratio(jump).item() == pytest.approx(8 / (10 / 3))


# ------------------------------------------------------------------ arithmetic, directions, maps


def test_arithmetic_with_a_linear_generator_is_exact():
    torch.manual_seed(0)
    g = torch.nn.Linear(6, 20).double()
    za, zb, zc = torch.randn(3, 1, 6, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(g(combine([za, zb, zc], [1, -1, 1])), g(za) - g(zb) + g(zc), atol=1e-12, rtol=0)


@pytest.mark.parametrize("classifier", ["svm", "logistic"])
def test_fitted_normal_is_the_labelling_direction(classifier):
    g = torch.Generator().manual_seed(1)
    w = torch.randn(8, generator=g, dtype=torch.float64)
    z = torch.randn(2000, 8, generator=g, dtype=torch.float64)
    n = fit_direction(z, z @ w > 0, classifier, C=10.0)
    assert float(n.norm()) == pytest.approx(1.0) and float(n @ w / w.norm()) > 0.99
    # a linear attribute f(z) = wᵀz moves by α‖w‖ along the exact unit normal, and by its cosine along the fitted one
    f = lambda x: x @ w
    alphas = torch.tensor([-2.0, 0.0, 1.5], dtype=torch.float64)
    exact = edit(z[:4], w / w.norm(), alphas)
    assert torch.allclose(f(exact) - f(z[:4]), alphas[:, None] * w.norm(), atol=1e-10)
    fitted = (f(edit(z[:4], n, alphas)) - f(z[:4])).mean(1)
    assert slope(alphas, fitted) == pytest.approx(float(w.norm()), rel=0.01)


def test_one_labelled_class_is_refused():
    with pytest.raises(ValueError, match="same label"):
        fit_direction(torch.randn(20, 3), torch.ones(20, dtype=torch.bool))


def test_decoupled_direction_leaves_the_other_linear_attribute_unchanged():
    g = torch.Generator().manual_seed(2)
    n1, w2 = torch.randn(10, generator=g, dtype=torch.float64), torch.randn(10, generator=g, dtype=torch.float64)
    n2 = w2 / w2.norm()
    n1p = decouple(n1, n2)
    assert abs(float(n1p @ n2)) < 1e-12 and float(n1p.norm()) == pytest.approx(1.0)
    z = torch.randn(6, 10, generator=g, dtype=torch.float64)
    moved = edit(z, n1p, torch.tensor([-3.0, 2.0], dtype=torch.float64))
    assert torch.allclose(moved @ w2, (z @ w2).expand(2, -1), atol=1e-12)
    assert float(n1 @ n2) != pytest.approx(0.0, abs=1e-3)  # before: editing n₁ moves f₂


def test_map_recovers_a_known_linear_map():
    """G₂ = G₁ ∘ M⁻¹: a point z₁ of G₁ sits at z₂ = M z₁ in G₂'s space."""
    g = torch.Generator().manual_seed(3)
    m = torch.randn(5, 5, generator=g, dtype=torch.float64) + 3 * torch.eye(5, dtype=torch.float64)
    z1 = torch.randn(120, 5, generator=g, dtype=torch.float64)
    g1 = torch.nn.Linear(5, 30).double()
    z2 = z1 @ m.T
    with torch.no_grad():
        g2 = lambda z: g1(z @ torch.linalg.inv(m).T)
        assert torch.allclose(g2(z2), g1(z1), atol=1e-10)
    fitted, b = fit_linear_map(z1[:100], z2[:100])
    assert torch.allclose(fitted, m, atol=1e-8) and torch.allclose(b, torch.zeros(5, dtype=torch.float64), atol=1e-8)
    assert r_squared(apply_map(fitted, b, z1[100:]), z2[100:]) > 0.999
    assert r_squared(z1[100:], z2[100:]) < 0.9  # the identity map does not explain it


def test_r_squared_closed_forms():
    t = torch.randn(50, 3)
    assert r_squared(t, t) == 1.0 and r_squared(t.mean(0).expand(50, -1), t) == pytest.approx(0.0, abs=1e-6)


def test_project_recovers_a_tiny_generators_own_latent():
    torch.manual_seed(4)
    g = torch.nn.Sequential(torch.nn.Linear(4, 32), torch.nn.Tanh(), torch.nn.Linear(32, 64)).requires_grad_(False)
    z_true = 0.5 * torch.randn(3, 4)
    latents, error = project(g, g(z_true), torch.zeros(3, 4), steps=400, lr=0.05)
    assert error.max() < 1e-4 and torch.allclose(latents, z_true, atol=0.02)
    before = (g(torch.zeros(3, 4)) - g(z_true)).pow(2).mean(1)
    assert (before > 100 * error).all()


# ------------------------------------------------------------------ properties


def _stroke(width: int, lean: int = 0) -> torch.Tensor:
    """A 16×16 image of a vertical bar ``width`` pixels wide, shifted ``lean`` pixels right per 8 rows upward."""
    img = -torch.ones(1, 1, 16, 16)
    for row in range(2, 14):
        x = 7 + round(lean * (8 - row) / 8)
        img[0, 0, row, x : x + width] = 1.0
    return img


def test_properties_of_drawn_strokes():
    thin, thick = _stroke(1), _stroke(3)
    assert brightness(thin).item() == pytest.approx(12 / 256) and brightness(thick).item() == pytest.approx(36 / 256)
    assert stroke_width(thin).item() == pytest.approx(1.0)
    assert stroke_width(thick).item() == pytest.approx(36 / 10)  # the skeleton stops a pixel short of each end
    assert stroke_width(thin) < stroke_width(_stroke(2)) < stroke_width(thick)
    assert stroke_width(-torch.ones(1, 1, 8, 8)).item() == 0.0
    assert slant(thin).item() == pytest.approx(0.0, abs=1e-6)
    assert slant(_stroke(1, lean=4)).item() > 0.3 > -0.3 > slant(_stroke(1, lean=-4)).item()


# ------------------------------------------------------------------ every tool on tiny checkpoints

TINY = [
    *QUICK,
    "trainer.steps=3",
    "eval.classifier.width=4",
    "eval.classifier.feature_dim=16",
    "eval.classifier.epochs=1",
]
TINY_DCGAN = ["model=dcgan", "model.latent_dim=8", "model.generator.width=8", "model.discriminator.width=8"]
TINY_VAE = ["model=vae", "model.vae.latent_dim=8", "model.vae.width=8"]
TINY_DDPM = [
    "model=ddpm",
    "model.denoiser.width=8",
    "model.denoiser.blocks=1",
    "model.denoiser.attention_resolutions=[]",
    "model.sampling_steps=3",
]
TINY_CGAN = ["model=cgan", "model.latent_dim=8", "model.generator.hidden=[16]", "model.discriminator.hidden=[16]"]
TINY_STYLEGAN = [
    "model=stylegan",
    "model.latent_dim=8",
    "model.generator.width=8",
    "model.generator.mapping_layers=2",
    "model.discriminator.width=8",
]
FAST = {"num_samples": 60}
INVERT = {"invert_steps": 5, "candidates": 8}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("explore")
    out = {}
    for name, model in (("dcgan", TINY_DCGAN), ("vae", TINY_VAE), ("stylegan", TINY_STYLEGAN), ("ddpm", TINY_DDPM), ("cgan", TINY_CGAN)):
        gantrain.cli.train(compose_config(TINY + model), root / name)
        out[name] = root / name
    return out


def _record(path):
    record = json.loads((path / "explore.json").read_text())
    assert record["files"] and all((path / f).is_file() for f in record["files"])
    return record["measured"]


def test_interpolate_on_dcgan_and_stylegan_w(runs, tmp_path):
    r = explore(str(runs["dcgan"]), "interpolate", {"seeds": [0, 1, 2], "points": 4, "out": str(tmp_path / "i")})
    m = _record(tmp_path / "i")
    assert m == r["measured"] and m["space"] == "z"
    for mode in ("lerp", "slerp"):
        assert len(m[mode]["per_path"]) == 2 and m[mode]["max_over_mean_step"] >= 1.0
    explore(str(runs["stylegan"]), "interpolate", {"space": "w", "points": 3, "gif": True, "out": str(tmp_path / "w")})
    assert _record(tmp_path / "w")["space"] == "w" and (tmp_path / "w" / "interpolate_w_slerp.gif").is_file()


def test_direction_and_decouple(runs, tmp_path):
    explore(
        str(runs["dcgan"]), "direction", {**FAST, "attribute": "brightness", "edits": 6, "alphas": [-2, 0, 2], "out": str(tmp_path / "d")}
    )
    m = _record(tmp_path / "d")
    assert set(m["change"]) == {"brightness", "slant", "stroke_width"} and m["change"]["brightness"][1] == pytest.approx(0.0, abs=1e-6)
    assert math.isfinite(m["slope"]["brightness"])
    explore(str(runs["vae"]), "decouple", {**FAST, "edits": 4, "alphas": [-1, 1], "out": str(tmp_path / "c")})
    m = _record(tmp_path / "c")
    assert {"cosine_n1_n2", "other_slope_before", "other_slope_after"} <= set(m)


def test_arithmetic_project_map_and_truncation(runs, tmp_path):
    terms = [
        {"sign": 1, "class": None, "property": "slant", "side": "high"},
        {"sign": -1, "class": None, "property": "slant", "side": "low"},
    ]
    explore(str(runs["dcgan"]), "arithmetic", {"num_samples": 40, "terms": terms, "columns": 3, "out": str(tmp_path / "a")})
    m = _record(tmp_path / "a")
    assert sum(m["result_classes"]) == 3 and [t["members"] for t in m["terms"]] == [3, 3]
    explore(str(runs["stylegan"]), "project", {**INVERT, "space": "w", "count": 3, "out": str(tmp_path / "p")})
    m = _record(tmp_path / "p")
    assert m["images"] == 3 and m["reconstruction_mse"] > 0 and 0 <= m["closer_than_nearest_train"] <= 1
    explore(
        str(runs["dcgan"]),
        "map",
        {**INVERT, "other": str(runs["vae"]), "support": 20, "heldout": 6, "columns": 3, "out": str(tmp_path / "m")},
    )
    m = _record(tmp_path / "m")
    assert m["r2_train"] >= m["r2"] - 1e-9 and {"G2(Mz)", "G2(random z)", "G2(z)", "G2(located)"} == set(m["image_mse"])
    explore(str(runs["stylegan"]), "truncation", {"num_samples": 20, "psi": [1.0, 0.0], "columns": 2, "out": str(tmp_path / "t")})
    m = _record(tmp_path / "t")
    assert [row["psi"] for row in m["table"]] == [1.0, 0.0] and {"FID", "precision", "recall"} <= set(m["table"][0])
    assert m["table"][1]["recall"] <= m["table"][0]["recall"]  # ψ = 0: one image, no diversity


def test_tau_truncation_draws_a_truncated_normal(runs):
    """Var of N(0, 1) truncated to [−τ, τ]: 1 − 2τφ(τ)/(2Φ(τ) − 1); redrawing must not just clip."""
    run = load_run(str(runs["dcgan"]))
    space = latent_space(run.family, run.network)
    assert torch.equal(space.sample(4, seed=3), run.family.sample_latent(4, torch.Generator().manual_seed(3)))
    tau = 1.0
    z = space.sample(20000, seed=0, tau=tau)
    phi, Phi = math.exp(-(tau**2) / 2) / math.sqrt(2 * math.pi), 0.5 * (1 + math.erf(tau / math.sqrt(2)))
    assert z.abs().max() <= tau and float(z.var()) == pytest.approx(1 - 2 * tau * phi / (2 * Phi - 1), rel=0.02)
    assert float((z.abs() > 0.999 * tau).double().mean()) < 0.01


def test_a_class_conditional_gan_explores_one_class(runs):
    run = load_run(str(runs["cgan"]))
    z = torch.randn(3, 8)
    images = [latent_space(run.family, run.network, label=k).images(z) for k in (2, 5)]
    with torch.no_grad():
        assert torch.equal(images[1], run.family.generate({"z": z, "label": torch.full((3,), 5)}, run.network))
    assert not torch.equal(images[0], images[1])


def test_an_image_to_image_model_has_no_latent_space():
    with pytest.raises(ConfigError, match="maps images to images"):
        latent_space(Family("pix2pix"), None)


def test_ddim_latent_is_deterministic_and_interpolates_but_is_not_inverted(runs, tmp_path):
    explore(str(runs["ddpm"]), "interpolate", {"seeds": [0, 1], "points": 3, "out": str(tmp_path / "x")})
    m = _record(tmp_path / "x")
    assert m["space"] == "x_T" and len(m["slerp"]["per_path"]) == 1
    run = load_run(str(runs["ddpm"]))
    space = latent_space(run.family, run.network)
    x_t = space.sample(2, seed=5)
    assert torch.equal(space.images(x_t), space.images(x_t))  # η = 0: the sample is a function of x_T
    for tool in ("project", "map"):
        with pytest.raises(ConfigError, match="not inverted|cannot locate"):
            explore(str(runs["dcgan" if tool == "map" else "ddpm"]), tool, {"other": str(runs["ddpm"]), "out": str(tmp_path / tool)})


def test_command_line_and_refusals(runs, tmp_path, capsys):
    main([f"ckpt={runs['vae']}", "explore=project", "explore.count=2", "explore.invert_steps=2", "explore.locate=auto"])
    assert "reconstruction_mse" in capsys.readouterr().out and (runs["vae"] / "explore" / "project" / "explore.json").is_file()
    main([f"ckpt={runs['vae']}", "explore=project", "explore.count=2", "explore.invert_steps=2"])
    assert (runs["vae"] / "explore" / "project-2" / "explore.json").is_file()  # a fresh folder: nothing overwritten
    cases = [
        ([f"ckpt={runs['vae']}", "explore=truncation"], "has none"),
        ([f"ckpt={runs['dcgan']}", "explore=interpolate", "explore.space=w"], "StyleGAN"),
        ([f"ckpt={runs['dcgan']}", "explore=map"], "explore.other"),
        ([f"ckpt={runs['dcgan']}", "explore=dance"], "choose one of"),
        ([f"ckpt={runs['dcgan']}", "explore=direction", "explore.no_such=1"], "not a setting"),
        ([f"ckpt={runs['dcgan']}", "explore=direction", "explore.attribute=happiness"], "attribute 'happiness'"),
        ([f"ckpt={runs['dcgan']}"], "usage"),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    with pytest.raises(ConfigError, match="usage"):
        parse_args(["explore=direction"])
    runs = parse_args(["ckpt=R", "explore=direction,decouple", "explore.attribute=slant,class_1", "eval.batch_size=5"])
    assert [(tool, settings["attribute"]) for _, tool, settings, _ in runs] == [
        ("direction", "slant"),
        ("direction", "class_1"),
        ("decouple", "slant"),
        ("decouple", "class_1"),
    ]
    assert all(o == {"eval.batch_size": 5} for *_, o in runs)
    with pytest.raises(ConfigError, match="take a sweep"):
        parse_args(["ckpt=R", "explore=direction", "eval.batch_size=5,6"])
    with pytest.raises(ConfigError, match="gantrain-explore's"):  # training lists the group in --help, but refuses it
        check_command_line(["explore=direction"])
