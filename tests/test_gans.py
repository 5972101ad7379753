"""The GAN family: losses against their formulas, the gradient penalty, weight clipping,
minibatch discrimination, every model's training step and sampling, the 2-D and image
datasets, the image metrics and the reference classifier."""

from __future__ import annotations

import math

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from torch import nn

from lightning_modules import MODELS
from lightning_modules import losses as L
from lightning_modules.gan_networks import MinibatchDiscrimination
from pipeline.training.loaders import batches
from pipeline.evaluation.metrics import class_histogram_metrics, frechet_distance, precision_recall

LOGITS_REAL = torch.tensor([2.0, -1.0, 0.5])
LOGITS_FAKE = torch.tensor([-3.0, 0.0, 1.5])


def sigmoid(x):
    return 1 / (1 + torch.exp(-x))


# ------------------------------------------------------------------------------- losses


def test_discriminator_loss_is_minus_the_value_function():
    expected = -(torch.log(sigmoid(LOGITS_REAL)).mean() + torch.log(1 - sigmoid(LOGITS_FAKE)).mean())
    torch.testing.assert_close(L.discriminator_loss(LOGITS_REAL, LOGITS_FAKE), expected)


def test_generator_losses_match_their_formulas():
    torch.testing.assert_close(L.generator_loss_minimax(LOGITS_FAKE), torch.log(1 - sigmoid(LOGITS_FAKE)).mean())
    torch.testing.assert_close(L.generator_loss_non_saturating(LOGITS_FAKE), -torch.log(sigmoid(LOGITS_FAKE)).mean())


def test_minimax_gradient_vanishes_where_non_saturating_does_not():
    """Claim 8's mechanism: against a confident D (logit −10) the minimax loss gives G almost
    no gradient, the non-saturating loss a gradient of about −1 per sample."""
    logit = torch.tensor([-10.0], requires_grad=True)
    (g_minimax,) = torch.autograd.grad(L.generator_loss_minimax(logit), logit)
    (g_ns,) = torch.autograd.grad(L.generator_loss_non_saturating(logit), logit)
    assert abs(g_minimax.item()) < 1e-4
    assert g_ns.item() == pytest.approx(-1.0, abs=1e-4)


def test_wasserstein_losses():
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([-2.0, 0.0])
    assert L.critic_loss_wasserstein(real, fake).item() == pytest.approx(-1.0 - 2.0)
    assert L.generator_loss_wasserstein(fake).item() == pytest.approx(1.0)


def _linear_critic(scale: float) -> nn.Linear:
    critic = nn.Linear(4, 1)
    with torch.no_grad():
        w = torch.tensor([[1.0, 2.0, -2.0, 4.0]])
        critic.weight.copy_(scale * w / w.norm())
    return critic


def test_gradient_penalty_zero_for_unit_gradient_positive_otherwise():
    real, fake = torch.randn(16, 4), torch.randn(16, 4)
    assert L.gradient_penalty(_linear_critic(1.0), real, fake).item() == pytest.approx(0.0, abs=1e-10)
    # ‖∇D‖ = 3 everywhere: (3 − 1)² = 4
    assert L.gradient_penalty(_linear_critic(3.0), real, fake).item() == pytest.approx(4.0, rel=1e-5)
    # a non-linear critic: positive, and it trains the critic (the graph is kept)
    critic = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    penalty = L.gradient_penalty(critic, real, fake)
    assert penalty.item() > 0
    penalty.backward()
    assert critic[0].weight.grad is not None and critic[0].weight.grad.abs().sum() > 0


def test_gradient_penalty_interpolates_per_sample():
    """With α = 1 the penalty is taken at the real points, with α = 0 at the fakes."""
    critic = lambda x: (x**2).sum(1)  # ∇ = 2x, norm 2‖x‖
    real = torch.tensor([[0.5, 0.0], [0.0, 0.5]])  # ‖∇‖ = 1: no penalty
    fake = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # ‖∇‖ = 2: penalty 1
    assert L.gradient_penalty(critic, real, fake, alpha=torch.ones(2)).item() == pytest.approx(0.0)
    assert L.gradient_penalty(critic, real, fake, alpha=torch.zeros(2)).item() == pytest.approx(1.0)
    assert L.gradient_penalty(critic, real, fake, alpha=torch.tensor([1.0, 0.0])).item() == pytest.approx(0.5)


def test_clipping_keeps_every_critic_weight_within_c_after_a_step(tmp_path):
    model = build("wgan", "sampler-2d", clip=0.01, lr_discriminator=0.5)  # a huge step, then clipped
    with torch.no_grad():
        for p in model.discriminator.parameters():
            p.mul_(100)
    fit(model, ring_batches(2), tmp_path)
    values = torch.cat([p.flatten() for p in model.discriminator.parameters()])
    assert values.abs().max().item() <= 0.01 + 1e-7
    assert (values.abs() > 0.009).any()  # they were pushed against the bound, not merely small


# ------------------------------------------------------------------ minibatch discrimination


def test_minibatch_features_separate_identical_from_diverse_batches():
    torch.manual_seed(0)
    layer = MinibatchDiscrimination(8, n_kernels=5, kernel_dim=3)
    with torch.no_grad():
        layer.T.mul_(10)
    identical = torch.randn(1, 8).repeat(16, 1)
    diverse = torch.randn(16, 8)
    o_same, o_diverse = layer(identical)[:, 8:], layer(diverse)[:, 8:]
    assert layer(identical).shape == (16, 8 + 5)
    torch.testing.assert_close(o_same, torch.full((16, 5), 15.0))  # N − 1 neighbours at distance 0
    assert o_diverse.max().item() < 1.0


# -------------------------------------------------------------------------- the models

SMALL_2D = dict(latent_dim=4, generator_hidden=16, generator_layers=2, discriminator_hidden=16, discriminator_layers=2)
SMALL_IMAGE = dict(latent_dim=8, width=8)


def build(name: str, head: str, **settings):
    entry = MODELS[name]
    base = SMALL_2D if head == "sampler-2d" else SMALL_IMAGE
    cls = entry.settings_for(head)
    kept = {k: v for k, v in {**base, **settings}.items() if k in cls.model_fields}
    args = {"data_dim": 2} if head == "sampler-2d" else {"image_shape": (1, 16, 16), "n_classes": 10}
    return entry.build(head, cls(**kept), **args)


def fit(model, loader, tmp_path, epochs: int = 1):
    pl.seed_everything(0, verbose=False)
    trainer = pl.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path, accelerator="cpu")
    trainer.fit(model, loader)
    return trainer


def ring_batches(n: int, batch_size: int = 16):
    angles = np.random.default_rng(0).uniform(0, 2 * np.pi, size=n * batch_size)
    return batches([np.stack([np.cos(angles), np.sin(angles)], 1).astype(np.float32)], batch_size, shuffle=False)


def image_batches(n: int, batch_size: int = 8):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(n * batch_size, 1, 16, 16)).astype(np.float32)
    return batches([x, rng.integers(0, 10, n * batch_size), -x[::-1].copy()], batch_size, shuffle=False)


GAN_MODELS = sorted((name, head) for name, e in MODELS.items() if e.family == "gan" for head in e.heads)


def test_the_nine_gans_are_registered():
    assert {n for n, e in MODELS.items() if e.family == "gan"} == {"gan", "dcgan", "wgan", "wgan-gp", "gan-mbd", "cgan", "acgan", "lapgan", "cogan"}


@pytest.mark.parametrize("name,head", GAN_MODELS)
def test_every_gan_trains_both_players_and_counts_its_own_steps(name, head, tmp_path):
    model = build(name, head, critic_steps=2)
    g0 = {k: v.clone() for k, v in model.generator.state_dict().items()}
    d0 = {k: v.clone() for k, v in model.discriminator.state_dict().items()}
    trainer = fit(model, ring_batches(4) if head == "sampler-2d" else image_batches(4), tmp_path)
    assert any(not torch.equal(g0[k], v) for k, v in model.generator.state_dict().items())
    assert any(not torch.equal(d0[k], v) for k, v in model.discriminator.state_dict().items())
    assert int(model.generator_steps) == 2  # 4 batches, 2 critic steps per generator step
    assert trainer.global_step == 6  # Lightning counts every optimiser step: 4 critic + 2 generator
    assert [row[0] for row in model.loss_history] == [1, 2]
    assert all(math.isfinite(d) and math.isfinite(g) for _, d, g in model.loss_history)
    shape = (5, 2) if head == "sampler-2d" else (5, 1, 16, 16)
    model.eval()
    sample = model.sample(5, generator=torch.Generator().manual_seed(0))
    assert sample.shape == shape and torch.isfinite(sample).all()
    torch.testing.assert_close(sample, model.sample(5, generator=torch.Generator().manual_seed(0)))


@pytest.mark.parametrize("name,head", GAN_MODELS)
def test_each_players_backward_pass_leaves_the_other_players_parameters_frozen(name, head, tmp_path):
    seen = []

    class Watch(pl.Callback):
        def on_before_backward(self, trainer, pl_module, loss):
            opt_g, opt_d = trainer.optimizers
            seen.append(tuple(all(p.requires_grad for g in opt.param_groups for p in g["params"]) for opt in (opt_g, opt_d)))

    model = build(name, head, critic_steps=1)
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False, callbacks=[Watch()],
                         enable_model_summary=False, default_root_dir=tmp_path, accelerator="cpu")
    trainer.fit(model, ring_batches(2) if head == "sampler-2d" else image_batches(2))
    # (generator trainable, critic trainable) at each backward pass: critic, generator, critic, generator
    assert seen == [(False, True), (True, False)] * 2
    assert all(p.requires_grad for p in model.parameters())  # restored after every step


def test_fixed_noise_is_the_same_for_every_model_with_the_same_latent_size():
    a, b = build("dcgan", "sampler-image"), build("cgan", "sampler-image")
    torch.testing.assert_close(a.fixed_noise, b.fixed_noise)
    assert a.fixed_noise.shape == (64, SMALL_IMAGE["latent_dim"])


def test_lr_decay_falls_linearly_to_zero_and_constant_without_it(tmp_path):
    model = build("gan", "sampler-2d", lr_generator=0.002, lr_discriminator=0.001, lr_decay_epochs=4)
    seen = []

    class Record(pl.Callback):
        def on_train_epoch_start(self, trainer, module):
            seen.append([opt.param_groups[0]["lr"] for opt in module.optimizers()])

    pl.seed_everything(0, verbose=False)
    trainer = pl.Trainer(max_epochs=5, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path, accelerator="cpu", callbacks=[Record()])
    trainer.fit(model, ring_batches(2))
    want = [[0.002 * f, 0.001 * f] for f in (1, 0.75, 0.5, 0.25, 0)]
    assert [v for row in seen for v in row] == pytest.approx([v for row in want for v in row])
    constant = build("gan", "sampler-2d", lr_generator=0.002)
    fit(constant, ring_batches(2), tmp_path, epochs=2)
    assert [opt.param_groups[0]["lr"] for opt in constant.optimizers()] == [0.002, 0.001]


def test_published_defaults():
    def defaults(name, head):
        return MODELS[name].settings_for(head)()

    dc = defaults("dcgan", "sampler-image")
    assert (dc.lr_generator, dc.beta1, dc.beta2) == (2e-4, 0.5, 0.999)
    w = defaults("wgan", "sampler-2d")
    assert (w.lr_discriminator, w.clip, w.critic_steps) == (5e-5, 0.01, 5)
    gp = defaults("wgan-gp", "sampler-2d")
    assert (gp.lr_discriminator, gp.beta1, gp.beta2, gp.penalty_weight, gp.critic_steps) == (1e-4, 0.5, 0.9, 10.0, 5)
    assert isinstance(build("wgan", "sampler-2d").configure_optimizers()[1], torch.optim.RMSprop)
    assert isinstance(build("wgan-gp", "sampler-image").configure_optimizers()[1], torch.optim.Adam)
    # DCGAN: N(0, 0.02) weights, batch norm in D but not in the WGAN-GP critic
    conv = [m for m in build("dcgan", "sampler-image").discriminator.modules() if isinstance(m, nn.Conv2d)]
    assert abs(torch.cat([c.weight.flatten() for c in conv]).std().item() - 0.02) < 0.004
    assert any(isinstance(m, nn.BatchNorm2d) for m in build("dcgan", "sampler-image").discriminator.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in build("wgan-gp", "sampler-image").discriminator.modules())


def test_conditional_generators_use_the_label():
    for name in ("cgan", "acgan"):
        model = build(name, "sampler-image").eval()
        z = torch.randn(4, SMALL_IMAGE["latent_dim"])
        a = model.generate(z, torch.zeros(4, dtype=torch.long))
        b = model.generate(z, torch.full((4,), 7))
        assert not torch.allclose(a, b)
    assert build("acgan", "sampler-image").critic(torch.zeros(3, 1, 16, 16)).shape == (3, 11)  # real/fake + 10 classes


def test_cogan_shares_noise_across_domains_and_lapgan_builds_a_pyramid():
    cogan = build("cogan", "sampler-image").eval()
    a, b = cogan.generate_pair(torch.randn(3, SMALL_IMAGE["latent_dim"]))
    assert a.shape == b.shape == (3, 1, 16, 16) and not torch.allclose(a, b)
    assert cogan.generator["shared"] is not None and set(cogan.discriminator) == {"a", "b", "shared"}
    lapgan = build("lapgan", "sampler-image", levels=3).eval()
    with torch.no_grad():
        levels = lapgan.pyramid(torch.randn(2, SMALL_IMAGE["latent_dim"]))
    assert [lv.shape[-1] for lv in levels] == [4, 8, 16]
    real = torch.rand(2, 1, 16, 16) * 2 - 1
    (coarse, _), *finer = lapgan.real_levels(real)
    # the pyramid reassembles the image: up(coarse) + residuals
    from lightning_modules.lapgan import up

    x = coarse
    for residual, condition in finer:
        torch.testing.assert_close(up(x), condition)
        x = condition + residual
    torch.testing.assert_close(x, real)


# ---------------------------------------------------------------------------- datasets


def test_grid_has_25_means_at_the_published_points():
    from pipeline.datasets import SOURCES

    src = SOURCES["grid"]
    out = src.generate(src.Settings(n_train=2000, n_val=10), seed=0)
    means = out["means"]["means"]
    assert means.shape == (25, 2)
    assert set(map(tuple, means.tolist())) == {(x, y) for x in (-4.0, -2.0, 0.0, 2.0, 4.0) for y in (-4.0, -2.0, 0.0, 2.0, 4.0)}
    x, c = out["train"]["x"], out["train"]["component"]
    assert (x - means[c]).std() == pytest.approx(0.05, rel=0.1)


def test_digits_splits_scale_and_second_domain():
    from pipeline.datasets import SOURCES

    src = SOURCES["digits"]
    out = src.generate(src.Settings(size=16), seed=0)
    n = sum(len(out[s]["x"]) for s in ("train", "val", "test"))
    assert n == 1797 and len(out["test"]["x"]) == round(1797 * 0.2)
    x = out["train"]["x"]
    assert x.shape[1:] == (1, 16, 16) and x.dtype == np.float32 and x.min() == -1.0 and x.max() == 1.0
    assert set(np.unique(out["train"]["label"])) == set(range(10))
    # negatives of the same images, in another order (unpaired)
    assert sorted(out["train"]["x_other"].sum((1, 2, 3)).round(3)) == sorted((-x).sum((1, 2, 3)).round(3))
    assert not np.allclose(out["train"]["x_other"], -x)
    splits = src.generate(src.Settings(second_domain="edges"), seed=0)
    native = splits["train"]
    assert native["x"].shape[1:] == (1, 8, 8)  # the default: the 8x8 images as they are, x/8 - 1
    from sklearn.datasets import load_digits

    every = np.concatenate([splits[s]["x"] for s in ("train", "val", "test")])
    np.testing.assert_allclose(np.sort(every.sum((1, 2, 3))), np.sort((load_digits().images / 8 - 1).sum((1, 2))), rtol=1e-5)
    edges = native["x_other"]
    assert edges.min() >= -1 and edges.max() <= 1 and not np.allclose(edges, -native["x"])


# ----------------------------------------------------------------------------- metrics


def test_frechet_distance_zero_on_itself_and_grows_with_a_shift():
    x = np.random.default_rng(0).standard_normal((500, 6))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)
    d1, d2 = frechet_distance(x, x + 1.0), frechet_distance(x, x + 2.0)
    assert d1 == pytest.approx(6.0, rel=1e-6) and d2 == pytest.approx(24.0, rel=1e-6)  # ‖μ shift‖²
    # covariance term: N(0, I) against N(0, 4I) in 6-D: Tr(I + 4I − 2·2I) = 6
    rng = np.random.default_rng(1)
    assert frechet_distance(rng.standard_normal((20000, 6)), 2 * rng.standard_normal((20000, 6))) == pytest.approx(6.0, rel=0.05)


def test_precision_and_recall_on_known_sets():
    grid = np.array([[i, j] for i in range(10) for j in range(10)], dtype=float)
    assert precision_recall(grid, grid, k=3) == {"precision": 1.0, "recall": 1.0}
    # fakes far away: neither real-looking nor covering
    assert precision_recall(grid, grid + 100, k=3) == {"precision": 0.0, "recall": 0.0}
    # collapse onto the left half (as many fakes as reals, jittered): all fakes look real
    # (precision 1), half of the real set is missed
    left = grid[grid[:, 0] < 5]
    left = np.concatenate([left, left + 0.05])
    pr = precision_recall(grid, left, k=3)
    assert pr["precision"] == 1.0 and 0.5 <= pr["recall"] < 0.75


def test_class_histogram_metrics():
    assert class_histogram_metrics(np.full(50, 3), 10) == {"classes_covered": 1, "class_kl": pytest.approx(math.log(10))}
    assert class_histogram_metrics(np.arange(100) % 10, 10) == {"classes_covered": 10, "class_kl": pytest.approx(0.0)}


def test_reference_classifier_reads_real_digits_almost_perfectly():
    """The sanity row: held-out real images score near-perfectly in the classifier's space."""
    from pipeline.config import ReferenceSettings
    from pipeline.datasets import SOURCES
    from pipeline.evaluation.reference_classifier import accuracy, train_reference
    from pipeline.tasks.images import image_metrics

    src = SOURCES["digits"]
    data = src.generate(src.Settings(), seed=0)
    model, history = train_reference(data["train"], data["val"], 10, ReferenceSettings(epochs=15, batch_size=64), seed=0)
    assert accuracy(model, data["test"]["x"], data["test"]["label"]) > 0.95
    real_features, _ = model.read(torch.from_numpy(data["train"]["x"]))
    real = image_metrics(model, real_features, torch.from_numpy(data["test"]["x"]), 10, requested=data["test"]["label"])
    assert real["classes_covered"] == 10 and real["class_kl"] < 0.05 and real["class_accuracy"] > 0.95
    assert real["precision"] > 0.85 and real["recall"] > 0.85
    # noise images: far away in feature space, not real-looking
    noise = torch.rand(data["test"]["x"].shape) * 2 - 1
    fake = image_metrics(model, real_features, noise, 10)
    assert fake["frechet_distance"] > 5 * real["frechet_distance"] and fake["precision"] < 0.2


# ------------------------------------------------------------------------ configuration


def test_references_section_is_validated(small_params):
    from pipeline import config as config_mod
    from pipeline.plumbing.errors import ConfigError

    config = config_mod.validate(small_params)
    assert config.references["digits"].epochs >= 1
    assert config.reference("digits") == config.references["digits"]
    bad = {**small_params, "references": {"ring": {"epochs": 2}}}
    with pytest.raises(ConfigError, match="references.ring: a reference classifier needs an image dataset"):
        config_mod.validate(bad)
    bad = {**small_params, "references": {"digits": {"epoch": 2}}}
    with pytest.raises(ConfigError, match="references.digits.epoch: unknown key"):
        config_mod.validate(bad)
    # the image GANs of the shipped params.yaml all have a reference classifier
    images = {e.dataset for e in config.experiments.values() if e.task == "images"}
    assert images and images <= set(config.references)


# ------------------------------------------------------- validation metrics for the plateau


def test_mode_mass_rewards_coverage_and_quality_together():
    from pipeline.tasks.sample_callbacks import mode_mass_pct

    means, std = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), 0.01
    assert mode_mass_pct(np.repeat(means, 10, axis=0), means, std) == pytest.approx(100.0)  # all modes, all sharp
    assert mode_mass_pct(np.repeat(means[:1], 40, axis=0), means, std) == pytest.approx(25.0)  # collapsed: 1 of 4 modes
    blurred = np.repeat(means, 10, axis=0) + np.array([[0.5, 0.5]] * 20 + [[0.0, 0.0]] * 20)  # half far from every mean
    assert mode_mass_pct(blurred, means, std) == pytest.approx(50.0)


def test_mixture_callback_logs_the_evaluations_metrics_on_its_own_noise_for_early_stopping(tmp_path):
    from pytorch_lightning.callbacks import EarlyStopping

    from pipeline.evaluation.metrics import mixture_metrics
    from pipeline.tasks.mixture import MixtureTask
    from pipeline.tasks.sample_callbacks import VALIDATION_NOISE_SEED, MixtureSampleMetrics, mode_mass_pct

    task = MixtureTask()
    angles = 2 * np.pi * np.arange(8) / 8
    means = np.stack([np.cos(angles), np.sin(angles)], 1)
    model = build("gan", "sampler-2d")
    callback = MixtureSampleMetrics(means, 0.05, seed=3, n_samples=400)
    stop = EarlyStopping(monitor=task.monitor, mode=task.monitor_mode, patience=5)  # strict: fails if the metric is missing
    pl.seed_everything(0, verbose=False)
    trainer = pl.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=tmp_path, accelerator="cpu", callbacks=[callback, stop])
    trainer.fit(model, ring_batches(4), ring_batches(1))
    logged = trainer.callback_metrics
    model.eval()
    samples = model.sample(400, generator=torch.Generator().manual_seed(VALIDATION_NOISE_SEED + 3)).numpy()
    expected = mixture_metrics(samples, means, 0.05)
    for key in ("modes_covered", "high_quality_pct", "reverse_kl"):
        assert float(logged[f"val_{key}"]) == pytest.approx(expected[key], rel=1e-5, abs=1e-5)
    assert float(logged["val_mode_mass_pct"]) == pytest.approx(mode_mass_pct(samples, means, 0.05), rel=1e-5, abs=1e-5)
    assert 0 <= float(logged["val_mode_mass_pct"]) <= float(logged["val_high_quality_pct"]) <= 100
    assert VALIDATION_NOISE_SEED + 3 != 3  # never the evaluation's generator (seeded with the seed)


@pytest.mark.parametrize("name", ["dcgan", "cgan"])
def test_image_callback_logs_frechet_distance_and_requested_class_for_conditional_models(name, tmp_path):
    from pytorch_lightning.callbacks import EarlyStopping

    from pipeline.evaluation.reference_classifier import ReferenceClassifier
    from pipeline.tasks.images import ImagesTask
    from pipeline.tasks.sample_callbacks import ImageSampleMetrics

    task = ImagesTask()
    torch.manual_seed(0)
    classifier = ReferenceClassifier((1, 16, 16), 10, features=16).eval()
    real = torch.rand(200, 1, 16, 16) * 2 - 1
    real_features, _ = classifier.read(real)
    callback = ImageSampleMetrics(classifier, real_features, 10, seed=1, n_samples=64)
    model = build(name, "sampler-image")
    stop = EarlyStopping(monitor=task.monitor, mode=task.monitor_mode, patience=5)
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=tmp_path, accelerator="cpu", callbacks=[callback, stop])
    trainer.fit(model, image_batches(2), image_batches(1))
    logged = trainer.callback_metrics
    distance = float(logged["val_frechet_distance"])
    assert math.isfinite(distance) and distance > 0
    # the same images measured again give the same distance; real images are closer than the fakes
    model.eval()
    fake = model.sample(64, generator=torch.Generator().manual_seed(callback.noise_seed), labels=torch.arange(64) % 10 if model.conditional else None)
    assert distance == pytest.approx(frechet_distance(real_features, classifier.read(fake)[0]), rel=1e-5)
    assert frechet_distance(real_features, classifier.read(real[:64])[0]) < distance
    if model.conditional:
        assert 0.0 <= float(logged["val_class_accuracy"]) <= 1.0
    else:
        assert "val_class_accuracy" not in logged


def test_tasks_give_their_sample_callbacks_and_monitor_them(tmp_path):
    from pipeline.evaluation.reference_classifier import ReferenceClassifier, save_reference
    from pipeline.tasks.images import ImagesTask
    from pipeline.tasks.mixture import MixtureTask
    from pipeline.tasks.sample_callbacks import ImageSampleMetrics, MixtureSampleMetrics

    np.savez(tmp_path / "means.npz", means=np.eye(2), std=np.array(0.05))
    (mixture,) = MixtureTask().training_callbacks(tmp_path, {}, None, seed=2)
    assert isinstance(mixture, MixtureSampleMetrics) and mixture.n_samples == 2500 and mixture.std == 0.05
    assert (MixtureTask.monitor, MixtureTask.monitor_mode) == ("val_mode_mass_pct", "max")

    images = tmp_path / "digits"
    images.mkdir()
    np.savez(images / "train.npz", x=np.zeros((20, 1, 8, 8), np.uint8), label=np.arange(20) % 10)
    np.savez(images / "classes.npz", names=np.array([str(i) for i in range(10)]))
    save_reference(ReferenceClassifier((1, 8, 8), 10, features=16), tmp_path)
    (image,) = ImagesTask().training_callbacks(images, {}, None, seed=2, reference_dir=tmp_path)
    assert isinstance(image, ImageSampleMetrics) and image.real_features.shape == (20, 16) and image.n_classes == 10
    assert (ImagesTask.monitor, ImagesTask.monitor_mode) == ("val_frechet_distance", "min")


def test_sample_callbacks_draw_from_their_own_generator_and_leave_training_unchanged(tmp_path):
    """The monitor must not perturb what it measures: the same seed trains to the same weights
    with and without the callback (it never touches the global random state)."""
    from pipeline.tasks.sample_callbacks import MixtureSampleMetrics

    def train(callbacks):
        pl.seed_everything(0, verbose=False)
        model = build("gan", "sampler-2d")
        trainer = pl.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                             default_root_dir=tmp_path, accelerator="cpu", callbacks=callbacks)
        trainer.fit(model, ring_batches(3), ring_batches(1))
        return model.generator.state_dict()

    means = np.array([[1.0, 0.0], [-1.0, 0.0]])
    with_callback, without = train([MixtureSampleMetrics(means, 0.05, seed=1, n_samples=100)]), train([])
    for key, value in without.items():
        torch.testing.assert_close(with_callback[key], value, rtol=0, atol=0)
