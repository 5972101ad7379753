"""Text sources: seeding, shapes, and every label recomputed independently of the generator.

The online sources (tiny-shakespeare, imdb) are pointed at a local HTTP server that serves small
files in the publishers' formats, with their real checksums.
"""

from __future__ import annotations

import functools
import hashlib
import io
import re
import sysconfig
import tarfile
import threading
import xml.etree.ElementTree as ET
from collections import Counter
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from pipeline.datasets import arithmetic, imdb, text
from published_formats import SHAKESPEARE, aclimdb_archive
from pipeline.datasets import xml as xmlgen
from pipeline.plumbing.errors import DataError

SPLITS = ("train", "val", "test")


def assert_same(first: dict, second: dict) -> None:
    assert first.keys() == second.keys()
    for split in first:
        assert first[split].keys() == second[split].keys()
        for name, value in first[split].items():
            assert value.dtype == second[split][name].dtype
            np.testing.assert_array_equal(value, second[split][name])


def differs(first: np.ndarray, second: np.ndarray) -> bool:
    return first.shape != second.shape or not np.array_equal(first, second)


def no_object_arrays(data: dict) -> None:
    """fetch writes each split with np.savez: only numeric, bool or fixed-width unicode arrays."""
    for arrays in data.values():
        for value in arrays.values():
            assert value.dtype.kind in "iubfU", value.dtype


# ------------------------------------------------------------------------------ local server


class QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(folder, base URL): files put in the folder are served on 127.0.0.1."""
    folder = tmp_path_factory.mktemp("served")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietFiles, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


# ------------------------------------------------------------------------------ arithmetic

ARITH = arithmetic.Settings(max_digits=5, distractor_prob=0.3, n_train=3000, n_val=200, n_test=200, n_test_long=300, test_long_max_digits=9)


@pytest.fixture(scope="module")
def arith():
    return arithmetic.generate(ARITH, seed=5)


def decoded(split: dict, inputs: str = "inputs", lengths: str = "input_lengths") -> list[str]:
    chars = arithmetic.CHARS
    return ["".join(chars[i] for i in row[:n]) for row, n in zip(split[inputs], split[lengths])]


def test_arithmetic_is_seeded(arith):
    assert_same(arith, arithmetic.generate(ARITH, seed=5))
    other = arithmetic.generate(ARITH, seed=6)
    for split in (*SPLITS, "test_long"):
        assert differs(arith[split]["inputs"], other[split]["inputs"])
        assert differs(arith[split]["targets"], other[split]["targets"])


def test_arithmetic_targets_are_the_exact_results(arith):
    for split in (*SPLITS, "test_long"):
        inputs, targets = decoded(arith[split]), decoded(arith[split], "targets", "target_lengths")
        assert len(inputs) == len(targets) == len(arith[split]["inputs"])
        for noisy, target in zip(inputs, targets):
            clean = re.sub("[a-z]", "", noisy)
            a, op, b = re.fullmatch(r"(\d+)([+-])(\d+)", clean).groups()
            assert target == str(int(a) + int(b) if op == "+" else int(a) - int(b))
            low, high = (1, ARITH.max_digits) if split != "test_long" else (ARITH.max_digits + 1, ARITH.test_long_max_digits)
            for operand in (a, b):
                assert low <= len(operand) <= high
                assert len(operand) == 1 or operand[0] != "0"


def test_arithmetic_paper_example_round_trips():
    # Jozefowicz et al.'s example: its letters strip to 3369-13994433 = -13991064
    example = "3e36d9-h1h39f94eeh43keg3c"
    ids, lengths = arithmetic.encode([example, "-13991064"])
    assert ids.dtype == np.int16 and lengths.tolist() == [25, 9]
    assert arithmetic.decode(ids[0], lengths[0]) == example
    assert arithmetic.decode(ids[1], lengths[1]) == "-13991064" == str(3369 - 13994433)
    assert re.sub("[a-z]", "", example) == "3369-13994433"


def test_arithmetic_arrays_and_vocabulary(arith):
    chars = arith["vocab"]["chars"]
    assert chars.dtype == np.dtype("<U1") and list(chars) == arithmetic.CHARS
    assert chars[0] == "" and chars[1] == "^" and chars[2] == "$"
    no_object_arrays(arith)
    for split in (*SPLITS, "test_long"):
        d = arith[split]
        for name in ("inputs", "input_lengths", "targets", "target_lengths"):
            assert d[name].dtype == np.int16
        for ids, lengths in ((d["inputs"], d["input_lengths"]), (d["targets"], d["target_lengths"])):
            assert ids.shape[1] == lengths.max()
            inside = np.arange(ids.shape[1])[None, :] < lengths[:, None]
            assert (ids[~inside] == 0).all() and (ids[inside] > arithmetic.END).all()
    assert len(arith["train"]["inputs"]) == ARITH.n_train and len(arith["test_long"]["inputs"]) == ARITH.n_test_long


def test_arithmetic_distractor_rate(arith):
    # each of the len(clean)+1 slots holds a geometric run: mean p / (1 - p) letters
    inputs = decoded(arith["train"])
    letters = sum(len(re.sub("[^a-z]", "", s)) for s in inputs)
    slots = sum(len(re.sub("[a-z]", "", s)) + 1 for s in inputs)
    p = ARITH.distractor_prob
    assert letters / slots == pytest.approx(p / (1 - p), abs=0.03)
    clean = arithmetic.generate(ARITH.model_copy(update={"distractor_prob": 0.0, "n_test_long": 0}), seed=5)
    assert "test_long" not in clean
    assert not any(re.search("[a-z]", s) for s in decoded(clean["train"]))


def test_arithmetic_settings_are_validated():
    with pytest.raises(ValidationError):
        arithmetic.Settings(max_digits=8, test_long_max_digits=8)
    with pytest.raises(ValidationError):
        arithmetic.Settings(digits=8)
    arithmetic.Settings(max_digits=8, test_long_max_digits=8, n_test_long=0)


# ------------------------------------------------------------------------------------- xml

XML = xmlgen.Settings(n_tags=12, max_depth=4, max_children=3, n_train_chars=20000, n_val_chars=3000, n_test_chars=3000)


@pytest.fixture(scope="module")
def xml_data():
    return xmlgen.generate(XML, seed=2)


def test_xml_closing_mask_on_a_hand_made_document():
    doc, mask = xmlgen.render(("ab", [("cde", []), ("ab", [])]))
    assert doc == "<ab><cde></cde><ab></ab></ab>"
    #               0123456789012345678901234567
    marked = [i for i, flag in enumerate(mask) if flag]
    assert marked == [11, 12, 13, 14, 21, 22, 23, 26, 27, 28]
    assert "".join(doc[i] for i in marked) == "cde>ab>ab>"


def test_xml_is_seeded(xml_data):
    assert_same(xml_data, xmlgen.generate(XML, seed=2))
    other = xmlgen.generate(XML, seed=3)
    for split in SPLITS:
        assert differs(xml_data[split]["ids"], other[split]["ids"])
    assert differs(xml_data["vocab"]["tags"], other["vocab"]["tags"])


def depth(element: ET.Element) -> int:
    return 1 + max((depth(child) for child in element), default=0)


def test_xml_documents_are_well_formed_and_the_mask_exact(xml_data):
    chars, tags = xml_data["vocab"]["chars"], set(xml_data["vocab"]["tags"].tolist())
    assert len(tags) == XML.n_tags and all(re.fullmatch("[a-z]{2,6}", t) for t in tags)
    no_object_arrays(xml_data)
    for split in SPLITS:
        ids, closing = xml_data[split]["ids"], xml_data[split]["closing"]
        assert ids.dtype == np.int16 and closing.dtype == bool and ids.shape == closing.shape
        assert len(ids) >= getattr(XML, f"n_{split}_chars")
        stream = "".join(chars[ids].tolist())
        assert stream.endswith("\n")
        documents = stream[:-1].split("\n")
        assert len(documents) > 5
        for doc in documents:
            root = ET.fromstring(doc)  # raises on anything malformed
            assert depth(root) <= XML.max_depth
            assert {e.tag for e in root.iter()} <= tags
        expected = np.zeros(len(stream), dtype=bool)
        for match in re.finditer(r"</([a-z]+>)", stream):
            expected[match.start(1) : match.end(1)] = True
        np.testing.assert_array_equal(closing, expected)


def test_xml_recall_marks_closings_after_children_only():
    doc = "<ab><cd></cd><abc><ab></ab></abc></ab>\n"
    marked = np.flatnonzero(xmlgen.recall_positions(doc)).tolist()
    assert [doc[i - 2 : i + 1] for i in marked] == ["</a", "</a"]
    assert marked == [doc.index("</abc>") + 2, doc.rindex("</ab>") + 2]


def test_xml_recall_is_within_the_closing_mask(xml_data):
    for split in SPLITS:
        recall, closing = xml_data[split]["recall"], xml_data[split]["closing"]
        assert recall.dtype == bool and recall.shape == closing.shape
        assert recall.any() and not (recall & ~closing).any()


def test_xml_true_bits_on_a_hand_made_document():
    # Vocabulary ab, abc, cd: N("") = 3, N("a") = N("ab") = 2, N("abc") = N("c") = N("cd") = 1.
    settings = xmlgen.Settings(n_tags=3, max_depth=2, max_children=2)
    doc = "<ab><cd></cd><abc></abc></ab>\n"
    bits = xmlgen.true_bits(doc, ["ab", "abc", "cd"], settings)
    expected = np.zeros(len(doc))
    expected[1] = np.log2(3 / 2)  # root: "a" (2 of 3 names)
    expected[3] = 1.0  # ">" after "ab": "ab" or "abc"
    expected[5] = np.log2(3 / 2) + np.log2(3)  # 0 of 0..2 children so far: open one (2/3), "c" (1/3)
    expected[10] = 0.0  # depth 2 = max_depth: its "/" is certain
    expected[14] = np.log2(2) + np.log2(3 / 2)  # 1 child so far: open another (1/2), "a" (2/3)
    expected[16] = 1.0  # "c": "abc", not "ab" (1/2); its ">" is then certain
    expected[26] = 0.0  # 2 children: the root must close
    np.testing.assert_allclose(bits, expected, atol=1e-6)


def test_xml_bits_are_zero_exactly_where_memory_decides_and_average_the_entropy(xml_data):
    tags = xml_data["vocab"]["tags"].tolist()
    for split in SPLITS:
        bits, closing = xml_data[split]["bits"], xml_data[split]["closing"]
        assert bits.dtype == np.float32 and bits.shape == closing.shape
        assert (bits >= 0).all() and (bits[closing] == 0).all()
    # Per element the generator draws a name (log2 n_tags bits, spread over its characters) and,
    # below max_depth, a child count (log2(max_children + 1) bits, spread over its "<" choices):
    # the realised choices' probabilities multiply to exactly these, document by document.
    stream = xmlgen.decode(xml_data["train"]["ids"])
    levels = [level for doc in stream[:-1].split("\n") for level in element_depths(ET.fromstring(doc))]
    inner = sum(level < XML.max_depth for level in levels)
    expected = len(levels) * np.log2(len(tags)) + inner * np.log2(XML.max_children + 1)
    assert xml_data["train"]["bits"].astype(np.float64).sum() == pytest.approx(expected, rel=1e-5)


def element_depths(element: ET.Element, level: int = 1) -> list[int]:
    return [level] + [d for child in element for d in element_depths(child, level + 1)]


def test_xml_reaches_its_depth_limit():
    data = xmlgen.generate(XML.model_copy(update={"max_depth": 3, "n_train_chars": 5000}), seed=0)
    stream = xmlgen.decode(data["train"]["ids"])
    depths = [depth(ET.fromstring(doc)) for doc in stream.split("\n")[:-1]]
    assert max(depths) == 3


# ----------------------------------------------------------------------------- char corpora


def test_char_streams_split_contiguously_and_decode_back():
    corpus = "The quick brown fox jumps over the lazy dog.\n" * 40 + "zz"
    settings = text.CorpusSettings(val_fraction=0.1, test_fraction=0.2)
    data = text.char_streams(corpus, settings, "toy")
    n = len(corpus)
    assert [len(data[s]["ids"]) for s in SPLITS] == [n - round(0.1 * n) - round(0.2 * n), round(0.1 * n), round(0.2 * n)]
    chars = data["vocab"]["chars"]
    assert chars[0] == text.UNKNOWN and list(chars[1:]) == sorted(set(corpus))  # all in the training part
    whole = np.concatenate([data[s]["ids"] for s in SPLITS])
    assert whole.dtype == np.int16
    assert text.decode(whole, chars) == corpus


def test_char_streams_map_rare_and_unseen_characters_to_unknown():
    corpus = "aaaa bbbb c" + "aaaa bbbb éé"  # 'é' appears only in the held-out part
    settings = text.CorpusSettings(val_fraction=0.1, test_fraction=0.1, min_char_count=2)
    data = text.char_streams(corpus, settings, "toy")
    assert list(data["vocab"]["chars"]) == [text.UNKNOWN, " ", "a", "b"]
    whole = text.decode(np.concatenate([data[s]["ids"] for s in SPLITS]), data["vocab"]["chars"])
    assert whole == re.sub("[cé]", text.UNKNOWN, corpus)


def test_char_streams_reject_a_text_too_short_to_split():
    with pytest.raises(DataError, match="too few"):
        text.char_streams("abcdef", text.CorpusSettings(), "toy")


def test_pydoc_topics_is_the_help_text():
    from pydoc_data.topics import topics

    corpus = "".join(topics[k] for k in sorted(topics))
    settings = text.pydoc_topics.Settings()
    data = text.pydoc_topics.generate(settings, seed=0)
    assert_same(data, text.pydoc_topics.generate(settings, seed=1))  # a real corpus ignores the seed
    chars = data["vocab"]["chars"]
    known = set(chars[1:].tolist())
    whole = text.decode(np.concatenate([data[s]["ids"] for s in SPLITS]), chars)
    assert whole == "".join(c if c in known else text.UNKNOWN for c in corpus)
    assert sum(c not in known for c in corpus) < 20  # only characters absent from the training part
    n = len(corpus)
    assert len(data["val"]["ids"]) == round(0.05 * n) == len(data["test"]["ids"])
    capped = text.pydoc_topics.generate(text.pydoc_topics.Settings(max_chars=10000, min_char_count=1), seed=0)
    assert sum(len(capped[s]["ids"]) for s in SPLITS) == 10000


def test_python_stdlib_is_the_library_source():
    files = text.stdlib_files()
    root = Path(sysconfig.get_paths()["stdlib"])
    rel = [f.relative_to(root).as_posix() for f in files]
    assert rel == sorted(rel) and "os.py" in rel and "json/__init__.py" in rel
    assert not any(set(r.split("/")) & {"site-packages", "test", "tests", "__pycache__"} for r in rel)
    settings = text.python_stdlib.Settings(max_chars=60000, val_fraction=0.1, test_fraction=0.1)
    data = text.python_stdlib.generate(settings, seed=0)
    expected, total = [], 0
    for f in files:  # every file read independently, in order, until 60,000 characters
        source = f.read_text(encoding="utf-8")
        expected.append(source if source.endswith("\n") else source + "\n")
        total += len(expected[-1])
        if total >= 60000:
            break
    corpus = "".join(expected)[:60000]
    whole = text.decode(np.concatenate([data[s]["ids"] for s in SPLITS]), data["vocab"]["chars"])
    known = set(data["vocab"]["chars"][1:].tolist())
    assert whole == "".join(c if c in known else text.UNKNOWN for c in corpus)
    assert [len(data[s]["ids"]) for s in SPLITS] == [48000, 6000, 6000]


def test_tiny_shakespeare_downloads_checks_and_splits(served, tmp_path):
    folder, base = served
    (folder / "input.txt").write_text(SHAKESPEARE, encoding="utf-8")
    settings = text.tiny_shakespeare.Settings(
        url=f"{base}/input.txt", sha256=hashlib.sha256(SHAKESPEARE.encode()).hexdigest(), val_fraction=0.1, test_fraction=0.1
    )
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    data = text.tiny_shakespeare.generate(settings, seed=0, scratch=scratch)
    assert (scratch / "input.txt").read_text(encoding="utf-8") == SHAKESPEARE  # the download stays in scratch
    assert_same(data, text.tiny_shakespeare.generate(settings, seed=9))  # no scratch: a temporary folder
    chars = data["vocab"]["chars"]
    assert list(chars[1:]) == sorted(set(SHAKESPEARE))
    assert text.decode(np.concatenate([data[s]["ids"] for s in SPLITS]), chars) == SHAKESPEARE
    n = len(SHAKESPEARE)
    assert [len(data[s]["ids"]) for s in SPLITS] == [n - 2 * round(0.1 * n), round(0.1 * n), round(0.1 * n)]
    assert text.decode(data["val"]["ids"], chars) == SHAKESPEARE[n - 2 * round(0.1 * n) : n - round(0.1 * n)]


def test_tiny_shakespeare_refuses_a_changed_file(served, tmp_path):
    folder, base = served
    (folder / "changed.txt").write_text(SHAKESPEARE + "extra", encoding="utf-8")
    settings = text.tiny_shakespeare.Settings(url=f"{base}/changed.txt", sha256=hashlib.sha256(SHAKESPEARE.encode()).hexdigest())
    with pytest.raises(DataError, match="changed.txt.*checksum mismatch"):
        text.tiny_shakespeare.generate(settings, seed=0, scratch=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_tiny_shakespeare_defaults_are_the_published_file():
    settings = text.tiny_shakespeare.Settings()
    assert settings.url == "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
    assert settings.sha256 == "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
    with pytest.raises(ValidationError):
        text.tiny_shakespeare.Settings(sha256="not-a-hash")
    with pytest.raises(ValidationError):
        text.CorpusSettings(val_fraction=0.6, test_fraction=0.4)


# ------------------------------------------------------------------------------------ imdb

@pytest.fixture(scope="module")
def imdb_archive(served):
    folder, base = served
    path = folder / "aclImdb_v1.tar.gz"
    expected = aclimdb_archive(path, n_train=5, n_test=3)
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    return imdb.Settings(url=f"{base}/aclImdb_v1.tar.gz", md5=md5, val_fraction=0.2, vocab_size=100), expected


def test_imdb_labels_tokens_and_vocabulary(imdb_archive):
    settings, expected = imdb_archive
    data = imdb.generate(settings, seed=0)
    no_object_arrays(data)
    words = data["vocab"]["words"].tolist()
    assert words[:2] == ["<pad>", "<unk>"]
    index = {w: i for i, w in enumerate(words)}
    assert [len(data[s]["labels"]) for s in SPLITS] == [8, 2, 6]
    train_counts = Counter()
    for split in SPLITS:
        d = data[split]
        assert d["tokens"].dtype == np.int32 and d["lengths"].dtype == np.int16 and d["labels"].dtype == np.int8
        assert d["tokens"].shape[1] == d["lengths"].max()
        folder = "test" if split == "test" else "train"
        seen = set()
        for row, n, label, rating in zip(d["tokens"], d["lengths"], d["labels"], d["ratings"]):
            assert (row[n:] == 0).all() and (row[:n] > 0).all()
            decoded = [words[i] for i in row[:n]]
            # the review whose tokens, with out-of-vocabulary words as <unk>, give this row
            matches = [key for key in expected if key[0] == folder and [w if w in index else "<unk>" for w in key[1:]] == decoded]
            assert len(matches) == 1
            assert expected[matches[0]] == (folder, label, rating)
            assert label == (rating >= 7)
            seen.add(matches[0])
            if split == "train":
                train_counts.update(matches[0][1:])
        assert len(seen) == len(d["labels"])  # no review twice
    # the vocabulary: training tokens by falling count, ties alphabetical
    ranked = sorted(train_counts.items(), key=lambda item: (-item[1], item[0]))
    assert words[2:] == [w for w, _ in ranked]
    assert words[2] == "movie"


def test_imdb_is_seeded_and_limits_apply(imdb_archive):
    settings, _ = imdb_archive
    first = imdb.generate(settings, seed=0)
    assert_same(first, imdb.generate(settings, seed=0))
    other = imdb.generate(settings, seed=1)
    assert differs(first["train"]["tokens"], other["train"]["tokens"])
    assert differs(first["test"]["tokens"], other["test"]["tokens"])
    small = imdb.generate(settings.model_copy(update={"max_examples_per_split": 2, "max_length": 3, "vocab_size": 2}), seed=0)
    assert [len(small[s]["labels"]) for s in SPLITS] == [2, 2, 2]
    assert len(small["vocab"]["words"]) == 4
    words = small["vocab"]["words"].tolist()
    assert "movie" in words  # the most frequent word (ties with "don't" and "the" go alphabetically)
    first = "the" if "the" in words else "<unk>"
    for split in SPLITS:
        assert small[split]["tokens"].shape[1] == 3 and (small[split]["lengths"] == 3).all()
        # truncation keeps each review's first tokens: "the movie movie" or "the movie <word>"
        rows = [[words[i] for i in row] for row in small[split]["tokens"]]
        assert all(row[:2] == [first, "movie"] for row in rows)


def test_imdb_refuses_a_wrong_checksum_and_a_foreign_archive(imdb_archive, served, tmp_path):
    settings, _ = imdb_archive
    folder, base = served
    with pytest.raises(DataError, match="md5 checksum mismatch"):
        imdb.generate(settings.model_copy(update={"md5": "0" * 32}), seed=0, scratch=tmp_path)
    assert list(tmp_path.iterdir()) == []
    with tarfile.open(folder / "other.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("something/else.txt")
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(DataError, match="no aclImdb/train"):
        imdb.generate(settings.model_copy(update={"url": f"{base}/other.tar.gz", "md5": None}), seed=0)


def test_imdb_tokenizer():
    assert imdb.tokenize("I DIDN'T like it.<br /><br />Not at all!! Café_au-lait?") == [
        "i", "didn't", "like", "it", "not", "at", "all", "!", "!", "café", "au", "lait", "?"
    ]


def test_xml_task_reports_the_floor_and_the_bits_spent_on_closing_tags(tmp_path):
    # A model that predicts the uniform distribution pays log2(V) bits on every character: its
    # excess over the floor and its bits on closing tags are then known in closed form.
    import torch
    from types import SimpleNamespace

    from lightning_modules.language_model import LanguageModel
    from pipeline.tasks.language import EVAL_ROWS, XMLTask

    data = xmlgen.generate(XML.model_copy(update={"n_test_chars": 4000}), seed=5)
    for split, arrays in data.items():
        np.savez(tmp_path / f"{split}.npz", **arrays)
    vocab = len(data["vocab"]["chars"])
    model = LanguageModel(cell="lstm", vocab_size=vocab, hidden_size=8)
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.zero_()
    metrics = XMLTask().evaluate(model, tmp_path, {}, tmp_path, 0, "uniform", SimpleNamespace(sequence_length=50)).metrics
    test = data["test"]
    n = (len(test["ids"]) - 1) // EVAL_ROWS * EVAL_ROWS
    floor = test["bits"][1 : n + 1].astype(np.float64).mean()
    assert metrics["test_bpc"] == pytest.approx(np.log2(vocab), rel=1e-5)
    assert metrics["floor_bpc"] == pytest.approx(floor, rel=1e-5)
    assert metrics["excess_bpc"] == pytest.approx(np.log2(vocab) - floor, rel=1e-5)
    assert metrics["closing_bpc"] == pytest.approx(np.log2(vocab) * test["closing"][1 : n + 1].mean(), rel=1e-5)
    assert 0.2 < floor < 1.0  # names and child counts: a few bits per element of ~10 characters
    recall = test["recall"][1 : n + 1]
    assert recall.sum() > 10 and not (recall & ~test["closing"][1 : n + 1]).any()
    assert metrics["recall_accuracy"] == 0.0  # a uniform guess's argmax is id 0, the newline


def test_row_windows_continue_each_row_from_one_batch_to_the_next():
    from pipeline.tasks.language import row_windows

    ids = np.arange(1000)
    x, y = row_windows(ids, length=10, rows=4, offset=3)
    per_row = (1000 - 3 - 1) // 4  # 249 characters a row: 24 windows of 10
    assert x.shape == (24 * 4, 10)
    np.testing.assert_array_equal(y, x + 1)  # the next character
    for k in range(24):  # batch k = rows 4k .. 4k + 3: window k of each stretch
        for r in range(4):
            np.testing.assert_array_equal(x[4 * k + r], 3 + r * per_row + 10 * k + np.arange(10))


@pytest.mark.parametrize("cell", ["lstm", "rnn"])
def test_carried_state_trains_as_if_each_row_were_read_in_one_piece(cell, tmp_path):
    """With ``carry_state``, two consecutive windows of a row give the same forward pass as one
    window twice as long (the state crosses over), and a Lightning epoch over the row-ordered
    batches has the losses of the stream read in two halves with the state passed along."""
    import pytorch_lightning as pl
    import torch

    from lightning_modules.language_model import LanguageModel
    from pipeline.tasks.language import row_windows
    from pipeline.training.loaders import batches

    torch.manual_seed(0)
    model = LanguageModel(cell=cell, vocab_size=7, carry_state=True, hidden_size=8, embedding_dim=4, lr=1e-12)  # weights stay put
    assert model.hparams.carry_state
    ids = np.random.default_rng(0).integers(0, 7, 2 * 3 * 12 + 1)
    x, y = row_windows(ids, length=12, rows=3)  # 3 rows of 24: two batches of 3 windows
    model.eval()
    with torch.no_grad():
        whole, _ = model(torch.from_numpy(np.concatenate([x[0:3], x[3:6]], axis=1)))
        first, state = model(torch.from_numpy(x[0:3]))
        second, _ = model(torch.from_numpy(x[3:6]), state)
    torch.testing.assert_close(torch.cat([first, second], 1), whole)

    seen = []

    class Losses(pl.Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            seen.append(float(outputs["loss"]))

    model.train()
    loader = batches([x, y, np.ones_like(x, dtype=np.float32)], 3, shuffle=False)
    pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
               callbacks=[Losses()], default_root_dir=tmp_path, accelerator="cpu", limit_val_batches=0).fit(model, loader)
    expected = [LanguageModel.nll(logits, torch.from_numpy(y[i : i + 3]), torch.ones(3, 12)).item() for i, logits in ((0, first), (3, second))]
    assert seen == pytest.approx(expected, rel=1e-4)  # the second batch started from the first one's state
    assert all(not t.requires_grad for t in torch.utils._pytree.tree_leaves(model._carried["train"]))
