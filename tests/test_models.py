"""The models: GAN losses against their formulas, the recurrent classifier's initialisation,
padding and size, short training runs, and the registry."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from pydantic import ValidationError
from torch import nn

from lightning_modules import MODELS

HEAD = {"rnn": "classifier", "lstm": "classifier", "gan": "sampler-2d"}
from lightning_modules.losses import (
    GENERATOR_LOSSES,
    discriminator_loss,
    generator_loss_minimax,
    generator_loss_non_saturating,
)
from pipeline.datasets import parity
from pipeline.training.loaders import batches

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*does not have many workers.*"),
    pytest.mark.filterwarnings("ignore:.*number of training batches.*"),
    pytest.mark.filterwarnings("ignore:.*but have no `val_dataloader`.*"),
    pytest.mark.filterwarnings("ignore:.*isinstance\\(treespec, LeafSpec\\).*"),
]


def trainer(tmp_path, **kwargs) -> pl.Trainer:
    return pl.Trainer(
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        devices=1,
        default_root_dir=tmp_path,
        **kwargs,
    )


# ---------------------------------------------------------------------------- losses

REAL = torch.tensor([2.0, -0.5, 0.0, 4.0], dtype=torch.float64)
FAKE = torch.tensor([-3.0, 1.0, 0.3], dtype=torch.float64)


def _log_sigmoid_by_hand(logits: torch.Tensor) -> list[float]:
    return [math.log(1 / (1 + math.exp(-float(l)))) for l in logits]


def _log_one_minus_sigmoid_by_hand(logits: torch.Tensor) -> list[float]:
    return [math.log(1 - 1 / (1 + math.exp(-float(l)))) for l in logits]


def test_discriminator_loss_formula():
    expected = -np.mean(_log_sigmoid_by_hand(REAL)) - np.mean(_log_one_minus_sigmoid_by_hand(FAKE))
    assert float(discriminator_loss(REAL, FAKE)) == pytest.approx(expected, rel=1e-12)
    # D at chance (all logits 0): 2 log 2
    zeros = torch.zeros(5)
    assert float(discriminator_loss(zeros, zeros)) == pytest.approx(2 * math.log(2), rel=1e-6)
    # a confident, correct D has a small loss; a confident, wrong D a large one
    assert float(discriminator_loss(torch.full((3,), 10.0), torch.full((3,), -10.0))) < 1e-3
    assert float(discriminator_loss(torch.full((3,), -10.0), torch.full((3,), 10.0))) > 19.0


def test_generator_loss_minimax_formula():
    expected = np.mean(_log_one_minus_sigmoid_by_hand(FAKE))  # E[log(1 - D(G(z)))]
    out = generator_loss_minimax(FAKE)
    assert out.shape == ()
    assert float(out) == pytest.approx(expected, rel=1e-12)
    assert float(out) < 0  # a log of a probability
    # D(G(z)) = 1/2 everywhere: log(1/2)
    assert float(generator_loss_minimax(torch.zeros(4))) == pytest.approx(-math.log(2), rel=1e-6)


def test_generator_loss_non_saturating_formula():
    expected = -np.mean(_log_sigmoid_by_hand(FAKE))  # -E[log D(G(z))]
    out = generator_loss_non_saturating(FAKE)
    assert out.shape == ()
    assert float(out) == pytest.approx(expected, rel=1e-12)
    assert float(out) > 0
    assert float(generator_loss_non_saturating(torch.zeros(4))) == pytest.approx(math.log(2), rel=1e-6)


def test_losses_stable_for_extreme_logits():
    big = torch.tensor([-200.0, 200.0])
    for value in (
        discriminator_loss(big, big),
        generator_loss_minimax(big),
        generator_loss_non_saturating(big),
    ):
        assert torch.isfinite(value)
    # log(1 - sigma(200)) = -200 (to float precision), averaged with log(1 - sigma(-200)) = 0
    assert float(generator_loss_minimax(big)) == pytest.approx(-100.0, rel=1e-6)
    assert float(generator_loss_non_saturating(big)) == pytest.approx(100.0, rel=1e-6)


def _grad(loss_fn, logit: float) -> float:
    l = torch.tensor([logit], dtype=torch.float64, requires_grad=True)
    loss_fn(l).backward()
    return float(l.grad[0])


def test_minimax_gradient_vanishes_when_discriminator_is_confident():
    # D confidently calls the sample fake: very negative logit
    logit = -8.0
    g_mm, g_ns = _grad(generator_loss_minimax, logit), _grad(generator_loss_non_saturating, logit)
    s = 1 / (1 + math.exp(-logit))
    # d/dl log(1 - sigma(l)) = -sigma(l);  d/dl -log sigma(l) = -(1 - sigma(l))
    assert g_mm == pytest.approx(-s, rel=1e-9)
    assert g_ns == pytest.approx(-(1 - s), rel=1e-9)
    # both push the logit up (G wants D to say "real"), but the minimax push has vanished
    assert g_mm < 0 and g_ns < 0
    assert abs(g_mm) < 1e-3
    assert abs(g_ns) > 0.99
    assert abs(g_mm) < 1e-3 * abs(g_ns)
    # near chance the two agree
    assert _grad(generator_loss_minimax, 0.0) == pytest.approx(_grad(generator_loss_non_saturating, 0.0))


def test_generator_losses_registry():
    assert GENERATOR_LOSSES["minimax"] is generator_loss_minimax
    assert GENERATOR_LOSSES["non-saturating"] is generator_loss_non_saturating


# ---------------------------------------------------------------------------- recurrent classifier


def build(name: str, **settings):
    entry = MODELS[name]
    return entry.build("classifier", entry.settings_for("classifier")(**settings), vocab_size=2, n_classes=2)


@pytest.mark.parametrize("forget_bias", [1.0, 0.0, 2.5])
@pytest.mark.parametrize("num_layers,bidirectional", [(1, False), (2, True)])
def test_lstm_forget_gate_bias(forget_bias, num_layers, bidirectional):
    E, H = 5, 7
    torch.manual_seed(1234)
    model = build("lstm", embedding_dim=E, hidden_size=H, forget_bias=forget_bias,
                  num_layers=num_layers, bidirectional=bidirectional)
    # the same random draws, without the forget-bias initialisation: torch's defaults
    torch.manual_seed(1234)
    ref_embedding = nn.Embedding(2, E)
    ref = nn.LSTM(E, H, num_layers=num_layers, bidirectional=bidirectional, batch_first=True)
    torch.testing.assert_close(model.embedding.weight, ref_embedding.weight, rtol=0, atol=0)

    params = dict(model.recurrent.torch_rnn.named_parameters())
    ref_params = dict(ref.named_parameters())
    assert params.keys() == ref_params.keys()
    suffixes = [n[len("bias_ih"):] for n in params if n.startswith("bias_ih")]
    assert len(suffixes) == num_layers * (2 if bidirectional else 1)
    forget = slice(H, 2 * H)
    others = torch.cat([torch.arange(0, H), torch.arange(2 * H, 4 * H)])  # gates i, g, o
    for sfx in suffixes:
        effective = params["bias_ih" + sfx] + params["bias_hh" + sfx]
        torch.testing.assert_close(effective[forget], torch.full((H,), forget_bias), rtol=0, atol=1e-7)
        for kind in ("bias_ih", "bias_hh"):
            torch.testing.assert_close(params[kind + sfx][others], ref_params[kind + sfx][others], rtol=0, atol=0)
        # the default draws are not constant: really left alone, not overwritten
        assert params["bias_ih" + sfx][others].std() > 0
    for name, p in params.items():
        if name.startswith("weight"):
            torch.testing.assert_close(p, ref_params[name], rtol=0, atol=0)


def test_rnn_ignores_forget_bias():
    torch.manual_seed(5)
    model = build("rnn", embedding_dim=3, hidden_size=4, forget_bias=3.0)
    torch.manual_seed(5)
    nn.Embedding(2, 3)
    ref = nn.RNN(3, 4, batch_first=True)
    for (name, p), (ref_name, q) in zip(model.recurrent.torch_rnn.named_parameters(), ref.named_parameters()):
        assert name == ref_name
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    assert isinstance(model.recurrent.torch_rnn, nn.RNN) and model.recurrent.torch_rnn.nonlinearity == "tanh"


@pytest.mark.parametrize("name", ["rnn", "lstm"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_padding_does_not_change_outputs(name, bidirectional, num_layers):
    torch.manual_seed(0)
    model = build(name, embedding_dim=4, hidden_size=6, bidirectional=bidirectional, num_layers=num_layers).eval()
    short = torch.tensor([1, 0, 1, 1, 0])
    long_ = torch.tensor([0, 1, 1, 0, 1, 0, 0, 1, 1])
    with torch.no_grad():
        alone = model(short[None], torch.tensor([5]))
        long_alone = model(long_[None], torch.tensor([9]))
        padded = torch.zeros(2, 9, dtype=torch.long)
        padded[0, :5] = short
        padded[1] = long_
        together = model(padded, torch.tensor([5, 9]))
        # order in the batch does not matter, nor what the padding holds
        swapped = torch.stack([long_, torch.cat([short, torch.tensor([1, 1, 1, 1])])])
        reversed_batch = model(swapped, torch.tensor([9, 5]))
    assert together.shape == (2, 2)
    torch.testing.assert_close(together[0:1], alone, rtol=0, atol=1e-5)
    torch.testing.assert_close(together[1:2], long_alone, rtol=0, atol=1e-5)
    torch.testing.assert_close(reversed_batch[1:2], alone, rtol=0, atol=1e-5)
    torch.testing.assert_close(reversed_batch[0:1], long_alone, rtol=0, atol=1e-5)
    # and the output does depend on the input: the two sequences are told apart
    assert not torch.allclose(alone, long_alone)


@pytest.mark.parametrize("name", ["rnn", "lstm"])
def test_bidirectional_final_states_by_hand(name):
    """logits = head([h_T^fwd; h_1^bwd]) with each sequence's own last step, recomputed with
    separate one-direction layers: forward over x_1..x_n, backward over x_n..x_1."""
    E, H = 3, 5
    torch.manual_seed(0)
    model = build(name, embedding_dim=E, hidden_size=H, bidirectional=True).eval()
    assert model.head.in_features == 2 * H
    layer = nn.RNN if name == "rnn" else nn.LSTM
    fwd, bwd = layer(E, H, batch_first=True), layer(E, H, batch_first=True)
    with torch.no_grad():
        for p_name, p in fwd.named_parameters():
            p.copy_(getattr(model.recurrent.torch_rnn, p_name))
            getattr(bwd, p_name).copy_(getattr(model.recurrent.torch_rnn, p_name + "_reverse"))
    seqs = [torch.tensor([1, 0, 1]), torch.tensor([0, 1, 1, 1, 0, 0, 1]), torch.tensor([1])]
    padded = torch.zeros(len(seqs), 7, dtype=torch.long)
    for i, s in enumerate(seqs):
        padded[i, : len(s)] = s
    with torch.no_grad():
        logits = model(padded, torch.tensor([len(s) for s in seqs]))
        for i, s in enumerate(seqs):
            emb = model.embedding(s)[None]  # (1, n, E), no padding at all
            h_f = fwd(emb)[1]
            h_b = bwd(emb.flip(1))[1]
            h_f, h_b = (h[0] if isinstance(h, tuple) else h for h in (h_f, h_b))
            expected = model.head(torch.cat([h_f[-1], h_b[-1]], dim=1))
            torch.testing.assert_close(logits[i : i + 1], expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("V,E,H,C", [(2, 16, 64, 2), (7, 3, 5, 4)])
def test_rnn_parameter_count(V, E, H, C):
    entry = MODELS["rnn"]
    model = entry.build("classifier", entry.settings_for("classifier")(embedding_dim=E, hidden_size=H), vocab_size=V, n_classes=C)
    n = sum(p.numel() for p in model.parameters())
    assert n == V * E + (E * H + H * H + 2 * H) + (H * C + C)


def test_lstm_parameter_count():
    V, E, H, C = 2, 16, 64, 2
    model = build("lstm", embedding_dim=E, hidden_size=H)
    n = sum(p.numel() for p in model.parameters())
    assert n == V * E + 4 * (E * H + H * H + 2 * H) + (H * C + C)


def test_lstm_learns_short_parity(tmp_path):
    pl.seed_everything(0, workers=True)
    settings = parity.Settings(train_min_length=1, train_max_length=4, test_max_length=4, n_train=400, n_val=50,
                               n_test_per_length=1)
    data = parity.generate(settings, seed=0)["train"]
    arrays = [data["tokens"], data["lengths"], data["labels"]]
    model = build("lstm", embedding_dim=8, hidden_size=32, lr=1e-2)
    loader = batches(arrays, batch_size=32, shuffle=True, seed=0)

    tokens, lengths, labels = (torch.from_numpy(a) for a in arrays)
    before = (model.predict(tokens, lengths) == labels.long()).float().mean().item()
    t = trainer(tmp_path, max_epochs=10)
    t.fit(model, loader)
    model.eval()
    after = (model.predict(tokens, lengths) == labels.long()).float().mean().item()
    assert after > 0.9, (before, after)
    # Lightning's own logged training accuracy agrees (last epoch, in train mode, no dropout)
    assert float(t.callback_metrics["train_accuracy"]) > 0.85
    assert t.current_epoch == 10


# ---------------------------------------------------------------------------- GAN

GAN_SMALL = dict(latent_dim=3, generator_hidden=8, generator_layers=2, discriminator_hidden=8, discriminator_layers=2)


def build_gan(**settings):
    entry = MODELS["gan"]
    return entry.build("sampler-2d", entry.settings_for("sampler-2d")(**{**GAN_SMALL, **settings}), data_dim=2)


def _ring_loader(n_batches: int, batch_size: int = 16):
    rng = np.random.default_rng(0)
    angles = rng.uniform(0, 2 * np.pi, size=n_batches * batch_size)
    x = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    return batches([x], batch_size=batch_size, shuffle=False)


def _snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _changed(before: dict[str, torch.Tensor], module: nn.Module) -> bool:
    after = module.state_dict()
    return any(not torch.equal(before[k], after[k]) for k in before)


def test_gan_training_updates_both_players_and_counts_generator_steps(tmp_path):
    pl.seed_everything(0)
    model = build_gan(critic_steps=2)
    g0, d0 = _snapshot(model.generator), _snapshot(model.discriminator)
    assert int(model.generator_steps) == 0
    t = trainer(tmp_path, max_epochs=1)
    t.fit(model, _ring_loader(4))
    assert _changed(g0, model.generator)
    assert _changed(d0, model.discriminator)
    assert int(model.generator_steps) == 2  # 4 batches, one G step per 2 D steps
    assert model.generator_steps.dtype == torch.long


def test_gan_generator_waits_for_critic_steps(tmp_path):
    pl.seed_everything(0)
    model = build_gan(critic_steps=2)
    g0, d0 = _snapshot(model.generator), _snapshot(model.discriminator)
    trainer(tmp_path, max_epochs=1).fit(model, _ring_loader(1))
    assert _changed(d0, model.discriminator)
    assert not _changed(g0, model.generator)
    assert int(model.generator_steps) == 0


def test_gan_default_critic_steps_one_generator_step_per_batch(tmp_path):
    pl.seed_everything(0)
    model = build_gan()
    trainer(tmp_path, max_epochs=2).fit(model, _ring_loader(3))
    assert int(model.generator_steps) == 6


@pytest.mark.parametrize("loss", ["minimax", "non-saturating"])
def test_gan_uses_selected_generator_loss(loss):
    model = build_gan(generator_loss=loss)
    assert model.generator_objective is GENERATOR_LOSSES[loss]


def test_gan_sample_reproducible():
    torch.manual_seed(0)
    model = build_gan()
    a = model.sample(50, generator=torch.Generator().manual_seed(0))
    b = model.sample(50, generator=torch.Generator().manual_seed(0))
    c = model.sample(50, generator=torch.Generator().manual_seed(1))
    assert a.shape == (50, 2)
    assert a.dtype == torch.float32
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.allclose(a, c)
    assert not a.requires_grad
    # it is G applied to standard normal noise drawn from that generator
    z = torch.randn(50, GAN_SMALL["latent_dim"], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(a, model.generator(z), rtol=0, atol=0)
    # a copy with the same weights samples the same points
    torch.testing.assert_close(copy.deepcopy(model).sample(50, generator=torch.Generator().manual_seed(0)), a)


def test_gan_architecture_sizes():
    model = build_gan(latent_dim=4, generator_hidden=10, generator_layers=3, discriminator_hidden=6,
                      discriminator_layers=1)
    g_linear = [m for m in model.generator if isinstance(m, nn.Linear)]
    d_linear = [m for m in model.discriminator if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in g_linear] == [(4, 10), (10, 10), (10, 10), (10, 2)]
    assert [(m.in_features, m.out_features) for m in d_linear] == [(2, 6), (6, 1)]
    # no activation after the last layer of either (G outputs points, D outputs a logit)
    assert isinstance(model.generator[-1], nn.Linear)
    assert isinstance(model.discriminator[-1], nn.Linear)
    leaky = [m for m in model.discriminator if isinstance(m, nn.LeakyReLU)]
    assert leaky and all(m.negative_slope == 0.2 for m in leaky)


# ---------------------------------------------------------------------------- registry


def test_models_registry_entries():
    assert {"rnn", "lstm", "gan"} <= set(MODELS)
    assert MODELS["rnn"].family == "recurrent"
    assert MODELS["lstm"].family == "recurrent"
    assert MODELS["gan"].family == "gan"
    assert isinstance(build("rnn").recurrent.torch_rnn, nn.RNN)
    assert isinstance(build("lstm").recurrent.torch_rnn, nn.LSTM)


@pytest.mark.parametrize("name", ["rnn", "lstm", "gan"])
def test_settings_reject_unknown_key(name):
    Settings = MODELS[name].settings_for(HEAD[name])
    Settings()  # the defaults are valid
    with pytest.raises(ValidationError):
        Settings(no_such_setting=1)


@pytest.mark.parametrize("name,bad", [("lstm", {"hidden_size": 0}), ("rnn", {"dropout": 1.0}),
                                      ("gan", {"generator_loss": "wasserstein"}), ("gan", {"critic_steps": 0})])
def test_settings_reject_invalid_values(name, bad):
    with pytest.raises(ValidationError):
        MODELS[name].settings_for(HEAD[name])(**bad)


def test_settings_defaults_are_written_once_in_settings():
    """Every model's constructor takes its shape arguments by name (no defaults) and its
    settings as ``**settings``, validated by its Settings: no default is written twice."""
    import inspect

    for name, entry in MODELS.items():
        for head in entry.heads:
            params = inspect.signature(entry.cls_for(head).__init__).parameters.values()
            fields = set(entry.settings_for(head).model_fields)
            assert any(p.kind is p.VAR_KEYWORD for p in params), (name, head)
            for p in params:
                assert p.name not in fields, (name, head, p.name)
    # built with no settings: the Settings' defaults, saved in full
    lm = MODELS["lstm"].cls_for("language-model")(cell="lstm", vocab_size=5)
    assert lm.settings == MODELS["lstm"].settings_for("language-model")()
    assert dict(lm.hparams) == {"cell": "lstm", "vocab_size": 5, "carry_state": False, **lm.settings.model_dump()}
    # the GANs take their settings as keywords and validate them with Settings: one source of defaults
    gan = MODELS["gan"].cls_for("sampler-2d")(data_dim=2)
    assert gan.settings == MODELS["gan"].settings_for("sampler-2d")()
    assert dict(gan.hparams) == {"data_dim": 2, "image_shape": None, "n_classes": 0, **gan.settings.model_dump()}  # saved in full
