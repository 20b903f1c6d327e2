"""DDPM / DDIM: the forward process, schedules, samplers and guidance against their equations; the U-Net; the CLI."""

from __future__ import annotations

import math

import pytest
import torch

import gantrain.cli
from gantrain.errors import ConfigError
from gantrain.families.diffusion import DiffusionFamily, beta_schedule
from gantrain.models.unet import UNet

from conftest import QUICK

FAST = [*QUICK, "trainer.eval_every=0", "model.sampling_steps=3", "model.denoiser.width=8"]


def tiny_unet(num_classes: int = 0, image_size: int = 8, randomize: bool = True) -> UNet:
    net = UNet(
        1, image_size, width=8, multipliers=[1, 2], blocks=1, attention_resolutions=[4], dropout=0.0, norm_groups=4, num_classes=num_classes
    )
    if randomize:  # the last layers start at zero: give every weight a value so outputs depend on inputs
        with torch.no_grad():
            for p in net.parameters():
                p.normal_(0, 0.1)
    return net.eval()


def family(schedule="linear", prediction="eps", **kw) -> DiffusionFamily:
    return DiffusionFamily(
        "ddpm", kw.pop("denoiser", None) or tiny_unet(kw.get("num_classes", 0)), (1, 8, 8), schedule=schedule, prediction=prediction, **kw
    )


class Oracle(torch.nn.Module):
    """A denoiser that knows x_0 and ε: it outputs the exact training target of ``fam`` at (x_t, t)."""

    def __init__(self, fam: DiffusionFamily, x0: torch.Tensor, noise: torch.Tensor):
        super().__init__()
        self.fam, self.x0, self.noise = fam, x0, noise

    def forward(self, x, t, labels=None):
        return self.fam.target(self.x0, t, self.noise)


class TimeRecorder(torch.nn.Module):
    """A toy ε-network, a fixed smooth function of (x_t, t), that records the timestep of every call."""

    def __init__(self):
        super().__init__()
        self.times = []

    def forward(self, x, t, labels=None):
        assert bool((t == t[0]).all())
        self.times.append(int(t[0]))
        return 0.5 * torch.tanh(x) + torch.sin(0.1 * t.to(x.dtype)).view(-1, 1, 1, 1)


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_forward_process_has_the_closed_form_moments(schedule):
    """q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I), checked on 40,000 draws per timestep."""
    fam = family(schedule)
    x0 = torch.tensor([-1.0, -0.3, 0.5, 1.0])
    n = 40_000
    for t_value in (0, 100, 500, 999):
        t = torch.full((n,), t_value)
        xt = fam.q_sample(x0.expand(n, 4), t, torch.randn(n, 4))
        a = fam.alphas_cumprod[t_value]
        var = 1 - a
        # 5 standard errors of the mean and of the variance (≈ var·√(2/n))
        assert torch.allclose(xt.mean(0), a.sqrt() * x0, atol=5 * math.sqrt(var / n) + 1e-6)
        assert torch.allclose(xt.var(0), var.expand(4), rtol=5 * math.sqrt(2 / n), atol=1e-7)


def test_schedules_end_near_pure_noise():
    linear = torch.cumprod(1 - beta_schedule("linear", 1000), 0)
    cosine = torch.cumprod(1 - beta_schedule("cosine", 1000), 0)
    # Ho et al.: β_t = 1e-4 + (t − 1)·(0.02 − 1e-4)/999 gives ᾱ_T = Π(1 − β_t) ≈ 4.04e-5
    assert linear[0] == pytest.approx(1 - 1e-4) and linear[-1] < 1e-4
    assert linear[-1].item() == pytest.approx(math.prod(1 - (1e-4 + i * (0.02 - 1e-4) / 999) for i in range(1000)), rel=1e-9)
    assert cosine[-1] < 1e-4 and bool((cosine[1:] < cosine[:-1]).all())
    # Nichol & Dhariwal Eq. 17: ᾱ_t = f(t)/f(0) wherever β is not clipped at 0.999
    f = lambda t: math.cos((t / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    for t in (1, 250, 500, 900):
        assert cosine[t - 1].item() == pytest.approx(f(t) / f(0), rel=1e-9)
    with pytest.raises(ValueError, match="schedule"):
        beta_schedule("quadratic", 10)


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_oracle_denoiser_makes_one_ddim_step_exact(prediction, schedule):
    """With ε_θ returning the true noise, x̂_0 = (x_t − √(1 − ᾱ_t) ε)/√ᾱ_t is x_0: one DDIM step to t' = −1
    returns x_0, and a deterministic (η = 0) step to any t' lands on √ᾱ_t' x_0 + √(1 − ᾱ_t') ε."""
    fam = family(schedule, prediction, clip_denoised=False)
    x0 = torch.rand(6, 1, 8, 8) * 2 - 1
    noise = torch.randn_like(x0)
    oracle = Oracle(fam, x0, noise)
    for t_value in (0, 10, 400, 900):
        t = torch.full((6,), t_value)
        xt = fam.q_sample(x0, t, noise)
        x0_hat, eps_hat = fam.predict(oracle, xt, t)
        assert torch.allclose(x0_hat, x0, atol=1e-4) and torch.allclose(eps_hat, noise, atol=1e-4)
        assert torch.allclose(fam.ddim_step(x0_hat, eps_hat, t_value, -1, eta=0.0), x0, atol=1e-4)
        if t_value > 0:
            t_prev = t_value // 3
            expected = fam.q_sample(x0, torch.full((6,), t_prev), noise)
            assert torch.allclose(fam.ddim_step(x0_hat, eps_hat, t_value, t_prev, eta=0.0), expected, atol=1e-4)


def test_full_ddim_run_with_an_oracle_recovers_x0():
    fam = family("linear", "eps")
    x0 = torch.rand(4, 1, 8, 8) * 2 - 1
    noise = torch.randn_like(x0)
    oracle = Oracle(fam, x0, noise)
    x_T = fam.q_sample(x0, torch.full((4,), fam.timesteps - 1), noise)
    assert torch.allclose(fam.sample(oracle, x_T, steps=10, eta=0.0), x0, atol=1e-4)


def test_ddim_with_eta_one_is_the_ddpm_posterior_step():
    """DDIM's step with η = 1 from t to t − 1 is Ho et al.'s ancestral step: mean μ̃_t(x_t, x_0) (Eq. 7) and
    standard deviation √β̃_t, β̃_t = (1 − ᾱ_{t−1})/(1 − ᾱ_t) β_t."""
    fam = family("linear", "eps")
    betas = beta_schedule("linear", 1000)
    abar = torch.cumprod(1 - betas, 0)
    x0, noise = torch.rand(3, 1, 8, 8) * 2 - 1, torch.randn(3, 1, 8, 8)
    for t in (1, 50, 500, 999):
        xt = fam.q_sample(x0, torch.full((3,), t), noise)
        mean = fam.ddim_step(x0, noise, t, t - 1, eta=1.0, z=torch.zeros_like(x0))
        plus_one = fam.ddim_step(x0, noise, t, t - 1, eta=1.0, z=torch.ones_like(x0))
        b, a, a_prev = betas[t].item(), abar[t].item(), abar[t - 1].item()
        mu = math.sqrt(a_prev) * b / (1 - a) * x0 + math.sqrt(1 - b) * (1 - a_prev) / (1 - a) * xt
        assert torch.allclose(mean, mu, atol=1e-4)
        assert torch.allclose(plus_one - mean, torch.full_like(x0, math.sqrt((1 - a_prev) / (1 - a) * b)), atol=1e-5)


def test_samplers_are_reproducible_from_fixed_inputs():
    fam = family(sampling_steps=4)
    inputs = fam.fixed_inputs(5, torch.Generator().manual_seed(0))
    first, again = fam.generate(inputs), fam.generate(inputs)
    assert torch.equal(first, again) and first.shape == (5, 1, 8, 8) and first.abs().max() <= 1
    # η > 0 draws per-step noise from the inputs' seed: the same inputs give the same samples …
    noisy = family(denoiser=fam.networks["denoiser"], sampling_steps=4, eta=1.0)
    assert torch.equal(noisy.generate(inputs), noisy.generate(inputs))
    assert not torch.allclose(noisy.generate(inputs), first)
    # … and another seed other ones; the ancestral sampler likewise
    other = dict(inputs, seed=inputs["seed"] + 1)
    assert not torch.allclose(noisy.generate(other), noisy.generate(inputs))
    ancestral = family(denoiser=fam.networks["denoiser"], sampler="ddpm", timesteps=20, sampling_steps=4)
    assert torch.equal(ancestral.generate(inputs), ancestral.generate(inputs))


def test_ddpm_sampler_is_ho_et_al_algorithm_2_that_is_ddim_with_eta_one_over_all_steps():
    """sampler=ddpm: for t = T…1, x_{t−1} = (x_t − β_t/√(1 − ᾱ_t) ε̂)/√α_t + σ_t z, σ_t² = β̃_t, z = 0 at the
    last step (Ho et al. Alg. 2), recomputed here in float64 with the per-step z the inputs' seed gives."""
    T = 20
    net = TimeRecorder()
    fam = family(denoiser=net, sampler="ddpm", timesteps=T, sampling_steps=4, clip_denoised=False)
    inputs = fam.fixed_inputs(3, torch.Generator().manual_seed(1))
    samples = fam.generate(inputs)
    assert net.times == list(range(T - 1, -1, -1))  # all T steps, whatever sampling_steps says
    betas = beta_schedule("linear", T)
    abar = torch.cumprod(1 - betas, 0)
    generator = torch.Generator().manual_seed(int(inputs["seed"][0]))
    x = inputs["noise"].double()
    for t in range(T - 1, -1, -1):
        eps = net(x.float(), torch.full((3,), t)).double()
        x = (x - betas[t] / (1 - abar[t]).sqrt() * eps) / (1 - betas[t]).sqrt()
        if t > 0:
            z = torch.randn(x.shape, generator=generator).double()
            x = x + ((1 - abar[t - 1]) / (1 - abar[t]) * betas[t]).sqrt() * z
    assert torch.allclose(samples.double(), x, atol=1e-4)
    # the same as DDIM with η = 1 over all T steps and the same seed, and not the deterministic η = 0
    generator = torch.Generator().manual_seed(int(inputs["seed"][0]))
    assert torch.equal(samples, fam.sample(net, inputs["noise"], steps=T, eta=1.0, generator=generator))
    assert not torch.allclose(samples, fam.sample(net, inputs["noise"], steps=T, eta=0.0), atol=1e-2)


def test_sampling_times_are_evenly_spaced_from_T_minus_1_to_0_and_sampling_visits_them():
    fam = family()  # T = 1000
    assert fam.sampling_times(1) == [999]
    assert fam.sampling_times(4) == [999, 666, 333, 0]
    assert fam.sampling_times(8) == [999, 856, 714, 571, 428, 285, 143, 0]  # round(999 − 999 i/7)
    assert fam.sampling_times(10) == list(range(999, -1, -111))
    assert fam.sampling_times(1000) == list(range(999, -1, -1))
    assert family(timesteps=20, sampling_steps=6).sampling_times(6) == [19, 15, 11, 8, 4, 0]  # round(19 − 3.8 i)
    net = TimeRecorder()
    fam = family(denoiser=net, sampling_steps=8)
    fam.generate(fam.fixed_inputs(2, torch.Generator().manual_seed(0)))
    assert net.times == [999, 856, 714, 571, 428, 285, 143, 0]
    net.times.clear()
    fam.sample(net, torch.randn(2, 1, 8, 8), steps=4, eta=1.0)
    assert net.times == [999, 666, 333, 0]


def test_classifier_free_guidance_mixes_conditional_and_unconditional_outputs():
    """out = out(∅) + w·(out(c) − out(∅)); the "no label" class is index num_classes."""

    class LabelEcho(torch.nn.Module):
        num_classes = 10

        def forward(self, x, t, labels):
            return labels.float().view(-1, 1, 1, 1).expand_as(x)

    for w in (0.0, 1.0, 3.0):
        fam = family(denoiser=LabelEcho(), conditional=True, num_classes=10, guidance=w, clip_denoised=False)
        labels = torch.tensor([0, 3, 7])
        _, eps = fam.predict(fam.networks["denoiser"], torch.zeros(3, 1, 8, 8), torch.full((3,), 10), labels)
        assert torch.allclose(eps[:, 0, 0, 0], 10 + w * (labels.float() - 10))


def test_training_drops_labels_to_the_null_class_at_the_given_rate():
    seen = []
    net = tiny_unet(num_classes=10)
    forward = net.forward
    net.forward = lambda x, t, labels=None: (seen.append(labels), forward(x, t, labels))[1]
    fam = family(denoiser=net, conditional=True, num_classes=10, label_dropout=0.3)
    labels = torch.arange(2000) % 10
    loss, logs = fam.loss("denoiser", {"image": torch.zeros(2000, 1, 8, 8), "label": labels}, 0)
    dropped = seen[0] == 10
    assert loss.requires_grad and "loss/denoiser" in logs
    assert torch.equal(seen[0][~dropped], labels[~dropped])
    assert abs(dropped.float().mean().item() - 0.3) < 0.04


def test_unet_shapes_time_and_label_dependence():
    for size in (16, 32):
        net = UNet(3, size, width=16, multipliers=[1, 2, 2], blocks=1, attention_resolutions=[size // 2], num_classes=4)
        x = torch.randn(2, 3, size, size)
        assert net(x, torch.tensor([0, 999]), torch.tensor([1, 4])).shape == x.shape
    net = tiny_unet(num_classes=3, image_size=16)
    x = torch.randn(2, 1, 16, 16)
    base = net(x, torch.tensor([5, 5]), torch.tensor([0, 0]))
    assert not torch.allclose(base, net(x, torch.tensor([500, 500]), torch.tensor([0, 0])))
    assert not torch.allclose(base, net(x, torch.tensor([5, 5]), torch.tensor([3, 3])))
    big = UNet(3, 256, width=32, multipliers=[1, 1, 2, 2, 4, 4], attention_resolutions=[16])  # Ho et al.'s 256 px layout
    assert len(big.down) == 2 * 6 + 5
    with pytest.raises(ValueError, match="divisible by 8"):
        UNet(1, 20, multipliers=[1, 2, 2, 2])
    with pytest.raises(ValueError, match="points"):
        UNet(None, None)


def test_bad_settings_are_refused_in_one_sentence():
    for kw, match in [
        ({"prediction": "score"}, "prediction"),
        ({"sampler": "euler"}, "sampler"),
        ({"sampling_steps": 2000}, "sampling_steps"),
        ({"conditional": True}, "class labels"),
    ]:
        with pytest.raises(ValueError, match=match):
            family(**kw)


def _files(run):
    return {p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file()}


def test_cli_trains_ddpm_with_ema_and_writes_samples_and_a_checkpoint(compose, tmp_path):
    cfg = compose(["model=ddpm", *FAST])
    assert cfg.trainer.ema > 0  # model=ddpm samples from an EMA of the denoiser by default
    logs = gantrain.cli.train(cfg, tmp_path / "run")
    files = _files(tmp_path / "run")
    assert "samples/step_0000002.png" in files and "checkpoints/last.pt" in files
    assert any(f.startswith("events.out.tfevents") for f in files)
    assert math.isfinite(logs["loss/denoiser"]) and logs["speed/images_per_s"] > 0
    state = gantrain.checkpoint.load(tmp_path / "run" / "checkpoints" / "last.pt")
    assert state["family"] == "ddpm" and state["ema"] is not None


def test_cli_trains_guided_ddpm_with_v_prediction_cosine_schedule_and_ancestral_sampler(compose, tmp_path):
    cfg = compose(["model=ddpm_cfg", *FAST, "model.prediction=v", "model.schedule=cosine", "model.sampler=ddpm", "model.timesteps=20"])
    logs = gantrain.cli.train(cfg, tmp_path / "run")
    assert math.isfinite(logs["loss/denoiser"]) and "samples/step_0000002.png" in _files(tmp_path / "run")


def test_cli_refuses_ddpm_on_points(compose, tmp_path):
    with pytest.raises(ConfigError, match="model=ddpm with dataset=grid25.*points"):
        gantrain.cli.train(compose(["model=ddpm", "dataset=grid25", *FAST]), tmp_path / "run")


@pytest.mark.slow
def test_ddpm_learns_to_denoise_digits(compose, tmp_path):
    """200 steps of a small U-Net take the ε-prediction loss from ≈1 (untrained: ε_θ = 0) far below it."""
    cfg = compose(
        [
            "model=ddpm",
            "trainer.steps=200",
            "trainer.log_every=50",
            "trainer.sample_every=200",
            "trainer.checkpoint_every=200",
            "trainer.eval_every=0",
            "trainer.num_samples=16",
            "model.denoiser.width=16",
            "model.denoiser.blocks=1",
            "optimizer.lr=1e-3",
        ]
    )
    logs = gantrain.cli.train(cfg, tmp_path / "run")
    assert logs["loss/denoiser"] < 0.3
