"""Dates written as people write them -> ISO 8601, at character level (a translation task whose
alignment is easy to read off an attention map: day with day, month with month, year with year).

A date is drawn uniformly from ``min_year``-01-01 .. ``max_year``-12-31 and written in one of
``FORMATS`` (English names, day before month wherever the order is numeric, so no string is
ambiguous; a two-digit year yy means the year in min_year .. min_year + 99 that ends in yy),
then in its own case, lower case or upper case (probabilities 0.6, 0.25, 0.15). The target is
``YYYY-MM-DD``.

With probability ``phrase_prob`` the date is embedded in a phrase of k filler words, k uniform
in 1 .. ``max_filler_words``, the first 1 .. k of them before the date and the rest after it
(words without digits or month names, e.g. "please confirm the booking for 26/11/26 before
noon"). The splits train, val and test share this distribution. The split ``test_long``
(``n_test_long`` examples) lies beyond it, as the long sentences of Bahdanau et al. 2015's
Fig. 2 lie beyond RNNenc-30's training lengths: every date sits in a phrase of
``long_min_filler_words`` .. ``long_max_filler_words`` filler words, and every input is longer
(in characters) than the longest training input. There a plain encoder–decoder must carry the
date through more characters than it was ever trained on, in one state vector.

Arrays per split: ``source`` (int16, N x S, zero-padded), ``source_lengths``, ``target`` (int16,
N x 10), ``target_lengths``, ``formats`` (index into FORMATS). Split ``vocab``: ``source_tokens``
and ``target_tokens`` ('<U5'; ids 0-3 are <pad>, <s>, </s>, <unk>) and ``joiner`` (the empty
string: tokens are characters).
"""

from __future__ import annotations

import datetime as dt
import re
import string
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"]
# Fields: {A} weekday, {a} weekday abbreviated, {B} month, {b} month abbreviated, {d} day,
# {dd} zero-padded day, {th} day with its ordinal suffix, {m} month number, {mm} zero-padded,
# {Y} four-digit year, {yy} two-digit year.
FORMATS = [
    "{A}, {d} {B} {Y}",      # Thursday, 26 November 2026
    "{dd}/{mm}/{yy}",        # 26/11/26
    "{b} {d}, {Y}",          # Nov 26, 2026
    "{d} {B} {Y}",           # 26 November 2026
    "{B} {d}, {Y}",          # November 26, 2026
    "{dd}.{mm}.{Y}",         # 26.11.2026
    "{d} {b} {Y}",           # 26 Nov 2026
    "{A} {B} {d} {Y}",       # Thursday November 26 2026
    "{dd}-{mm}-{Y}",         # 26-11-2026
    "{a} {d} {b} {yy}",      # Thu 26 Nov 26
    "{d}/{m}/{Y}",           # 26/11/2026
    "the {th} of {B} {Y}",   # the 26th of November 2026
    "{B} {th}, {Y}",         # November 26th, 2026
    "{a}, {b} {d} {Y}",      # Thu, Nov 26 2026
    "{d}.{m}.{yy}",          # 26.11.26
]
FILLERS = (
    "please confirm the booking for meeting moved to see you on arriving by train due "
    "report filed at noon after lunch before our call with team we will leave early and "
    "return late your order ships around deadline is set delivery expected by invoice dated "
    "they were born on the party starts last seen"
).split()
CHARS = sorted(set(string.ascii_letters + string.digits + " ,./-"))
SOURCE_TOKENS = SPECIALS + CHARS
TARGET_TOKENS = SPECIALS + list("0123456789-")
SOURCE_ID = {c: i for i, c in enumerate(SOURCE_TOKENS)}
TARGET_ID = {c: i for i, c in enumerate(TARGET_TOKENS)}


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_year: int = Field(1950, ge=1)
    max_year: int = Field(2049, le=9999)
    phrase_prob: float = Field(0.3, ge=0, le=1)
    max_filler_words: int = Field(8, ge=1, description="filler words of a phrase in train, val, test: 1 .. this")
    long_min_filler_words: int = Field(17, ge=1, description="test_long's phrases: this many filler words at least")
    long_max_filler_words: int = Field(24, ge=1)
    n_train: int = Field(20000, ge=1)
    n_val: int = Field(1000, ge=1)
    n_test: int = Field(2000, ge=1)
    n_test_long: int = Field(1000, ge=0)

    @model_validator(mode="after")
    def _two_digit_years_decode(self) -> "Settings":
        if not 0 <= self.max_year - self.min_year < 100:
            raise ValueError("max_year - min_year must be 0 .. 99 (a two-digit year must name one year)")
        if not self.max_filler_words < self.long_min_filler_words <= self.long_max_filler_words:
            raise ValueError("need max_filler_words < long_min_filler_words <= long_max_filler_words (test_long lies beyond the training phrases)")
        return self


def _fields(date: dt.date) -> dict[str, str]:
    suffix = "th" if 11 <= date.day <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(date.day % 10, "th")
    return {
        "A": DAYS[date.weekday()], "a": DAYS[date.weekday()][:3], "B": MONTHS[date.month - 1], "b": MONTHS[date.month - 1][:3],
        "d": str(date.day), "dd": f"{date.day:02d}", "th": f"{date.day}{suffix}", "m": str(date.month),
        "mm": f"{date.month:02d}", "Y": f"{date.year:04d}", "yy": f"{date.year % 100:02d}",
    }


def render(date: dt.date, fmt: str) -> str:
    return fmt.format(**_fields(date))


_PATTERNS = {
    "A": "(?P<A>[a-z]+)", "a": "(?P<a>[a-z]{3})", "B": "(?P<B>[a-z]+)", "b": "(?P<b>[a-z]{3})", "d": r"(?P<d>\d{1,2})",
    "dd": r"(?P<dd>\d{2})", "th": r"(?P<th>\d{1,2})(?:st|nd|rd|th)", "m": r"(?P<m>\d{1,2})", "mm": r"(?P<mm>\d{2})",
    "Y": r"(?P<Y>\d{4})", "yy": r"(?P<yy>\d{2})",
}


def parse(text: str, fmt: str, min_year: int) -> dt.date | None:
    """The date that ``fmt`` wrote somewhere in ``text`` (any case), or None: the inverse of render."""
    pattern = re.escape(fmt)
    for key, rx in _PATTERNS.items():
        pattern = pattern.replace(re.escape("{" + key + "}"), rx)
    found = re.search(pattern, text.lower())
    if not found:
        return None
    g = {k: v for k, v in found.groupdict().items() if v is not None}
    month = int(g.get("m") or g.get("mm") or 0) or next(
        i + 1 for i, name in enumerate(MONTHS) if name.lower().startswith(g.get("B") or g.get("b"))
    )
    day = int(g.get("d") or g.get("dd") or g.get("th"))
    year = int(g["Y"]) if "Y" in g else min_year + (int(g["yy"]) - min_year) % 100
    return dt.date(year, month, day)


def _case(text: str, u: float) -> str:
    return text if u < 0.6 else text.lower() if u < 0.85 else text.upper()


def examples(n: int, settings: Settings, rng: np.random.Generator, phrase_prob: float, words: tuple[int, int]) -> list[tuple[str, str, int]]:
    """``n`` (source text, ISO target, format index); a phrase has words[0] .. words[1] filler words."""
    first, last = dt.date(settings.min_year, 1, 1).toordinal(), dt.date(settings.max_year, 12, 31).toordinal()
    ordinals = rng.integers(first, last + 1, size=n)
    formats = rng.integers(0, len(FORMATS), size=n)
    cases = rng.random(n)
    in_phrase = rng.random(n) < phrase_prob
    out = []
    for i in range(n):
        date = dt.date.fromordinal(int(ordinals[i]))
        text = _case(render(date, FORMATS[formats[i]]), cases[i])
        if in_phrase[i]:
            k = int(rng.integers(words[0], words[1] + 1))
            before = int(rng.integers(1, k + 1))
            fillers = rng.choice(FILLERS, size=k)
            text = " ".join([*fillers[:before], text, *fillers[before:]])
        out.append((text, date.isoformat(), int(formats[i])))
    return out


def longer_than(n: int, min_length: int, settings: Settings, rng: np.random.Generator) -> list[tuple[str, str, int]]:
    """``n`` examples of test_long's phrases, each longer than ``min_length`` characters (drawn
    until there are enough; the phrase lengths make almost every draw long enough)."""
    words, out = (settings.long_min_filler_words, settings.long_max_filler_words), []
    while len(out) < n:
        out += [e for e in examples(n, settings, rng, 1.0, words) if len(e[0]) > min_length]
    return out[:n]


def arrays(rows: list[tuple[str, str, int]]) -> dict[str, np.ndarray]:
    source, source_lengths = encode([r[0] for r in rows], SOURCE_ID)
    target, target_lengths = encode([r[1] for r in rows], TARGET_ID)
    formats = np.array([r[2] for r in rows], dtype=np.int16)
    return {"source": source, "source_lengths": source_lengths, "target": target, "target_lengths": target_lengths, "formats": formats}


def encode(texts: list[str], index: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.array([len(t) for t in texts], dtype=np.int16)
    ids = np.zeros((len(texts), int(lengths.max())), dtype=np.int16)
    for i, t in enumerate(texts):
        ids[i, : len(t)] = [index.get(c, 3) for c in t]
    return ids, lengths


def generate(settings: Settings, seed: int, scratch: Path | None = None) -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    p, words = settings.phrase_prob, (1, settings.max_filler_words)
    rows = {name: examples(n, settings, rng, p, words) for name, n in (("train", settings.n_train), ("val", settings.n_val), ("test", settings.n_test))}
    if settings.n_test_long:
        rows["test_long"] = longer_than(settings.n_test_long, max(len(r[0]) for r in rows["train"]), settings, rng)
    splits = {name: arrays(r) for name, r in rows.items()}
    splits["vocab"] = {
        "source_tokens": np.array(SOURCE_TOKENS, dtype="<U5"),
        "target_tokens": np.array(TARGET_TOKENS, dtype="<U5"),
        "joiner": np.array([""], dtype="<U1"),
    }
    return splits
