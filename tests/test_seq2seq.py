"""Sequence to sequence: attention, masks, decoding, metrics and the dates generator."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import torch

from lightning_modules.captioning import ShowAttendTell, ShowTell
from lightning_modules.decoding import END, PAD, START
from lightning_modules.seq2seq import Bahdanau, Luong, Seq2Seq
from lightning_modules.transformer import MultiHeadAttention, Transformer, TransformerLM
from pipeline.datasets import captions, dates
from pipeline.evaluation.metrics import bleu, exact_match, mean_by, token_accuracy
from pipeline.tasks.seq2seq import LengthBuckets, teacher_forcing_arrays

SRC_V, TGT_V = 20, 12


def batch(seed=0, B=5, S=9):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([S, 3, 6, 1, S - 1])[:B]
    source = torch.randint(4, SRC_V, (B, S), generator=g)
    source[torch.arange(S)[None] >= lengths[:, None]] = PAD
    return source, lengths


ATTENTION_MODELS = [
    lambda: Bahdanau(source_vocab_size=SRC_V, target_vocab_size=TGT_V, hidden_size=16, embedding_dim=8, attention_size=8),
    lambda: Bahdanau(source_vocab_size=SRC_V, target_vocab_size=TGT_V, hidden_size=16, embedding_dim=8, cell="gru", bidirectional=False, reverse_source=True),
    lambda: Luong(source_vocab_size=SRC_V, target_vocab_size=TGT_V, hidden_size=16, embedding_dim=8, score="dot"),
    lambda: Luong(source_vocab_size=SRC_V, target_vocab_size=TGT_V, hidden_size=16, embedding_dim=8, score="general", bidirectional=True, cell="lstm-cifg"),
    lambda: Transformer(source_vocab_size=SRC_V, target_vocab_size=TGT_V, d_model=16, heads=2, ff_size=32, encoder_layers=1, decoder_layers=2),
]
ALL_MODELS = ATTENTION_MODELS + [
    lambda: Seq2Seq(source_vocab_size=SRC_V, target_vocab_size=TGT_V, hidden_size=16, embedding_dim=8),
    lambda: Seq2Seq(source_vocab_size=SRC_V, target_vocab_size=TGT_V, hidden_size=16, embedding_dim=8, cell="mut2", bidirectional=True, num_layers=2),
]


@pytest.mark.parametrize("make", ATTENTION_MODELS)
def test_attention_is_a_distribution_over_the_real_source(make):
    torch.manual_seed(0)
    model = make().eval()
    source, lengths = batch()
    _, _, attention = model.greedy(source, lengths, 6)  # (B, U, S)
    assert attention is not None and (attention >= 0).all()
    torch.testing.assert_close(attention.sum(-1), torch.ones(attention.shape[:2]))
    pad = torch.arange(attention.shape[2])[None] >= lengths[:, None]  # (B, S)
    assert (attention.masked_select(pad[:, None, :].expand_as(attention)) == 0).all()


@pytest.mark.parametrize("make", ATTENTION_MODELS)
def test_padding_does_not_change_the_output(make):
    """Extra padding (and whatever token ids sit there) changes nothing."""
    torch.manual_seed(0)
    model = make().eval()
    source, lengths = batch()
    wider = torch.cat([source, torch.full((len(source), 4), 7)], 1)  # junk beyond every length
    with torch.no_grad():
        dec = torch.randint(3, TGT_V, (len(source), 4))
        torch.testing.assert_close(model(source, lengths, dec), model(wider, lengths, dec))


def test_causal_mask_hides_later_positions():
    torch.manual_seed(0)
    model = Transformer(source_vocab_size=SRC_V, target_vocab_size=TGT_V, d_model=16, heads=2, ff_size=32, dropout=0.0).eval()
    source, lengths = batch()
    dec = torch.randint(3, TGT_V, (len(source), 6))
    changed = dec.clone()
    changed[:, 4:] = (changed[:, 4:] + 1) % TGT_V
    with torch.no_grad():
        a, b = model(source, lengths, dec), model(source, lengths, changed)
    torch.testing.assert_close(a[:, :4], b[:, :4])
    assert not torch.allclose(a[:, 4:], b[:, 4:])

    lm = TransformerLM(vocab_size=TGT_V, d_model=16, heads=2, ff_size=32, layers=2, dropout=0.0, context_length=16).eval()
    with torch.no_grad():
        a, b = lm.logits(dec), lm.logits(changed)
    torch.testing.assert_close(a[:, :4], b[:, :4])
    assert not torch.allclose(a[:, 4:], b[:, 4:])


def test_multi_head_attention_masks_to_zero():
    torch.manual_seed(0)
    attention = MultiHeadAttention(8, 2, 0.0)
    x = torch.randn(2, 5, 8)
    mask = torch.ones(2, 5, 5, dtype=torch.bool).tril()
    _, weights = attention(x, x, x, mask)
    assert (weights >= 0).all() and torch.allclose(weights.sum(-1), torch.ones(2, 2, 5))
    assert (weights[:, :, ~mask[0]] == 0).all()


def test_language_model_sees_its_training_window_and_no_more():
    """Stream evaluation window by window: the carried state gives each prediction the T
    characters up to it (T = the window, as in training), never the up to context_length
    characters that training never attended over."""
    torch.manual_seed(0)
    lm = TransformerLM(vocab_size=TGT_V, d_model=16, heads=2, ff_size=32, layers=1, dropout=0.0, context_length=12).eval()
    x = torch.randint(0, TGT_V, (2, 12))

    def windows(x):
        with torch.no_grad():
            first, state = lm(x[:, :6])
            return first, lm(x[:, 6:], state)[0]

    first, second = windows(x)
    torch.testing.assert_close(first, lm.logits(x[:, :6]))  # a first window is scored as in training
    with torch.no_grad():
        torch.testing.assert_close(second, lm.logits(x, span=6)[:, 6:])
        assert not torch.allclose(second, lm.logits(x)[:, 6:], atol=1e-4)  # all 12 would differ
    y = x.clone()
    y[:, 0] = (x[:, 0] + 1) % TGT_V  # 7 characters before the second window's first prediction
    torch.testing.assert_close(windows(y)[1], second)
    y[:, 1] = (x[:, 1] + 1) % TGT_V  # 6 before it: within its view, and only within its view
    changed = (windows(y)[1] - second).abs().amax(-1) > 1e-5  # (B, 6)
    assert changed[:, 0].all() and not changed[:, 1:].any()
    with pytest.raises(ValueError, match="context_length"):
        lm(torch.zeros(1, 13, dtype=torch.long))


@pytest.mark.parametrize("make", ALL_MODELS)
def test_beam_width_one_is_greedy_and_wider_is_never_worse(make):
    torch.manual_seed(1)
    model = make().eval()
    source, lengths = batch()
    tokens, score, _ = model.greedy(source, lengths, 7)
    beam1, score1 = model.beam_search(source, lengths, 7, 1)
    assert torch.equal(beam1, tokens) and torch.equal(score1, score)
    for width in (2, 5):
        _, wide = model.beam_search(source, lengths, 7, width)
        assert (wide >= score - 1e-5).all()


def test_beam_score_is_the_sequence_log_probability():
    """The score beam search returns is the teacher-forced log-probability of its sequence."""
    torch.manual_seed(2)
    model = ALL_MODELS[0]().eval()
    source, lengths = batch()
    tokens, scores = model.beam_search(source, lengths, 7, 3)
    for i in range(len(source)):
        seq = tokens[i].tolist()
        seq = seq[: seq.index(END) + 1] if END in seq else seq
        dec = torch.tensor([[START] + seq[:-1]])
        with torch.no_grad():
            lp = model(source[i : i + 1], lengths[i : i + 1], dec)[0]
        assert lp[torch.arange(len(seq)), torch.tensor(seq)].sum().item() == pytest.approx(scores[i].item(), abs=1e-4)


def test_teacher_forcing_ratio_mixes_own_predictions():
    torch.manual_seed(0)
    model = Seq2Seq(source_vocab_size=SRC_V, target_vocab_size=TGT_V, hidden_size=16, embedding_dim=8, teacher_forcing=0.0).train()
    source, lengths = batch()
    dec = torch.randint(3, TGT_V, (len(source), 5))
    own = model(source, lengths, dec)  # reads its own argmax from step 2 on
    forced = model.teacher_forced(source, lengths, dec)
    torch.testing.assert_close(own[:, 0], forced[:, 0])
    greedy, _, _ = model.eval().greedy(source, lengths, 5)
    with torch.no_grad():
        torch.testing.assert_close(own.detach()[:, :2].argmax(-1), greedy[:, :2])


@pytest.mark.parametrize("cls", [ShowTell, ShowAttendTell])
def test_captioners_decode_and_attend_over_the_grid(cls):
    torch.manual_seed(0)
    model = cls(target_vocab_size=14, image_height=8, image_width=16, channels=8, embedding_dim=8, hidden_size=16).eval()
    images = torch.rand(3, 8, 16)
    tokens, score, attention = model.greedy(images, torch.ones(3), 5)
    _, wide = model.beam_search(images, torch.ones(3), 5, 3)
    assert (wide >= score - 1e-5).all()
    if cls is ShowAttendTell:
        assert attention.shape[2] == 4 * 8 and torch.allclose(attention.sum(-1), torch.ones(attention.shape[:2]))
    else:
        assert attention is None


def test_metrics_on_hand_made_pairs():
    hyp = ["the cat sat on the mat".split()]
    ref = ["the cat sat on a mat".split()]
    # clipped n-gram precisions 5/6, 3/5, 2/4, 1/3; same length, so no brevity penalty
    assert bleu(hyp, ref) == pytest.approx(100 * (5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25, abs=1e-3)  # 53.73
    hyp2 = ["the cat sat on the mat today".split()]
    ref2 = ["the cat sat on the mat".split()]
    # precisions 6/7, 5/6, 4/5, 3/4; no brevity penalty (hypothesis longer)
    expected = 100 * (6 / 7 * 5 / 6 * 4 / 5 * 3 / 4) ** 0.25
    assert bleu(hyp2, ref2) == pytest.approx(expected, abs=1e-3)
    assert bleu(ref2, ref2) == pytest.approx(100.0)
    # brevity penalty exp(1 - r/c) for a short hypothesis of exact 4-grams
    short = [["a", "b", "c", "d"]]
    assert bleu(short, [["a", "b", "c", "d", "e", "f", "g", "h"]]) == pytest.approx(100 * np.exp(1 - 8 / 4), abs=1e-3)
    # no smoothing: no matching 4-gram scores 0 (sacrebleu's default 'exp' smoothing gives 59.46 here)
    assert bleu([["a", "b", "c", "x"]], [["a", "b", "c", "d"]]) == 0.0
    # corpus-level pooling: p_n = (6+2)/(7+3), (5+1)/(6+2), (4+0)/(5+1), (3+0)/(4+0); c = 10 > r = 9
    pooled = 100 * (8 / 10 * 6 / 8 * 4 / 6 * 3 / 4) ** 0.25
    assert bleu(["the cat sat on the mat today".split(), "a b c".split()], [ref2[0], "a b d".split()]) == pytest.approx(pooled, abs=1e-3)  # 74.01
    assert exact_match([[1, 2], [1, 3]], [[1, 2], [1, 2]]).tolist() == [1.0, 0.0]
    assert token_accuracy([[1, 2, 3], [4]], [[1, 0, 3], [4, 5]]) == pytest.approx(3 / 5)
    assert mean_by(np.array([1, 0, 1, 1]), np.array([3, 3, 5, 5])) == {3: 0.5, 5: 1.0}


def test_date_generator_round_trips_and_is_seeded():
    settings = dates.Settings(n_train=600, n_val=10, n_test=10, n_test_long=200, max_filler_words=3, long_min_filler_words=7, long_max_filler_words=9)
    data = dates.generate(settings, seed=3)
    again = dates.generate(settings, seed=3)
    assert all(np.array_equal(data[name][k], again[name][k]) for name in ("train", "test_long") for k in data[name])
    src, tgt = list(data["vocab"]["source_tokens"]), list(data["vocab"]["target_tokens"])
    seen_formats, fillers = set(), {"train": set(), "test_long": set()}
    for name in ("train", "test_long"):
        split = data[name]
        for i in range(len(split["formats"])):
            text = "".join(src[t] for t in split["source"][i, : split["source_lengths"][i]])
            iso = "".join(tgt[t] for t in split["target"][i, : split["target_lengths"][i]])
            fmt = dates.FORMATS[split["formats"][i]]
            assert dates.parse(text, fmt, settings.min_year) == dt.date.fromisoformat(iso), (text, iso, fmt)
            seen_formats.add(fmt)
            fillers[name].add(len(text.split()) - len(dates.render(dt.date.fromisoformat(iso), fmt).split()))
    assert len(seen_formats) == len(dates.FORMATS)
    assert fillers["train"] == {0, 1, 2, 3}  # no phrase, or 1 .. max_filler_words filler words
    assert fillers["test_long"] == {7, 8, 9}  # long_min_filler_words .. long_max_filler_words
    lengths, long_lengths = data["train"]["source_lengths"], data["test_long"]["source_lengths"]
    assert long_lengths.min() > lengths.max()  # test_long lies beyond every training length
    assert dates.render(dt.date(2026, 11, 26), "{A}, {d} {B} {Y}") == "Thursday, 26 November 2026"
    assert dates.parse("26/11/26", "{dd}/{mm}/{yy}", 1950) == dt.date(2026, 11, 26)
    assert dates.parse("03.04.51", "{dd}.{mm}.{yy}", 1950) == dt.date(1951, 4, 3)
    with pytest.raises(ValueError, match="long_min_filler_words"):
        dates.Settings(max_filler_words=6, long_min_filler_words=6)


def test_captions_hold_out_digit_images():
    settings = captions.Settings(n_train=50, n_val=5, n_test=20)
    data = captions.generate(settings, seed=0)
    train, test = data["train"], data["test"]
    assert train["images"].shape[1:] == (8, 32) and set(np.unique(train["target_lengths"])) <= {2, 3, 4}
    digits = {tuple(x) for img in train["images"] for x in img.reshape(8, 4, 8).transpose(1, 0, 2).reshape(4, 64)}
    held = {tuple(x) for img in test["images"] for x in img.reshape(8, 4, 8).transpose(1, 0, 2).reshape(4, 64) if x.any()}
    assert not digits & held  # no digit image of the test captions is in training
    words = list(data["vocab"]["target_tokens"])
    assert all(words[t] in captions.WORDS for row, n in zip(train["target"], train["target_lengths"]) for t in row[:n])


def test_teacher_forcing_arrays_and_buckets():
    dec_in, dec_out = teacher_forcing_arrays(np.array([[5, 6, 0], [7, 0, 0]]), np.array([2, 1]))
    assert dec_in.tolist() == [[START, 5, 6, 0], [START, 7, 0, 0]]
    assert dec_out.tolist() == [[5, 6, END, 0], [7, END, 0, 0]]
    lengths = np.random.default_rng(0).integers(1, 100, size=1000)
    sampler = LengthBuckets(lengths, 16, seed=0)
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(1000)) and len(batches) == len(sampler)
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    assert spread < 15  # similar lengths together
    sampler.set_epoch(1)
    assert list(sampler) != batches


class ReadsShortInputs(torch.nn.Module):
    """A stand-in decoder that writes the reference for inputs of up to ``reach`` characters and
    a wrong date beyond: what the evaluation makes of a model that degrades with length."""

    def __init__(self, splits, reach: int):
        super().__init__()
        self.answers = {tuple(s[:n].tolist()): list(t[:m]) for split in splits for s, n, t, m in
                        zip(split["source"], split["source_lengths"], split["target"], split["target_lengths"])}
        self.reach, self.device = reach, torch.device("cpu")
        self.hparams = type("H", (), {"beam_width": 2})()

    def greedy(self, source, lengths, max_length):
        rows = []
        for s, n in zip(source.tolist(), lengths.tolist()):
            answer = self.answers[tuple(s[:n])]
            rows.append((answer if n <= self.reach else answer[::-1]) + [END] + [PAD] * (max_length - len(answer) - 1))
        return torch.tensor(rows), torch.zeros(len(rows)), None

    def beam_search(self, source, lengths, max_length, width, greedy=None):
        return (greedy or self.greedy(source, lengths, max_length))[:2]


def test_dates_evaluation_scores_exact_match_by_length_beyond_the_training_lengths(tmp_path):
    from pipeline.tasks.seq2seq import DatesTask

    data = dates.generate(dates.Settings(n_train=300, n_val=10, n_test=200, n_test_long=50, max_filler_words=3, long_min_filler_words=6, long_max_filler_words=8), seed=0)
    for name, arrays in data.items():
        np.savez(tmp_path / f"{name}.npz", **arrays)
    reach = 20
    model = ReadsShortInputs([data["test"], data["test_long"]], reach)
    result = DatesTask().evaluate(model, tmp_path, {}, tmp_path, 0, "stand-in")
    test, long = data["test"]["source_lengths"], data["test_long"]["source_lengths"]
    assert result.metrics["exact_match"] == pytest.approx((test <= reach).mean())  # a reversed ISO date is never right
    assert result.metrics["exact_match_long"] == 0.0 and result.metrics["exact_match_greedy_long"] == 0.0
    curve = result.series["exact_match_by_length"]  # bins of 10 characters, test and test_long together
    assert min(curve) == 0 and max(curve) == (int(long.max()) // 10) * 10 > int(data["train"]["source_lengths"].max())
    assert all(curve[k] == 1.0 for k in curve if k + 9 <= reach) and all(curve[k] == 0.0 for k in curve if k > reach + 10)
    assert (tmp_path / "accuracy_by_length.png").stat().st_size > 0
    assert (tmp_path / "accuracy_by_length.csv").read_text().startswith("length,exact_match\n0,1.0000\n")


def test_a_long_inputs_heat_map_is_cropped_to_the_attended_span(tmp_path):
    """A 231-token input whose attention sits on tokens 100-120: the map shows tokens 93-128
    (8 either side) and says so; a short input is shown whole."""
    from pipeline.tasks.seq2seq import HEATMAP_MARGIN, attended_span, plot_heatmap

    weights = np.full((11, 231), 0.001)
    for row, column in enumerate(range(100, 121, 2)):
        weights[row, column] = 0.9
    weights[3, 50] = 0.04  # under the floor: not attended
    assert attended_span(weights) == (100 - HEATMAP_MARGIN, 121 + HEATMAP_MARGIN)
    assert attended_span(weights[:, :60]) == (0, 60)  # short enough to show whole
    assert attended_span(np.zeros((3, 100))) == (0, 100)  # nothing attended: show everything
    path = tmp_path / "attention.png"
    plot_heatmap(weights, [str(i % 10) for i in range(231)], [str(i) for i in range(11)], "t", path)
    from PIL import Image

    width, height = Image.open(path).size
    assert width < 1500  # 36 columns, not 231 (a 231-column map was over 5,000 pixels wide)
