"""The tutorial's ten claims (REFERENCE.md, last section), each judged on this project's own runs.

A claim names the experiments it compares and carries a rule: a function of the ``Evidence``
(every experiment's metrics, with the experiments that differ only by ``seed`` grouped) that
returns a verdict and a one-line explanation. ``zoo compare`` writes the results to
``reports/claims.md`` and ``reports/index.html``; nobody edits a verdict by hand.

Verdicts: ``supported``, ``not supported``, ``not enough data`` (an experiment or metric is
missing; the explanation names it). Where an experiment has several seeds its number is the
mean ± the standard deviation over seeds, and a difference no larger than the two spreads
added is "within noise"; where there is one seed the spread is unknown, and the explanation
says so. A difference also has to reach a fixed margin (the least that matters: 0.05 accuracy,
0.02 bits per character, one mode) to count. The thresholds are part of each rule, next to
the claim they judge.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Callable, Optional

SUPPORTED, NOT_SUPPORTED, NOT_ENOUGH = "supported", "not supported", "not enough data"


class Missing(Exception):
    """Raised inside a rule when a number it needs is not there; becomes 'not enough data'."""


@dataclass(frozen=True)
class Stat:
    """One metric of one experiment, over its seeds."""

    values: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def spread(self) -> Optional[float]:
        """Standard deviation over seeds; None with one seed (not measured)."""
        return statistics.stdev(self.values) if self.n > 1 else None

    def __str__(self) -> str:
        text = _fmt(self.mean)
        return f"{text} ± {_fmt(self.spread)} ({self.n} seeds)" if self.n > 1 else text


def _fmt(x: float) -> str:
    return f"{x:.0f}" if float(x).is_integer() and abs(x) >= 1 else f"{x:.3g}" if abs(x) < 100 else f"{x:.1f}"


@dataclass
class Evidence:
    """What the rules read: ``metrics[experiment]`` (the ``metrics/<experiment>.json`` dict, plus
    ``parameters`` from ``models/<experiment>/run.json``; ``reference-<dataset>`` for the image
    datasets' reference classifiers) and ``seeds[experiment]``: the experiments that differ from
    it only by ``seed`` (itself included). Every number a rule reads is recorded in ``read``."""

    metrics: dict[str, dict]
    seeds: dict[str, tuple[str, ...]] = field(default_factory=dict)
    read: list[tuple[tuple[str, ...], str, Stat]] = field(default_factory=list)

    def stat(self, experiment: str, key: str) -> Stat:
        names = self.seeds.get(experiment, (experiment,))
        values, measured = [], []
        for name in names:
            value = self.metrics.get(name, {}).get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                values.append(float(value))
                measured.append(name)
        if not values:
            if not any(name in self.metrics for name in names):
                raise Missing(f"`{experiment}` has no metrics")
            raise Missing(f"`{experiment}` has no finite `{key}`")
        stat = Stat(tuple(values))
        entry = (tuple(measured), key, stat)
        if entry not in self.read:
            self.read.append(entry)
        return stat

    def has(self, experiment: str, key: str) -> bool:
        try:
            self.stat(experiment, key)
            return True
        except Missing:
            return False


@dataclass(frozen=True)
class Difference:
    """``a`` against ``b`` on one metric: ``gain`` > 0 means ``a`` is better."""

    a: Stat
    b: Stat
    gain: float
    noise: Optional[float]  # the two spreads added; None when neither has several seeds

    @property
    def within_noise(self) -> bool:
        return self.noise is not None and abs(self.gain) <= self.noise

    def beats(self, margin: float) -> bool:
        """``a`` clearly better: by at least ``margin`` (the least difference that matters) and,
        where there are seeds, by more than the noise."""
        return self.gain >= margin and (self.noise is None or self.gain > self.noise)

    def worse(self, margin: float) -> bool:
        return -self.gain >= margin and (self.noise is None or -self.gain > self.noise)

    def describe(self, margin: float) -> str:
        text = f"difference {self.gain:+.3g}"
        if self.noise is None:
            text += " (one seed: spread not measured)"
        else:
            text += f", {'within' if self.within_noise else 'beyond'} noise (±{self.noise:.3g} over seeds)"
        return text + (f", under the margin {margin:g}" if abs(self.gain) < margin else "")


def compare(ev: Evidence, a: str, b: str, key: str, higher_is_better: bool = True) -> Difference:
    sa, sb = ev.stat(a, key), ev.stat(b, key)
    gain = (sa.mean - sb.mean) * (1 if higher_is_better else -1)
    spreads = [s.spread for s in (sa, sb)]
    known = [s for s in spreads if s is not None]
    # one side with several seeds: assume the other side varies as much
    noise = sum(s if s is not None else known[0] for s in spreads) if known else None
    return Difference(sa, sb, gain, noise)


Rule = Callable[[Evidence], tuple[str, str]]


@dataclass(frozen=True)
class Claim:
    number: int
    text: str
    experiments: tuple[str, ...]  # what it compares (a representative of each group of seeds)
    rule: Rule
    criterion: str  # the rule in words, shown with the verdict


@dataclass(frozen=True)
class ClaimResult:
    claim: Claim
    verdict: str
    explanation: str
    numbers: tuple[tuple[tuple[str, ...], str, Stat], ...]  # (experiments over seeds, metric, value) the rule read

    @property
    def within_noise(self) -> bool:
        return "within noise" in self.explanation


def _parts(results: list[tuple[str, Optional[bool], str]]) -> tuple[str, str]:
    """Combine (part, holds or None when its data is missing, text): supported when every part
    with data holds; not enough data when none has data."""
    judged = [ok for _, ok, _ in results if ok is not None]
    text = "; ".join(f"{name}: {text}" for name, _, text in results)
    if not judged:
        return NOT_ENOUGH, text
    return (SUPPORTED if all(judged) else NOT_SUPPORTED), text


# ------------------------------------------------------------------------------ the rules
# Thresholds: accuracies on a 0..1 scale (parity chance = 0.5), bits per character, modes.

CHANCE_PARITY = 0.5
FAILS_BELOW = 0.6  # claim 1: "fails" = longer-string accuracy under 0.6 (chance 0.5)
SUCCEEDS_FROM = 0.9  # claim 1: "succeeds" = at least 0.9
ACC_MARGIN = 0.05  # one-seed margin for accuracy differences
BPC_MARGIN = 0.02  # one-seed margin for bits per character
DECADES = 2.0  # claim 2: "far faster" = at least 100x more decay over the sequence


def claim1(ev: Evidence):
    key = "accuracy_longer"
    rnn = ev.stat("parity-long-rnn", key)
    gated = {name: ev.stat(name, key) for name in ("parity-long-lstm", "parity-long-gru")}
    fails = rnn.mean < FAILS_BELOW
    succeed = {n: s.mean >= SUCCEEDS_FROM for n, s in gated.items()}
    text = f"RNN {rnn} ({'fails' if fails else 'does not fail'}); " + ", ".join(
        f"{n.removeprefix('parity-long-').upper()} {s} ({'succeeds' if succeed[n] else 'does not succeed'})" for n, s in gated.items()
    )
    return (SUPPORTED if fails and all(succeed.values()) else NOT_SUPPORTED), text


def claim2(ev: Evidence):
    # grad_log10_decay = log10(‖∂C_T/∂h_1‖ / ‖∂C_T/∂h_T‖) (pipeline.diagnostics): more negative = vanished more.
    d = compare(ev, "parity-long-lstm", "parity-long-rnn", "grad_log10_decay")
    text = f"log10 decay over the sequence: RNN {d.b}, LSTM {d.a}; the RNN's gradient shrinks {d.gain:.1f} decades more"
    if d.noise is not None and d.within_noise:
        return NOT_SUPPORTED, text + f", within noise (±{d.noise:.2g})"
    return (SUPPORTED if d.gain >= DECADES else NOT_SUPPORTED), text + f" (needs ≥ {DECADES:g})"


def claim3(ev: Evidence):
    key = "accuracy_train_lengths"
    clipped = ev.stat("parity-rnn-biginit-clip", key)
    if "parity-rnn-biginit" in ev.metrics and not ev.has("parity-rnn-biginit", key):
        ok = clipped.mean >= CHANCE_PARITY + ACC_MARGIN
        return (SUPPORTED if ok else NOT_SUPPORTED), f"without clipping `{key}` is not finite (diverged); with clipping {clipped}"
    d = compare(ev, "parity-rnn-biginit-clip", "parity-rnn-biginit", key)
    ok = d.beats(ACC_MARGIN) and clipped.mean >= CHANCE_PARITY + ACC_MARGIN
    return (SUPPORTED if ok else NOT_SUPPORTED), f"accuracy on training lengths with clipping {d.a}, without {d.b}: {d.describe(ACC_MARGIN)}"


def claim4(ev: Evidence):
    d = compare(ev, "parity-long-lstm", "parity-long-lstm-fb0", "accuracy_longer")
    text = f"accuracy beyond the training lengths, forget bias 1: {d.a}, 0: {d.b}; {d.describe(ACC_MARGIN)}"
    return (SUPPORTED if d.beats(ACC_MARGIN) else NOT_SUPPORTED), text


def claim5(ev: Evidence):
    parts = []
    for task, gru, lstm, key, higher, margin in (
        ("parity", "parity-long-gru", "parity-long-lstm", "accuracy_longer", True, ACC_MARGIN),
        ("xml", "xml-gru", "xml-lstm", "test_bpc", False, BPC_MARGIN),
    ):
        try:
            d = compare(ev, gru, lstm, key, higher)
            pg, pl = ev.stat(gru, "parameters").mean, ev.stat(lstm, "parameters").mean
        except Missing as missing:
            parts.append((task, None, str(missing)))
            continue
        as_good = not d.worse(margin)
        parts.append((task, as_good and pg < pl, f"`{key}` GRU {d.a} vs LSTM {d.b}, {d.describe(margin)}; {pg:,.0f} vs {pl:,.0f} parameters"))
    return _parts(parts)


GREFF_VANILLA = "xml-lstm-peephole"
GREFF_VARIANTS = ("nig", "nfg", "nog", "niaf", "noaf", "np", "cifg", "fgr")


def claim6(ev: Evidence):
    key = "test_bpc"
    vanilla = ev.stat(GREFF_VANILLA, key)
    variants = {v: ev.stat(f"xml-lstm-{v}", key) for v in GREFF_VARIANTS}
    cost = {v: compare(ev, GREFF_VANILLA, f"xml-lstm-{v}", key, higher_is_better=False) for v in GREFF_VARIANTS}  # gain > 0: vanilla better
    beat = [v for v, d in cost.items() if d.worse(BPC_MARGIN)]
    worst_two = sorted(variants, key=lambda v: variants[v].mean, reverse=True)[:2]
    cheap = {v: not cost[v].beats(BPC_MARGIN) for v in ("cifg", "np")}
    ok = not beat and set(worst_two) == {"nfg", "noaf"} and all(cheap.values())
    parts = [
        f"vanilla {vanilla} bits/char",
        f"clearly better than vanilla: {', '.join(v.upper() for v in beat) or 'none'}",
        f"the two worst: {', '.join(f'{v.upper()} {variants[v]}' for v in worst_two)} (claim: NFG, NOAF)",
        *(f"{v.upper()} costs {cost[v].describe(BPC_MARGIN)}" for v in cheap),
    ]
    return (SUPPORTED if ok else NOT_SUPPORTED), "; ".join(parts)


DATES_PLAIN = "dates-seq2seq"
DATES_ATTENTION = ("dates-seq2seq-bahdanau", "dates-seq2seq-luong", "dates-transformer")


def claim7(ev: Evidence):
    parts = []
    for model in DATES_ATTENTION:
        try:
            overall = compare(ev, model, DATES_PLAIN, "exact_match")
            long = compare(ev, model, DATES_PLAIN, "exact_match_long")
        except Missing as missing:
            parts.append((model, None, str(missing)))
            continue
        ok = overall.beats(ACC_MARGIN) and long.gain > overall.gain
        parts.append((model, ok, f"exact match {overall.a} vs plain {overall.b}, {overall.describe(ACC_MARGIN)}; on long inputs the gain is {long.gain:+.3g} ({'larger' if long.gain > overall.gain else 'not larger'})"))
    return _parts(parts)


MODE_MARGIN = 1.0  # one mode
HQ_MARGIN = 5.0  # percentage points of high-quality samples


def claim8(ev: Evidence):
    parts = []
    for dataset in ("ring", "grid"):
        try:
            hq = compare(ev, f"{dataset}-gan", f"{dataset}-gan-minimax", "high_quality_pct")
            modes = compare(ev, f"{dataset}-gan", f"{dataset}-gan-minimax", "modes_covered")
        except Missing as missing:
            parts.append((dataset, None, str(missing)))
            continue
        ok = hq.beats(HQ_MARGIN) and not modes.worse(MODE_MARGIN)
        parts.append((dataset, ok, f"% high quality non-saturating {hq.a} vs minimax {hq.b}, {hq.describe(HQ_MARGIN)}; modes {modes.a} vs {modes.b}"))
    return _parts(parts)


def claim9(ev: Evidence):
    parts = []
    for dataset in ("ring", "grid"):
        for model in ("gan-mbd", "wgan-gp"):
            name = f"{dataset}-{model}"
            try:
                modes = compare(ev, name, f"{dataset}-gan", "modes_covered")
                kl = compare(ev, name, f"{dataset}-gan", "reverse_kl", higher_is_better=False)
            except Missing as missing:
                parts.append((name, None, str(missing)))
                continue
            parts.append((name, modes.beats(MODE_MARGIN), f"modes {modes.a} vs plain {modes.b}, {modes.describe(MODE_MARGIN)}; reverse KL {kl.a} vs {kl.b}"))
    return _parts(parts)


CLASS_CHANCE = 0.1  # the image datasets here (digits, MNIST, CIFAR-10) have ten classes


def claim10(ev: Evidence):
    # The sanity row: the reference classifier on held-out real images is the best a generator can score.
    real = ev.stat("reference-digits", "class_accuracy")
    bar = CLASS_CHANCE + 0.5 * (real.mean - CLASS_CHANCE)
    parts = []
    for name in ("digits-cgan", "digits-acgan"):
        try:
            s = ev.stat(name, "class_accuracy")
        except Missing as missing:
            parts.append((name, None, str(missing)))
            continue
        parts.append((name, s.mean >= bar, f"requested class {s} (chance {CLASS_CHANCE:g}, real images {real}, bar {bar:.3f})"))
    return _parts(parts)


CLAIMS = (
    Claim(1, "Vanilla RNNs fail where long context is needed and LSTM/GRU succeed (parity at long lengths).",
          ("parity-long-rnn", "parity-long-lstm", "parity-long-gru"), claim1,
          f"`accuracy_longer`: RNN < {FAILS_BELOW:g} and LSTM and GRU ≥ {SUCCEEDS_FROM:g}"),
    Claim(2, "The gradient ∂C_t/∂h_1 vanishes with distance for a vanilla RNN far faster than for an LSTM.",
          ("parity-long-rnn", "parity-long-lstm"), claim2,
          f"`grad_log10_decay` of the trained RNN at least {DECADES:g} decades below the LSTM's"),
    Claim(3, "Gradient clipping keeps an exploding vanilla RNN trainable.",
          ("parity-rnn-biginit", "parity-rnn-biginit-clip"), claim3,
          f"`accuracy_train_lengths` with clipping above chance + {ACC_MARGIN:g} and better than without (or without diverged)"),
    Claim(4, "A forget-gate bias of 1 helps the LSTM on long-range tasks.",
          ("parity-long-lstm", "parity-long-lstm-fb0"), claim4,
          f"`accuracy_longer` with bias 1 better than with 0 by ≥ {ACC_MARGIN:g} and beyond noise"),
    Claim(5, "The GRU, with fewer parameters, is about as good as the LSTM.",
          ("parity-long-gru", "parity-long-lstm", "xml-gru", "xml-lstm"), claim5,
          f"fewer parameters, and not worse than the LSTM by both the noise and the margin ({ACC_MARGIN:g} accuracy, {BPC_MARGIN:g} bits/char)"),
    Claim(6, "Of Greff's variants, none clearly beats the vanilla LSTM; NFG and NOAF hurt the most; CIFG and NP cost little.",
          (GREFF_VANILLA, *(f"xml-lstm-{v}" for v in GREFF_VARIANTS)), claim6,
          f"`test_bpc`: no variant better than vanilla by ≥ {BPC_MARGIN:g}; NFG and NOAF the two worst; CIFG and NP within {BPC_MARGIN:g} of vanilla"),
    Claim(7, "Attention beats the plain encoder–decoder, more so for long inputs.",
          (DATES_PLAIN, *DATES_ATTENTION), claim7,
          f"each attention model: `exact_match` above the plain model's by ≥ {ACC_MARGIN:g} and beyond noise, and a larger gain on `exact_match_long`"),
    Claim(8, "The non-saturating generator loss trains where the minimax loss stalls.",
          ("ring-gan", "ring-gan-minimax", "grid-gan", "grid-gan-minimax"), claim8,
          f"`high_quality_pct` of non-saturating above minimax by ≥ {HQ_MARGIN:g} points and beyond noise, `modes_covered` not worse, on each mixture"),
    Claim(9, "Minibatch discrimination and WGAN-GP cover more modes than the plain GAN.",
          ("ring-gan", "ring-gan-mbd", "ring-wgan-gp", "grid-gan", "grid-gan-mbd", "grid-wgan-gp"), claim9,
          f"`modes_covered` above the plain GAN's by ≥ {MODE_MARGIN:g} and beyond noise, on each mixture"),
    Claim(10, "A conditional GAN produces the class it is asked for.",
          ("digits-cgan", "digits-acgan", "reference-digits"), claim10,
          f"`class_accuracy` at least halfway from chance ({CLASS_CHANCE:g}) to the real held-out images' score"),
)


def seed_groups(config) -> dict[str, tuple[str, ...]]:
    """Experiment -> the experiments of ``params.yaml`` equal to it in everything but ``seed``."""

    def signature(exp):
        common = exp.common.model_dump(exclude={"seed"})
        return repr((common, exp.settings.model_dump(), exp.trainer.model_dump()))

    by_signature: dict[str, list[str]] = {}
    for name, exp in config.experiments.items():
        by_signature.setdefault(signature(exp), []).append(name)
    return {name: tuple(names) for names in by_signature.values() for name in names}


def judge(metrics: dict[str, dict], seeds: dict[str, tuple[str, ...]] | None = None, claims=CLAIMS) -> list[ClaimResult]:
    """Every claim's verdict on ``metrics`` (experiment -> metrics dict)."""
    results = []
    for claim in claims:
        ev = Evidence(metrics, seeds or {})
        try:
            verdict, explanation = claim.rule(ev)
        except Missing as missing:
            verdict, explanation = NOT_ENOUGH, f"missing: {missing}"
        results.append(ClaimResult(claim, verdict, explanation, tuple(ev.read)))
    return results


def markdown(results: list[ClaimResult]) -> str:
    lines = [
        "# The tutorial's claims, checked on these runs",
        "",
        "Generated by `zoo compare` from `metrics/` with the rules of `pipeline/claims.py`; do not edit by hand.",
        "Numbers over several seeds are mean ± standard deviation; a difference no larger than the two",
        "spreads added is *within noise*; with one seed the spread is not measured. A difference must also",
        "reach the rule's margin (the least difference that matters) to count.",
        "",
        "| # | claim | verdict |",
        "|---:|---|---|",
    ]
    lines += [f"| {r.claim.number} | {r.claim.text} | **{verdict_label(r)}** |" for r in results]
    lines.append("")
    for r in results:
        lines += [
            f"## {r.claim.number}. {r.claim.text}",
            "",
            f"- **Verdict: {verdict_label(r)}.** {r.explanation}",
            f"- Rule: {r.claim.criterion}.",
            f"- Experiments: {', '.join(f'`{e}`' for e in r.claim.experiments)}.",
        ]
        if r.numbers:
            lines += ["", "| experiment | metric | value |", "|---|---|---:|"]
            lines += [f"| {', '.join(f'`{e}`' for e in names)} | `{k}` | {s} |" for names, k, s in r.numbers]
        lines.append("")
    return "\n".join(lines)


def verdict_label(result: ClaimResult) -> str:
    return f"{result.verdict} (within noise)" if result.within_noise and result.verdict != NOT_ENOUGH else result.verdict
