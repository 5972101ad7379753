"""Adding a GAN is one class and one registry line: the class below (in this file) and the
``monkeypatch.setitem(MODELS, ...)`` line are all it takes for the pipeline's public path
(fetch, train, evaluate, sample) to train it, measure it and draw it. Nothing else names it:
the sampler asks the model what it shows (``sample_domains``, ``extra_pictures``), the
defaults come from its ``Settings``."""

from __future__ import annotations

import json

import torch
import torch.nn.functional as F

from conftest import write_params
from lightning_modules import MODELS, Head, ModelEntry
from lightning_modules import settings as S
from lightning_modules.gan import GAN


class HingeGAN(GAN):
    """The hinge loss (Lim & Ye 2017): D minimises E[relu(1 − D(x))] + E[relu(1 + D(G(z)))]."""

    def critic_loss(self, real, labels, other):
        fake = self.generate(self.noise(real.shape[0]), labels).detach()
        return F.relu(1 - self.critic(real, labels)).mean() + F.relu(1 + self.critic(fake, labels)).mean(), {}

    def generator_loss(self, n, labels, other):
        return -self.critic(self.generate(self.noise(n), labels), labels).mean(), {}


def test_a_gan_in_one_class_and_one_registry_line_trains_evaluates_and_samples(project, small_params, monkeypatch):
    monkeypatch.setitem(MODELS, "hinge-gan", ModelEntry("hinge-gan", "gan", {"sampler-2d": Head(f"{__name__}:HingeGAN", S.GANSettings)}, {}, "hinge loss"))

    small_params["experiments"] = {
        "ring-hinge-gan": {"dataset": "ring", "task": "mixture-2d", "model": "hinge-gan", "latent_dim": 4, "trainer": {"max_epochs": 1, "limit_train_batches": 3, "limit_val_batches": 1}},
    }
    write_params(project, small_params)

    from pipeline import config as config_mod
    from pipeline.plumbing.paths import Layout
    from pipeline.stages.evaluate import evaluate
    from pipeline.stages.fetch import fetch
    from pipeline.stages.sample import Options, sample
    from pipeline.stages.train import train

    config, layout = config_mod.load(project / "params.yaml"), Layout(project)
    fetch(config, layout, "ring")
    checkpoint = train(config, layout, "ring-hinge-gan")
    model = HingeGAN.load_from_checkpoint(str(checkpoint), map_location="cpu")
    # its settings as params.yaml gives them, the rest from its Settings' defaults
    assert model.settings == config.experiment("ring-hinge-gan").settings and model.settings.latent_dim == 4
    assert int(model.generator_steps) >= 1  # trained
    evaluate(config, layout, "ring-hinge-gan")
    assert {"modes_covered", "high_quality_pct", "reverse_kl"} <= set(json.loads(layout.metrics("ring-hinge-gan").read_text()))
    sampled = sample(config, layout, "ring-hinge-gan", Options(n=50, seed=1))
    assert sampled.path.is_file() and "modes covered" in sampled.text


def test_a_gan_shows_what_it_declares(monkeypatch):
    """A GAN's extra domains and pictures are its own hooks; the defaults show one domain, no extra picture."""
    from lightning_modules.gan_base import Picture

    class TwoDomains(HingeGAN):
        def sample_domains(self, n, generator=None):
            x = self.sample(n, generator=generator)
            return {"A": x, "B": -x}

        def extra_pictures(self, z):
            return [Picture("mirror.png", -self.generate(z[:4]), 1, "mirrored")]

    plain = HingeGAN(data_dim=2)
    assert list(plain.sample_domains(3)) == [""] and plain.extra_pictures(plain.fixed_noise) == []
    two = TwoDomains(data_dim=2)
    domains = two.sample_domains(3, torch.Generator().manual_seed(0))
    assert list(domains) == ["A", "B"] and torch.equal(domains["A"], -domains["B"])
    assert [p.file for p in two.extra_pictures(two.fixed_noise)] == ["mirror.png"]
