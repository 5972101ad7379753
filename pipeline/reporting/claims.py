"""The tutorial's ten claims (REFERENCE.md, last section), each judged on this project's own runs.

A claim names the experiments it compares and carries a rule: a function of the ``Evidence``
(every experiment's ``metrics/<experiment>.json``, whose ``seeds`` hold one value per training
seed) that returns a ``Verdict``. ``zoo compare`` writes the results to ``reports/claims.md`` and
``reports/index.html``; nobody edits a verdict by hand.

Verdicts:

- ``supported`` / ``not supported``: the rule's test decided; ``not supported (within noise)``
  when it failed only because the seeds did not separate the models.
- ``not enough data``: a verdict needs every experiment it reads, each with at least
  ``MIN_SEEDS`` seeds, every seed stopped on its plateau (a seed that ran into the epoch cap
  was still improving; a seed that diverged is a result, not a gap), and a reference model that
  meets its bar where the claim compares against it. The explanation names what is missing.
- ``inconclusive: ceiling``: every compared model at the metric's maximum in every seed, so the
  metric cannot show a difference (the task is too easy for the claim).
- ``not in this profile``: the experiments the claim (or a part of it) reads are not trained by
  this profile's ``params.yaml`` (the 25-Gaussian grid and the ``xml-large-*`` cells are the paper
  profile's, ``profiles/paper``); the profile that trains them judges them. A part that is judged here still decides.

The statistics, once: a number is the mean ± the standard deviation over seeds (n seeds).
"A better than B" means the mean difference reaches the rule's margin (the least difference
that matters) and Welch's t-test (``scipy.stats.ttest_ind(equal_var=False)``, one-sided, as the
claims are directional) rejects "A no better than B" at 5 %. "A about as good as B"
(non-inferiority) means the one-sided 95 % Welch confidence bound of A's deficit is below the
margin, i.e. Welch's one-sided test rejects "A worse by the margin or more" at 5 %. Two sets of
seeds with no spread at all differ exactly (p 0 or 1). Bars (chance, "succeeds") are met by the
mean over seeds. Each rule's thresholds are written next to it and in its criterion.
"""

from __future__ import annotations

import math
import statistics
import warnings
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional

SUPPORTED, NOT_SUPPORTED, NOT_ENOUGH = "supported", "not supported", "not enough data"
CEILING = "inconclusive: ceiling"
ELSEWHERE = "not in this profile"
# A claim of several parts takes the weakest judged part's verdict, in this order (ELSEWHERE parts are left out).
_PRECEDENCE = (NOT_ENOUGH, NOT_SUPPORTED, CEILING, SUPPORTED)

ALPHA = 0.05  # Welch's test: 5 %
MIN_SEEDS = 3  # seeds a side that a verdict needs


class NotEnough(Exception):
    """Raised inside a rule when what it needs is not there (or not usable); the message says
    which experiment and why, and becomes the 'not enough data' explanation."""


class Elsewhere(NotEnough):
    """Raised when a rule reads experiments this profile does not train: the claim (or part) is
    another profile's to judge; the message names them."""


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def per_seed(metrics: dict) -> dict[str, dict]:
    """Seed -> that seed's metrics. A metrics file without ``seeds`` (a reference classifier, a
    file from before seeds were trained together) is one seed, labelled "1"."""
    seeds = metrics.get("seeds")
    if isinstance(seeds, dict) and seeds:
        return {str(s): m for s, m in seeds.items() if isinstance(m, dict)}
    return {"1": metrics}


@dataclass(frozen=True)
class Stat:
    """One metric of one experiment, one value per seed."""

    values: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def sd(self) -> Optional[float]:
        """Standard deviation over seeds; None with one seed (not measured)."""
        return statistics.stdev(self.values) if self.n > 1 else None

    def text(self, fmt: Callable[[float], str] | None = None) -> str:
        fmt = fmt or _fmt
        return f"{fmt(self.mean)} ± {fmt(self.sd)}" if self.n > 1 else fmt(self.mean)

    def __str__(self) -> str:
        return f"{self.text()} (n = {self.n})"


def _fmt(x: float) -> str:
    return f"{x:.0f}" if float(x).is_integer() and abs(x) >= 1 else f"{x:.3g}" if abs(x) < 100 else f"{x:.1f}"


@dataclass(frozen=True)
class Difference:
    """Welch's comparison of ``a`` with ``b`` on one metric, signed so that ``gain`` > 0 means
    ``a`` is better (higher, or lower where lower is better)."""

    a: Stat
    b: Stat
    gain: float  # mean difference, in the better direction
    p_better: float  # one-sided p of "a no better than b"
    p_worse: float  # one-sided p of "a no worse than b"
    low: float  # one-sided 95 % lower confidence bound of gain
    high: float  # one-sided 95 % upper confidence bound of gain

    @property
    def p_two(self) -> float:
        return min(1.0, 2 * min(self.p_better, self.p_worse))

    @property
    def within_noise(self) -> bool:
        return self.p_two >= ALPHA

    def beats(self, margin: float) -> bool:
        """``a`` better: by at least ``margin`` on the means and beyond noise (one-sided Welch, 5 %)."""
        return self.gain >= margin and self.p_better < ALPHA

    def worse(self, margin: float) -> bool:
        return -self.gain >= margin and self.p_worse < ALPHA

    def not_worse(self, margin: float) -> bool:
        """Non-inferiority: the one-sided 95 % confidence bound of ``a``'s deficit is under ``margin``."""
        return self.low > -margin

    def describe(self, margin: float, test: str = "better") -> str:
        text = f"difference {self.gain:+.3g}"
        if test == "better":
            text += f", one-sided Welch p {_p(self.p_better)} ({'beyond' if self.p_better < ALPHA else 'within'} noise)"
        elif test == "worse":
            text += f", one-sided Welch p {_p(self.p_worse)} ({'beyond' if self.p_worse < ALPHA else 'within'} noise)"
        else:  # non-inferiority
            text += f", 95 % bound of the deficit {-self.low:.3g} ({'under' if self.low > -margin else 'not under'} the margin {margin:g})"
        return text + (f", under the margin {margin:g}" if test != "not worse" and abs(self.gain) < margin else "")


def _p(p: float) -> str:
    return f"= {p:.2g}" if p >= 0.001 else "< 0.001"


def welch(a: Stat, b: Stat, higher_is_better: bool = True) -> Difference:
    """Welch's t-test of ``a`` against ``b`` (each at least two seeds)."""
    import numpy as np
    from scipy import stats

    sign = 1.0 if higher_is_better else -1.0
    x, y = sign * np.asarray(a.values, dtype=float), sign * np.asarray(b.values, dtype=float)
    if len(x) < 2 or len(y) < 2:
        raise NotEnough(f"Welch's test needs two seeds a side, has {len(x)} and {len(y)}")
    gain = float(x.mean() - y.mean())
    if x.var(ddof=1) + y.var(ddof=1) == 0:  # no spread on either side: the difference is exact
        return Difference(a, b, gain, 0.0 if gain > 0 else 1.0, 0.0 if gain < 0 else 1.0, gain, gain)
    with warnings.catch_warnings():  # nearly equal seeds: scipy warns of precision loss, the test stands
        warnings.simplefilter("ignore", RuntimeWarning)
        better = stats.ttest_ind(x, y, equal_var=False, alternative="greater")
        worse = stats.ttest_ind(x, y, equal_var=False, alternative="less")
    return Difference(
        a, b, gain, float(better.pvalue), float(worse.pvalue),
        float(better.confidence_interval(1 - ALPHA).low), float(worse.confidence_interval(1 - ALPHA).high),
    )


def at_ceiling(stats_: Iterable[Stat], top: float, tolerance: float = 0.0) -> bool:
    """Every seed of every one within ``tolerance`` of the maximum ``top``."""
    return all(v >= top - tolerance for s in stats_ for v in s.values)


@dataclass
class Evidence:
    """What the rules read: ``metrics[experiment]`` (the ``metrics/<experiment>.json`` dict, plus
    ``parameters`` from ``models/<experiment>/run.json``; ``reference-<dataset>`` for the image
    datasets' reference classifiers). Every number a rule reads is recorded in ``read``.
    ``profile``: the experiments (and ``reference-<dataset>``) this profile trains; None: all."""

    metrics: dict[str, dict]
    read: list[tuple[str, str, Stat]] = field(default_factory=list)
    profile: Optional[frozenset[str]] = None
    judged: set[str] = field(default_factory=set)  # this profile's experiments the current part has read

    def here(self, *experiments: str) -> None:
        """Raise ``Elsewhere`` naming those of ``experiments`` this profile does not train; ``NotEnough``
        instead when the part has read some it does train (a part is left out only when all are elsewhere)."""
        if self.profile is None:
            return
        outside = [e for e in experiments if e not in self.profile]
        self.judged.update(e for e in experiments if e in self.profile)
        if outside:
            names = ", ".join(f"`{e}`" for e in outside)
            message = f"{names} {'is' if len(outside) == 1 else 'are'} not in this profile's experiments"
            raise NotEnough(message) if self.judged else Elsewhere(message)

    def seeds(self, experiment: str) -> dict[str, dict]:
        self.here(experiment)
        if experiment not in self.metrics:
            raise NotEnough(f"`{experiment}` has no metrics")
        return per_seed(self.metrics[experiment])

    def problems(self, experiment: str) -> list[str]:
        """Why ``experiment`` cannot carry a verdict: missing, too few seeds, a seed at the cap."""
        self.here(experiment)
        if experiment not in self.metrics:
            return [f"`{experiment}` has no metrics"]
        seeds = self.seeds(experiment)
        out = []
        if len(seeds) < MIN_SEEDS:
            out.append(f"`{experiment}` has {len(seeds)} seed{'s' if len(seeds) != 1 else ''} (needs ≥ {MIN_SEEDS})")
        if "seeds" in self.metrics[experiment]:
            unknown = [s for s, m in seeds.items() if not _finite(m.get("plateau"))]
            capped = [s for s, m in seeds.items() if s not in unknown and m["plateau"] < 1 and not m.get("diverged")]
            if unknown:
                out.append(f"`{experiment}` seed {', '.join(unknown)} does not record whether it reached its plateau")
            if capped:
                out.append(f"`{experiment}` seed {', '.join(capped)} stopped at the epoch cap, not on its plateau")
        return out

    def require(self, *experiments: str) -> None:
        """Raise ``NotEnough`` naming every experiment of ``experiments`` that cannot carry a verdict
        (``Elsewhere`` naming every one this profile does not train)."""
        self.here(*experiments)
        problems = [p for e in experiments for p in self.problems(e)]
        if problems:
            raise NotEnough("; ".join(problems))

    def stat(self, experiment: str, key: str, least: int = MIN_SEEDS) -> Stat:
        """``key`` over the seeds where it is finite; at least ``least`` of them."""
        if least >= MIN_SEEDS:
            self.require(experiment)
        seeds = self.seeds(experiment)
        values = [float(m[key]) for m in seeds.values() if _finite(m.get(key))]
        if len(values) < least:
            diverged = [s for s, m in seeds.items() if m.get("diverged") and not _finite(m.get(key))]
            why = f" (diverged: seed {', '.join(diverged)})" if diverged else ""
            raise NotEnough(f"`{experiment}` has a finite `{key}` in {len(values)} of {len(seeds)} seeds{why}")
        return self._record(experiment, key, Stat(tuple(values)))

    def value(self, experiment: str, key: str) -> float:
        """A top-level number that is no per-seed measurement: a parameter count, a reference
        classifier's score."""
        self.here(experiment)
        if experiment not in self.metrics:
            raise NotEnough(f"`{experiment}` has no metrics")
        value = self.metrics[experiment].get(key)
        if not _finite(value):
            raise NotEnough(f"`{experiment}` has no finite `{key}`")
        self._record(experiment, key, Stat((float(value),)))
        return float(value)

    def _record(self, experiment: str, key: str, stat: Stat) -> Stat:
        entry = (experiment, key, stat)
        if entry not in self.read:
            self.read.append(entry)
        return stat


@dataclass(frozen=True)
class Verdict:
    verdict: str
    text: str
    noisy: bool = False  # failed only because a test did not reach significance
    elsewhere: tuple[str, ...] = ()  # the parts left out: their experiments are another profile's


def _part(name: str, rule: Callable[..., Verdict], ev: Evidence, *args) -> tuple[str, Verdict]:
    ev.judged = set()
    try:
        return name, rule(ev, *args)
    except Elsewhere as missing:
        return name, Verdict(ELSEWHERE, str(missing))
    except NotEnough as missing:
        return name, Verdict(NOT_ENOUGH, str(missing))


def _combine(parts: list[tuple[str, Verdict]]) -> Verdict:
    """A claim of several parts holds when every part judged here does: it takes the weakest judged
    part's verdict (not enough data, then not supported, then inconclusive), and lists every part's;
    the parts whose experiments this profile does not train come last, and decide nothing."""
    judged = [(name, p) for name, p in parts if p.verdict != ELSEWHERE]
    elsewhere = tuple(name for name, p in parts if p.verdict == ELSEWHERE)
    text = "; ".join([f"{name}: {p.verdict}, {p.text}" for name, p in judged] + [f"{name}: {ELSEWHERE} ({p.text})" for name, p in parts if p.verdict == ELSEWHERE])
    if not judged:
        return Verdict(ELSEWHERE, text, elsewhere=elsewhere)
    verdict = next(v for v in _PRECEDENCE if any(p.verdict == v for _, p in judged))
    return Verdict(verdict, text, any(p.noisy for _, p in judged if p.verdict == verdict), elsewhere)


Rule = Callable[[Evidence], Verdict]


@dataclass(frozen=True)
class Claim:
    number: int
    text: str
    experiments: tuple[str, ...]  # what it compares
    rule: Rule
    criterion: str  # the rule in words, with its test, margins and bars, shown with the verdict
    design: str = ""  # the setup it is tested in, its source, and where the alternatives measured are written up


@dataclass(frozen=True)
class ClaimResult:
    claim: Claim
    verdict: str
    explanation: str
    numbers: tuple[tuple[str, str, Stat], ...]  # (experiment, metric, value over seeds) the rule read
    within_noise: bool = False
    elsewhere: tuple[str, ...] = ()  # the parts not judged: this profile does not train their experiments


# ------------------------------------------------------------------------------ the rules
# Thresholds: accuracies on a 0..1 scale (parity chance = 0.5), bits per character, modes.

CHANCE_PARITY = 0.5
FAILS_BELOW = 0.6  # claim 1: "fails" = mean longer-string accuracy under 0.6 (chance 0.5)
SUCCEEDS_FROM = 0.9  # claims 1, 5: "succeeds" = mean accuracy at least 0.9
ACC_MARGIN = 0.05  # the least accuracy difference that matters
BPC_MARGIN = 0.02  # the least bits-per-character difference that matters
XML_BAR = 0.05  # claims 5, 6: the LSTM must beat the vanilla RNN on xml by this much (2.5 margins)
ACC_CEILING = 0.01  # an accuracy within 0.01 of 1 is at the ceiling
DECADES = 2.0  # claims 2 and 3: "far faster", "orders above" = at least 100x
EPOCH_MARGIN = 1.0  # claim 4: the least difference in epochs to the target that matters
MODE_MARGIN = 1.0  # one mode
HQ_MARGIN = 5.0  # percentage points of high-quality samples
KL_MARGIN = 0.05  # nats of reverse KL
MODES = {"ring": 8, "grid": 25}  # REFERENCE.md's mixtures (tests/test_claims.py holds the profiles' params.yaml to them)


def claim1(ev: Evidence) -> Verdict:
    key, rnn_name, gated_names = "accuracy_longer", "parity-long-rnn", ("parity-long-lstm", "parity-long-gru")
    ev.require(rnn_name, *gated_names)
    rnn = ev.stat(rnn_name, key)
    gated = {name: ev.stat(name, key) for name in gated_names}
    if at_ceiling([rnn, *gated.values()], 1.0, ACC_CEILING):
        return Verdict(CEILING, f"RNN {rnn}, LSTM and GRU at 1 too: these lengths do not need long context")
    fails = rnn.mean < FAILS_BELOW
    diffs = {name: welch(gated[name], rnn) for name in gated_names}
    meets_bar = {name: gated[name].mean >= SUCCEEDS_FROM for name in gated_names}
    succeed = {name: meets_bar[name] and diffs[name].beats(ACC_MARGIN) for name in gated_names}
    text = f"RNN {rnn} ({'fails' if fails else 'does not fail'}); " + "; ".join(
        f"{n.removeprefix('parity-long-').upper()} {gated[n]} ({'succeeds' if meets_bar[n] else 'does not succeed'}), "
        f"against the RNN {diffs[n].describe(ACC_MARGIN)}"
        for n in gated_names
    )
    ok = fails and all(succeed.values())
    noisy = not ok and fails and all(meets_bar.values())
    return Verdict(SUPPORTED if ok else NOT_SUPPORTED, text, noisy)


def claim2(ev: Evidence) -> Verdict:
    # grad_log10_decay = log10(‖∂C_T/∂h_1‖ / ‖∂C_T/∂h_T‖) (pipeline.evaluation.diagnostics): more negative = vanished more.
    ev.require("parity-long-rnn", "parity-long-lstm")
    d = welch(ev.stat("parity-long-lstm", "grad_log10_decay"), ev.stat("parity-long-rnn", "grad_log10_decay"))
    text = f"log10 decay over the sequence: RNN {d.b}, LSTM {d.a}; the RNN's gradient shrinks {d.gain:.1f} decades more, {d.describe(DECADES)}"
    return Verdict(SUPPORTED if d.beats(DECADES) else NOT_SUPPORTED, text, d.gain >= DECADES and not d.beats(DECADES))


EXPLODES_AT = 100.0  # claim 3: a global gradient norm two decades above a unit-scale network's (~1)


CLIP_PLAIN, CLIP_CLIPPED, CLIP_REFERENCE = "xml-rnn-sgd", "xml-rnn-sgd-clip", "xml-rnn"
TRAINABLE_BPC = 0.1  # claim 3: "trainable" = test bits/char within this of the same RNN trained with Adam


def claim3(ev: Evidence) -> Verdict:
    key, plain, clip = "test_bpc", CLIP_PLAIN, CLIP_CLIPPED
    ev.require(plain, clip, CLIP_REFERENCE)
    div_plain, div_clip = ev.stat(plain, "diverged"), ev.stat(clip, "diverged")
    n_div = sum(v >= 1 for v in div_plain.values)
    majority = n_div > div_plain.n / 2
    # Both runs start from the same exploding weights, so their norms before clipping are alike:
    # the explosion is judged against a unit-scale network's gradient, not the clipped run's.
    largest = None
    try:
        largest = ev.stat(plain, "grad_norm_max", least=1)
    except NotEnough:
        pass
    explodes = majority or (largest is not None and largest.mean >= EXPLODES_AT)
    exploded = f"without clipping diverged in {n_div} of {div_plain.n} seeds" + (
        f", largest gradient norm before clipping {largest}" if largest is not None else ""
    )
    if not explodes:
        raise NotEnough(f"the vanilla RNN without clipping did not explode ({exploded}): this setting does not test the claim")
    clip_diverged = sum(v >= 1 for v in div_clip.values)
    text = f"{exploded}; with clipping diverged in {clip_diverged} of {div_clip.n} seeds"
    if clip_diverged:
        return Verdict(NOT_SUPPORTED, text)
    clipped, reference = ev.stat(clip, key), ev.stat(CLIP_REFERENCE, key)
    clip_ok = clipped.mean <= reference.mean + TRAINABLE_BPC
    text += f", test bits/char {clipped} (the same RNN trained with Adam: {reference})"
    if majority:
        plain_worse = True
    else:
        d = welch(clipped, ev.stat(plain, key, least=2), higher_is_better=False)
        plain_worse = d.beats(CLIP_GAIN)
        text += f"; against without clipping {d.b}: {d.describe(CLIP_GAIN)}"
    ok = clip_ok and plain_worse
    return Verdict(SUPPORTED if ok else NOT_SUPPORTED, text, clip_ok and not plain_worse)


CLIP_GAIN = 0.05  # claim 3: the clipped run better by at least this many bits/char


def _epochs_to_target(ev: Evidence, experiment: str) -> tuple[Stat, int]:
    """Epochs each seed took to reach the training target; a seed that never reached it counts
    its epochs + 1 (a lower bound). Returns the values and how many seeds reached it."""
    values, reached = [], 0
    for s, m in ev.seeds(experiment).items():
        if _finite(m.get("epochs_to_target")):
            values.append(float(m["epochs_to_target"]))
            reached += 1
        elif _finite(m.get("epochs")):
            values.append(float(m["epochs"]) + 1)
        else:
            raise NotEnough(f"`{experiment}` seed {s} records neither `epochs_to_target` nor `epochs`")
    return ev._record(experiment, "epochs_to_target", Stat(tuple(values))), reached


def claim4(ev: Evidence) -> Verdict:
    fb1, fb0 = "parity-long-lstm", "parity-long-lstm-fb0"
    ev.require(fb1, fb0)
    a1, a0 = ev.stat(fb1, "accuracy_longer"), ev.stat(fb0, "accuracy_longer")
    acc = welch(a1, a0)
    ceiling = at_ceiling([a1, a0], 1.0, ACC_CEILING)
    acc_shows, acc_against = not ceiling and acc.beats(ACC_MARGIN), acc.worse(ACC_MARGIN)
    (e1, r1), (e0, r0) = _epochs_to_target(ev, fb1), _epochs_to_target(ev, fb0)
    speed = welch(e1, e0, higher_is_better=False)
    # A side that missed the target in some seed counts with a lower bound, which can only
    # help it: so it may show the effect only when it reached the target in every seed.
    speed_shows = r1 == e1.n and speed.beats(EPOCH_MARGIN)
    speed_against = r0 == e0.n and speed.worse(EPOCH_MARGIN)
    text = (
        f"accuracy beyond the training lengths, forget bias 1: {a1}, 0: {a0}; "
        + (f"both at the ceiling" if ceiling else acc.describe(ACC_MARGIN))
        + f"; epochs to the target, bias 1: {e1} ({r1} of {e1.n} seeds reached it), 0: {e0} ({r0} of {e0.n}); "
        + (f"neither reached it" if r1 == r0 == 0 else speed.describe(EPOCH_MARGIN))
    )
    if acc_against or speed_against:
        return Verdict(NOT_SUPPORTED, text + f"; {'accuracy' if acc_against else 'speed'} contradicts the claim")
    if acc_shows or speed_shows:
        shown = " and ".join(w for w, s in (("accuracy", acc_shows), ("speed", speed_shows)) if s)
        return Verdict(SUPPORTED, text + f"; shown by {shown}, not contradicted by the other")
    if ceiling:
        return Verdict(CEILING, text + "; speed does not separate them either")
    return Verdict(NOT_SUPPORTED, text, noisy=True)


def _gru_as_good(ev: Evidence, gru: str, lstm: str, key: str, higher: bool, margin: float, bar) -> Verdict:
    ev.require(gru, lstm)
    g, l = ev.stat(gru, key), ev.stat(lstm, key)
    bar(l)  # the reference must succeed first: as good as a failure says nothing
    # Both at the maximum is no ceiling for "as good as": it is the equality the claim names,
    # and non-inferiority below finds it (no deficit, no spread).
    d = welch(g, l, higher)
    pg, pl = ev.value(gru, "parameters"), ev.value(lstm, "parameters")
    ok = d.not_worse(margin) and pg < pl
    text = f"`{key}` GRU {g} vs LSTM {l}, {d.describe(margin, 'not worse')}; {pg:,.0f} vs {pl:,.0f} parameters"
    return Verdict(SUPPORTED if ok else NOT_SUPPORTED, text, pg < pl and not d.worse(margin) and not ok)


def _parity_bar(lstm: Stat) -> None:
    if lstm.mean < SUCCEEDS_FROM:
        raise NotEnough(f"the reference `parity-long-lstm` fails its bar: `accuracy_longer` {lstm} < {SUCCEEDS_FROM:g}")


# Claims 5 and 6 on XML read the paper profile's carried-state cells on four times the text: the
# default profile's, 100-character windows read from a zero state, do not separate an LSTM from a
# vanilla RNN (docs/plateaus.md, "Nested XML"), so they are on its leaderboard and no claim reads them.
XML_CELLS = "xml-large-"
XML_RNN, XML_LSTM, XML_GRU = (f"{XML_CELLS}{cell}" for cell in ("rnn", "lstm", "gru"))


def _xml_bar(ev: Evidence, lstm_name: str) -> Callable[[Stat], None]:
    def bar(lstm: Stat) -> None:
        ev.require(XML_RNN)
        d = welch(lstm, ev.stat(XML_RNN, "test_bpc"), higher_is_better=False)
        if not d.beats(XML_BAR):
            raise NotEnough(f"the reference `{lstm_name}` fails its bar: `test_bpc` {lstm} not below the vanilla RNN's {d.b} by {XML_BAR:g} ({d.describe(XML_BAR)})")
    return bar


def claim5(ev: Evidence) -> Verdict:
    return _combine([
        _part("parity", _gru_as_good, ev, "parity-long-gru", "parity-long-lstm", "accuracy_longer", True, ACC_MARGIN, _parity_bar),
        _part("xml", _gru_as_good, ev, XML_GRU, XML_LSTM, "test_bpc", False, BPC_MARGIN, _xml_bar(ev, XML_LSTM)),
    ])


GREFF = f"{XML_CELLS}lstm-"
GREFF_VANILLA = f"{GREFF}peephole"
GREFF_VARIANTS = ("nig", "nfg", "nog", "niaf", "noaf", "np", "cifg", "fgr")
GREFF_NAMES = tuple(f"{GREFF}{v}" for v in GREFF_VARIANTS)


def _none_beats(ev: Evidence) -> Verdict:
    ev.require(GREFF_VANILLA, *GREFF_NAMES)
    vanilla = ev.stat(GREFF_VANILLA, "test_bpc")
    diffs = {v: welch(ev.stat(f"{GREFF}{v}", "test_bpc"), vanilla, higher_is_better=False) for v in GREFF_VARIANTS}
    beat = [v for v, d in diffs.items() if d.beats(BPC_MARGIN)]
    text = f"vanilla {vanilla} bits/char; clearly better: {', '.join(v.upper() for v in beat) or 'none'}"
    return Verdict(NOT_SUPPORTED if beat else SUPPORTED, text)


def _worst_two(ev: Evidence) -> Verdict:
    ev.require(GREFF_VANILLA, *GREFF_NAMES)
    stats_ = {v: ev.stat(f"{GREFF}{v}", "test_bpc") for v in GREFF_VARIANTS}
    order = sorted(stats_, key=lambda v: stats_[v].mean, reverse=True)
    worst, third = order[:2], order[2]
    apart = {v: welch(stats_[third], stats_[v], higher_is_better=False) for v in worst}
    separated = all(d.beats(BPC_MARGIN) for d in apart.values())
    ok = set(worst) == {"nfg", "noaf"} and separated
    text = f"the two worst: {', '.join(f'{v.upper()} {stats_[v]}' for v in worst)}; against the third, {third.upper()} {stats_[third]}: " + ", ".join(
        f"{v.upper()} {apart[v].describe(BPC_MARGIN)}" for v in worst
    )
    return Verdict(SUPPORTED if ok else NOT_SUPPORTED, text, set(worst) == {"nfg", "noaf"} and not separated)


def _cheap(ev: Evidence) -> Verdict:
    names = [f"{GREFF}{v}" for v in ("cifg", "np")]
    ev.require(GREFF_VANILLA, *names)
    vanilla = ev.stat(GREFF_VANILLA, "test_bpc")
    _xml_bar(ev, GREFF_VANILLA)(vanilla)
    diffs = {n: welch(ev.stat(n, "test_bpc"), vanilla, higher_is_better=False) for n in names}
    ok = all(d.not_worse(BPC_MARGIN) for d in diffs.values())
    text = "; ".join(f"{n.removeprefix(GREFF).upper()} {d.a} {d.describe(BPC_MARGIN, 'not worse')}" for n, d in diffs.items())
    return Verdict(SUPPORTED if ok else NOT_SUPPORTED, text, not ok and not any(d.worse(BPC_MARGIN) for d in diffs.values()))


def claim6(ev: Evidence) -> Verdict:
    return _combine([
        _part("none beats vanilla", _none_beats, ev),
        _part("NFG and NOAF worst", _worst_two, ev),
        _part("CIFG and NP cost little", _cheap, ev),
    ])


DATES_PLAIN = "dates-seq2seq"
# The tutorial's claim is about adding attention to the recurrent encoder–decoder (Bahdanau et al.
# 2015; Luong et al. 2015). The Transformer is compared on the leaderboard, not here: its
# sinusoidal positions are not trained beyond the training lengths, a different question.
DATES_ATTENTION = ("dates-seq2seq-bahdanau", "dates-seq2seq-luong")


def _long_penalty(ev: Evidence, experiment: str) -> Stat:
    """Per seed: exact match on long inputs minus overall (both from the same model)."""
    values = [
        float(m["exact_match_long"]) - float(m["exact_match"])
        for m in ev.seeds(experiment).values()
        if _finite(m.get("exact_match_long")) and _finite(m.get("exact_match"))
    ]
    if len(values) < MIN_SEEDS:
        raise NotEnough(f"`{experiment}` has both exact matches in {len(values)} seeds (needs ≥ {MIN_SEEDS})")
    return ev._record(experiment, "exact_match_long - exact_match", Stat(tuple(values)))


def _attention_beats(ev: Evidence, model: str) -> Verdict:
    ev.require(model, DATES_PLAIN)
    a, p = ev.stat(model, "exact_match"), ev.stat(DATES_PLAIN, "exact_match")
    al, pl = ev.stat(model, "exact_match_long"), ev.stat(DATES_PLAIN, "exact_match_long")
    if at_ceiling([a, p, al, pl], 1.0, ACC_CEILING):
        return Verdict(CEILING, f"exact match {a} vs plain {p}")
    overall, long = welch(a, p), welch(al, pl)
    # the long inputs' extra gain = the difference of (long - overall) per seed, model against plain
    extra = welch(_long_penalty(ev, model), _long_penalty(ev, DATES_PLAIN))
    # "Beats" is judged where the inputs are long: on inputs of the training lengths every model
    # may be near 1.0 (a ceiling there is no evidence either way), so overall it must only not lose.
    ok = long.beats(ACC_MARGIN) and extra.beats(ACC_MARGIN) and not overall.worse(ACC_MARGIN)
    text = (
        f"on long inputs {al} vs plain {pl}, {long.describe(ACC_MARGIN)}; the gain exceeds the overall one by {extra.describe(ACC_MARGIN)}; "
        f"overall {a} vs {p}, {overall.describe(ACC_MARGIN, 'worse')}"
    )
    noisy = not ok and long.gain >= ACC_MARGIN and extra.gain >= ACC_MARGIN and not overall.worse(ACC_MARGIN)
    return Verdict(SUPPORTED if ok else NOT_SUPPORTED, text, noisy)


def claim7(ev: Evidence) -> Verdict:
    return _combine([_part(model, _attention_beats, ev, model) for model in DATES_ATTENTION])


def _ns_beats_minimax(ev: Evidence, dataset: str) -> Verdict:
    ns, mm = f"{dataset}-gan", f"{dataset}-gan-minimax"
    ev.require(ns, mm)
    hq_ns, hq_mm = ev.stat(ns, "high_quality_pct"), ev.stat(mm, "high_quality_pct")
    m_ns, m_mm = ev.stat(ns, "modes_covered"), ev.stat(mm, "modes_covered")
    if at_ceiling([hq_ns, hq_mm], 100.0, 100 * ACC_CEILING) and at_ceiling([m_ns, m_mm], MODES[dataset]):
        return Verdict(CEILING, f"% high quality {hq_ns} vs {hq_mm}, all {MODES[dataset]} modes in every seed")
    hq, modes = welch(hq_ns, hq_mm), welch(m_ns, m_mm)
    ok = hq.beats(HQ_MARGIN) and not modes.worse(MODE_MARGIN)
    text = f"% high quality non-saturating {hq_ns} vs minimax {hq_mm}, {hq.describe(HQ_MARGIN)}; modes {m_ns} vs {m_mm}, {modes.describe(MODE_MARGIN, 'worse')}"
    return Verdict(SUPPORTED if ok else NOT_SUPPORTED, text, not ok and hq.gain >= HQ_MARGIN and not modes.worse(MODE_MARGIN))


def claim8(ev: Evidence) -> Verdict:
    return _combine([_part(dataset, _ns_beats_minimax, ev, dataset) for dataset in MODES])


def _covers_more(ev: Evidence, dataset: str, model: str) -> Verdict:
    name, plain = f"{dataset}-{model}", f"{dataset}-gan"
    ev.require(name, plain)
    m, p = ev.stat(name, "modes_covered"), ev.stat(plain, "modes_covered")
    top = MODES[dataset]
    if at_ceiling([p], top):
        if not at_ceiling([m], top):
            return Verdict(NOT_SUPPORTED, f"the plain GAN covers all {top} modes in every seed, {name} {m}")
        # Both cover every mode: the secondary, how evenly (reverse KL to uniform over the modes).
        kl = welch(ev.stat(name, "reverse_kl"), ev.stat(plain, "reverse_kl"), higher_is_better=False)
        text = f"both cover all {top} modes in every seed (ceiling); secondary, reverse KL {kl.a} vs {kl.b}, {kl.describe(KL_MARGIN)}"
        if kl.beats(KL_MARGIN):
            return Verdict(SUPPORTED, text)
        return Verdict(NOT_SUPPORTED if kl.worse(KL_MARGIN) else CEILING, text)
    d = welch(m, p)
    ok = d.beats(MODE_MARGIN)
    return Verdict(SUPPORTED if ok else NOT_SUPPORTED, f"modes {m} vs plain {p}, {d.describe(MODE_MARGIN)}", not ok and d.gain >= MODE_MARGIN)


def claim9(ev: Evidence) -> Verdict:
    return _combine([_part(f"{d}-{m}", _covers_more, ev, d, m) for d in MODES for m in ("gan-mbd", "wgan-gp")])


CLASS_CHANCE = 0.1  # the image datasets here (digits, MNIST, CIFAR-10) have ten classes


def _asked_class(ev: Evidence, name: str) -> Verdict:
    # The sanity row: the reference classifier on held-out real images is the best a generator can score.
    ev.require(name)
    real = ev.value("reference-digits", "class_accuracy")
    bar = CLASS_CHANCE + 0.5 * (real - CLASS_CHANCE)
    s = ev.stat(name, "class_accuracy")
    return Verdict(SUPPORTED if s.mean >= bar else NOT_SUPPORTED, f"requested class {s} (chance {CLASS_CHANCE:g}, real images {real:.3g}, bar {bar:.3f})")


def claim10(ev: Evidence) -> Verdict:
    return _combine([_part(name, _asked_class, ev, name) for name in ("digits-cgan", "digits-acgan")])


_WELCH = "one-sided Welch, 5 %"
CLAIMS = (
    Claim(1, "Vanilla RNNs fail where long context is needed and LSTM/GRU succeed (parity at long lengths).",
          ("parity-long-rnn", "parity-long-lstm", "parity-long-gru"), claim1,
          f"`accuracy_longer`: RNN mean < {FAILS_BELOW:g}; LSTM and GRU means ≥ {SUCCEEDS_FROM:g}, each better than the RNN "
          f"by ≥ {ACC_MARGIN:g} ({_WELCH}); all three within {ACC_CEILING:g} of 1 in every seed: ceiling",
          design="parity (`datasets.parity-long`): each bit is 1 with probability 0.1, so the parity so far must be held across runs of about 10 zeros (Bengio et al. 1994's latch); trained on lengths 1-40, scored on 41-160; RNN, LSTM and GRU of 64 units, Adam 3e-3. Other lengths and lags, Bengio et al.'s 25-50 among them: docs/plateaus.md, \"The long-lag parity\""),
    Claim(2, "The gradient ∂C_t/∂h_1 vanishes with distance for a vanilla RNN far faster than for an LSTM.",
          ("parity-long-rnn", "parity-long-lstm"), claim2,
          f"`grad_log10_decay` of the trained RNN at least {DECADES:g} decades below the LSTM's ({_WELCH})",
          design="the trained `parity-long` RNN and LSTM of claim 1: the norm of ∂C_T/∂h_t on test strings, from the last step back to the first (`pipeline/evaluation/diagnostics.py`)"),
    Claim(3, "Gradient clipping keeps an exploding vanilla RNN trainable.",
          (CLIP_PLAIN, CLIP_CLIPPED, CLIP_REFERENCE), claim3,
          f"the unclipped RNN (plain SGD, recurrent weights 5x) explodes (diverged in a majority of seeds, or its `grad_norm_max` ≥ "
          f"{EXPLODES_AT:g}, a hundred times a unit-scale network's; else not enough data); holds when the clipped run diverged in no "
          f"seed, its `test_bpc` mean is within {TRAINABLE_BPC:g} of `{CLIP_REFERENCE}`'s (the same RNN trained with Adam), and the "
          f"unclipped one diverged in a majority of seeds or the clipped one is better by ≥ {CLIP_GAIN:g} bits/char ({_WELCH})",
          design="Pascanu et al. 2013: the vanilla RNN on `xml` with plain SGD (lr 1) from recurrent weights at 5 times their usual scale, without and with clipping the gradient's global norm to 1; a non-finite loss ends a seed as a recorded divergence"),
    Claim(4, "A forget-gate bias of 1 helps the LSTM on long-range tasks.",
          ("parity-long-lstm", "parity-long-lstm-fb0"), claim4,
          f"bias 1 against 0 on `accuracy_longer` (better by ≥ {ACC_MARGIN:g}, {_WELCH}) and on `epochs_to_target` (fewer by ≥ "
          f"{EPOCH_MARGIN:g}, {_WELCH}; a seed that never reached the target counts its epochs + 1 and "
          f"its side cannot show the effect): supported when either shows it and neither shows the opposite; accuracy at "
          f"the ceiling and no speed difference: ceiling",
          design="Gers et al. 2000, Jozefowicz et al. 2015: claim 1's LSTM with its forget-gate bias at 1 and at 0; besides the final accuracy, the epochs each seed takes to reach 0.95 validation accuracy"),
    Claim(5, "The GRU, with fewer parameters, is about as good as the LSTM.",
          ("parity-long-gru", "parity-long-lstm", XML_GRU, XML_LSTM, XML_RNN), claim5,
          f"first the LSTM must succeed (parity: `accuracy_longer` mean ≥ {SUCCEEDS_FROM:g}; xml: `test_bpc` below "
          f"`{XML_RNN}`'s by ≥ {XML_BAR:g}, {_WELCH}), else not enough data; then, on each task, fewer parameters and not worse: the "
          f"one-sided 95 % Welch bound of the GRU's deficit under {ACC_MARGIN:g} accuracy / {BPC_MARGIN:g} bits/char",
          design="Chung et al. 2014, Jozefowicz et al. 2015: GRU and LSTM of the same width (64) on claim 1's parity and on nested XML (Jozefowicz et al.'s second task), where the LSTM must first beat the vanilla RNN. The XML part runs in the paper profile (`profiles/paper`, `make repro-paper`): 1,024,000 training characters read in order, the state carried from window to window (Zaremba et al. 2014); the default profile's XML, 100-character windows from a zero state, does not separate the LSTM from the RNN (docs/plateaus.md, \"Nested XML\")"),
    Claim(6, "Of Greff's variants, none clearly beats the vanilla LSTM; NFG and NOAF hurt the most; CIFG and NP cost little.",
          (GREFF_VANILLA, *GREFF_NAMES, XML_RNN), claim6,
          f"`test_bpc`: no variant better than vanilla by ≥ {BPC_MARGIN:g} ({_WELCH}); NFG and NOAF the two worst means, each "
          f"worse than the third worst by ≥ {BPC_MARGIN:g} ({_WELCH}); CIFG and NP not worse than vanilla (one-sided "
          f"95 % Welch bound of the deficit under {BPC_MARGIN:g}), once vanilla beats `{XML_RNN}` by ≥ {XML_BAR:g}",
          design="Greff et al. 2015: the peephole LSTM and its eight one-change variants on claim 5's nested XML, same width (64), optimiser and data, 3 seeds each; in the paper profile (`profiles/paper`, `make repro-paper`), for claim 5's reason: docs/plateaus.md, \"Nested XML\""),
    Claim(7, "Attention beats the plain encoder–decoder, more so for long inputs.",
          (DATES_PLAIN, *DATES_ATTENTION), claim7,
          f"each recurrent encoder–decoder with attention (Bahdanau, Luong): `exact_match_long` (inputs beyond the training lengths) better than the plain model's by ≥ {ACC_MARGIN:g} "
          f"({_WELCH}); its per-seed `exact_match_long` − `exact_match` above the plain model's by ≥ {ACC_MARGIN:g} ({_WELCH}): "
          f"the gain on long inputs exceeds the overall gain; and `exact_match` not worse than the plain model's",
          design="Bahdanau et al. 2015, Fig. 2: dates to ISO form (`datasets.dates`), tested on inputs 2-4 times the longest training input (30-36 filler words); the plain encoder-decoder (reversed source) against Bahdanau's and Luong's attention, beam 4"),
    Claim(8, "The non-saturating generator loss trains where the minimax loss stalls.",
          ("ring-gan", "ring-gan-minimax", "grid-gan", "grid-gan-minimax"), claim8,
          f"on each mixture, `high_quality_pct` of non-saturating above minimax by ≥ {HQ_MARGIN:g} points ({_WELCH}), and "
          f"`modes_covered` not worse by ≥ {MODE_MARGIN:g} ({_WELCH}); every seed within {100 * ACC_CEILING:g} point of 100 % and at all modes: ceiling",
          design="PacGAN's mixtures (Lin et al. 2018): 8 Gaussians on a ring (σ 0.01), 25 on a grid (σ 0.05); MLPs of 3×128, batch 512, Adam 1e-3; the non-saturating against the minimax generator loss (Goodfellow et al. 2014). The grid runs in the paper profile (`profiles/paper`, `make repro-paper`), not the default one: its modes come in bursts after long lulls, and seeds trained until they stop take about an hour on two cores. Where the grid's seeds stop: docs/plateaus.md, \"The 25-Gaussian grid\""),
    Claim(9, "Minibatch discrimination and WGAN-GP cover more modes than the plain GAN.",
          ("ring-gan", "ring-gan-mbd", "ring-wgan-gp", "grid-gan", "grid-gan-mbd", "grid-wgan-gp"), claim9,
          f"on each mixture, `modes_covered` above the plain GAN's by ≥ {MODE_MARGIN:g} ({_WELCH}); where the plain GAN covers "
          f"every mode in every seed (ceiling), the secondary: `reverse_kl` lower by ≥ {KL_MARGIN:g} ({_WELCH}), else "
          f"ceiling",
          design="the mixtures of claim 8: minibatch discrimination (Salimans et al. 2016; 5 kernels of 3, batch 128) and WGAN-GP (Gulrajani et al. 2017; λ 0.1, 5 critic steps, Adam (0.5, 0.9)) against the plain GAN; like claim 8's, the grid runs in the paper profile (`profiles/paper`, `make repro-paper`)"),
    Claim(10, "A conditional GAN produces the class it is asked for.",
          ("digits-cgan", "digits-acgan", "reference-digits"), claim10,
          f"`class_accuracy` mean at least halfway from chance ({CLASS_CHANCE:g}) to the reference classifier's on real held-out images",
          design="a conditional GAN (Mirza and Osindero 2014) and an AC-GAN (Odena et al. 2017) on scikit-learn's 8×8 digits; the reference classifier names the class of each generated image"),
)


def judge(metrics: dict[str, dict], claims=CLAIMS, profile: Optional[Iterable[str]] = None) -> list[ClaimResult]:
    """Every claim's verdict on ``metrics`` (experiment -> metrics dict); ``profile``: the experiments
    (and ``reference-<dataset>``) this profile trains, the others' claims are *not in this profile*
    (None: every experiment is this profile's)."""
    profile = None if profile is None else frozenset(profile)
    results = []
    for claim in claims:
        ev = Evidence(metrics, profile=profile)
        try:
            v = claim.rule(ev)
        except Elsewhere as missing:
            v = Verdict(ELSEWHERE, str(missing))
        except NotEnough as missing:
            v = Verdict(NOT_ENOUGH, str(missing))
        results.append(ClaimResult(claim, v.verdict, v.text, tuple(ev.read), v.noisy and v.verdict == NOT_SUPPORTED, v.elsewhere))
    return results


STATISTICS = (
    f"Every number is the mean ± the standard deviation over training seeds (n = seeds). A verdict needs "
    f"every experiment it reads with ≥ {MIN_SEEDS} seeds, each stopped on its plateau (not at the epoch cap; "
    f"a diverged seed is a result), else *not enough data*, naming the experiment and why; a claim compared "
    f"against a reference model also needs the reference to meet its bar. \"A better than B\": the mean "
    f"difference reaches the rule's margin and Welch's t-test (`scipy.stats.ttest_ind(equal_var=False)`, "
    f"one-sided) rejects \"no better\" at 5 %. \"About as good as\" (non-inferiority): the one-sided "
    f"95 % Welch confidence bound of the deficit is under the margin. A failed test is *within noise*. "
    f"Bars (chance, \"succeeds\") are met by the mean. Every compared model at the metric's maximum in "
    f"every seed: *inconclusive: ceiling*. A claim of several parts takes its weakest part's verdict. "
    f"A claim or part whose experiments this profile does not train is judged in the profile that "
    f"does (verdict *not in this profile*), and the verdict names it."
)


def markdown(results: list[ClaimResult]) -> str:
    lines = [
        "# The tutorial's claims, checked on these runs",
        "",
        "Generated by `zoo compare` from `metrics/` with the rules of `pipeline/reporting/claims.py`; do not edit by hand.",
        "",
        STATISTICS,
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
            *([f"- Setup: {r.claim.design}."] if r.claim.design else []),
            f"- Rule: {r.claim.criterion}.",
            f"- Experiments: {', '.join(f'`{e}`' for e in r.claim.experiments)}.",
        ]
        if r.numbers:
            lines += ["", "| experiment | metric | mean ± sd | n |", "|---|---|---:|---:|"]
            lines += [f"| `{name}` | `{k}` | {s.text()} | {s.n} |" for name, k, s in r.numbers]
        lines.append("")
    return "\n".join(lines)


def verdict_label(result: ClaimResult) -> str:
    """The verdict, with "(within noise)" and the parts judged in another profile, e.g.
    "not supported (grid part: not in this profile)"."""
    notes = ["within noise"] if result.within_noise else []
    if result.elsewhere and result.verdict != ELSEWHERE:
        notes.append(f"{', '.join(result.elsewhere)} part{'s' if len(result.elsewhere) > 1 else ''}: {ELSEWHERE}")
    return f"{result.verdict} ({'; '.join(notes)})" if notes else result.verdict
