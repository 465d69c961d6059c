"""Precision / recall of the scanner on the independent labelled corpus (tests/scan/corpus_gen.py).

A detection matches a label when the type is the same and the spans overlap. Per type:
precision = matching detections / detections, recall = labels found / labels. Secrets and
personal data are also aggregated (micro average over their types). A benign sample with any
detection is a false alarm.

Targets (issue 3): secrets F1 >= 0.95, personal-data F1 >= 0.90, false alarms <= 2% of benign
samples, and every type recall >= 0.8 and precision >= 0.8 so that no type is silently dead.

Print the full report with ``scripts/env python tests/scan/test_scan_corpus.py [RULE_PATHS...]``.
``MCP_SCAN_CORPUS_SEED=other`` scores a corpus with the same templates and fresh values.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

import corpus_gen as cg  # tests/scan is on sys.path (conftest.py; a script's own folder)
import pytest

SECRETS_F1 = 0.95
PII_F1 = 0.90
MAX_FALSE_ALARM_RATE = 0.02
TYPE_RECALL = 0.8
TYPE_PRECISION = 0.8
EXAMPLES = 6


@dataclass
class TypeScore:
    labels: int = 0
    found: int = 0
    detections: int = 0
    correct: int = 0
    misses: list[str] = field(default_factory=list)
    false_alarms: list[str] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.found / self.labels if self.labels else 1.0

    @property
    def precision(self) -> float:
        return self.correct / self.detections if self.detections else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass
class Report:
    types: dict[str, TypeScore]
    benign: int
    benign_flagged: list[str]

    def aggregate(self, names) -> TypeScore:
        agg = TypeScore()
        for n in names:
            s = self.types.get(n)
            if s:
                agg.labels += s.labels
                agg.found += s.found
                agg.detections += s.detections
                agg.correct += s.correct
        return agg

    @property
    def secrets(self) -> TypeScore:
        return self.aggregate(cg.SECRET_TYPES)

    @property
    def pii(self) -> TypeScore:
        return self.aggregate(cg.PII_TYPES)

    @property
    def false_alarm_rate(self) -> float:
        return len(self.benign_flagged) / self.benign if self.benign else 0.0

    def table(self) -> str:
        rows = [
            f"{'type':<24} {'labels':>6} {'recall':>7} {'dets':>6} {'prec':>7} {'F1':>6}",
            "-" * 61,
        ]
        extra = sorted(set(self.types) - set(cg.ALL_TYPES))
        for name in (*cg.SECRET_TYPES, *cg.PII_TYPES, *extra):
            s = self.types.get(name, TypeScore())
            flag = ""
            if s.labels and s.recall < TYPE_RECALL:
                flag += "  <- recall"
            if s.detections and s.precision < TYPE_PRECISION:
                flag += "  <- precision"
            if name not in cg.ALL_TYPES:
                flag += "  <- not in the vocabulary"
            rows.append(
                f"{name:<24} {s.labels:>6} {s.recall:>7.3f} {s.detections:>6} "
                f"{s.precision:>7.3f} {s.f1:>6.3f}{flag}"
            )
        rows.append("-" * 61)
        for label, agg, goal in (
            ("SECRETS", self.secrets, SECRETS_F1),
            ("PERSONAL DATA", self.pii, PII_F1),
        ):
            rows.append(
                f"{label:<24} {agg.labels:>6} {agg.recall:>7.3f} {agg.detections:>6} "
                f"{agg.precision:>7.3f} {agg.f1:>6.3f}  (goal F1 >= {goal})"
            )
        rows.append(
            f"false alarms: {len(self.benign_flagged)}/{self.benign} benign samples "
            f"= {self.false_alarm_rate:.2%} (goal <= {MAX_FALSE_ALARM_RATE:.0%})"
        )
        return "\n".join(rows)

    def examples(self, names=None) -> str:
        out = []
        for name in names or sorted(self.types):
            s = self.types[name]
            if s.misses:
                out.append(f"\n== {name}: missed {s.labels - s.found} of {s.labels}, e.g.")
                out += [f"  - {m}" for m in s.misses[:EXAMPLES]]
            if s.false_alarms:
                out.append(f"\n== {name}: {s.detections - s.correct} false detections, e.g.")
                out += [f"  - {m}" for m in s.false_alarms[:EXAMPLES]]
        return "\n".join(out)

    def benign_examples(self) -> str:
        return "\n".join(f"  - {m}" for m in self.benign_flagged[: EXAMPLES * 2])


def _snippet(text: str, start: int, end: int, width: int = 70) -> str:
    a, b = max(0, start - width), min(len(text), end + width)
    value = text[start:end]
    if len(value) > 90:
        value = value[:40] + "…" + value[-40:]
    s = (
        ("…" if a else "")
        + text[a:start]
        + "⟦"
        + value
        + "⟧"
        + text[end:b]
        + ("…" if b < len(text) else "")
    )
    return s.replace("\n", "⏎")


def evaluate(engine, corpus: list[dict]) -> Report:
    types: dict[str, TypeScore] = {t: TypeScore() for t in cg.ALL_TYPES}
    benign = 0
    benign_flagged: list[str] = []
    for sample in corpus:
        text = sample["text"]
        labels = sample["labels"]
        dets = list(engine.scan_text(text))
        if sample["benign"]:
            benign += 1
            if dets:
                d = dets[0]
                benign_flagged.append(
                    f"[{sample['id']}] {d.type} ({getattr(d, 'rule', '?')}): "
                    + _snippet(text, d.start, d.end)
                )
        for lab in labels:
            score = types[lab["type"]]
            score.labels += 1
            hit = [
                d
                for d in dets
                if d.type == lab["type"] and d.start < lab["end"] and lab["start"] < d.end
            ]
            if hit:
                score.found += 1
            else:
                other = sorted(
                    {d.type for d in dets if d.start < lab["end"] and lab["start"] < d.end}
                )
                note = f" (found as {', '.join(other)})" if other else ""
                score.misses.append(
                    f"[{sample['id']}]{note} " + _snippet(text, lab["start"], lab["end"])
                )
        for d in dets:
            score = types.setdefault(d.type, TypeScore())
            score.detections += 1
            if any(
                lab["type"] == d.type and d.start < lab["end"] and lab["start"] < d.end
                for lab in labels
            ):
                score.correct += 1
            else:
                under = sorted(
                    {lab["type"] for lab in labels if d.start < lab["end"] and lab["start"] < d.end}
                )
                note = f" (labelled {', '.join(under)})" if under else ""
                score.false_alarms.append(
                    f"[{sample['id']}] rule={getattr(d, 'rule', '?')}{note} "
                    + _snippet(text, d.start, d.end)
                )
    return Report(types, benign, benign_flagged)


# ---------------------------------------------------------------- the scoring itself


@dataclass
class _Det:
    type: str
    start: int
    end: int
    rule: str = "fake"


class _FakeEngine:
    """Answers from the labels: perfect, silent, or noisy (wrong type / extra detections)."""

    def __init__(self, corpus: list[dict], mode: str) -> None:
        self.by_text = {s["text"]: s for s in corpus}
        self.mode = mode

    def scan_text(self, text: str) -> list[_Det]:
        sample = self.by_text[text]
        dets = [_Det(lab["type"], lab["start"], lab["end"]) for lab in sample["labels"]]
        if self.mode == "silent":
            return []
        if self.mode == "generic":  # every finding reported as generic_secret
            return [_Det("generic_secret", d.start, d.end) for d in dets]
        if self.mode == "noisy":  # plus one bogus email per sample
            return [*dets, _Det("email", 0, 1)]
        return dets


def test_scoring_perfect_silent_and_noisy_engines():
    corpus = cg.generate()[::7]
    perfect = evaluate(_FakeEngine(corpus, "perfect"), corpus)
    assert perfect.secrets.f1 == 1.0 and perfect.pii.f1 == 1.0
    assert perfect.false_alarm_rate == 0.0
    silent = evaluate(_FakeEngine(corpus, "silent"), corpus)
    assert silent.secrets.recall == 0.0 and silent.pii.f1 == 0.0
    generic = evaluate(_FakeEngine(corpus, "generic"), corpus)
    assert generic.types["github_token"].recall == 0.0
    assert generic.types["generic_secret"].precision < 0.5
    noisy = evaluate(_FakeEngine(corpus, "noisy"), corpus)
    assert noisy.false_alarm_rate == 1.0
    assert noisy.types["email"].precision < 0.5
    assert "email" in noisy.table() and "<- precision" in noisy.table()


@pytest.fixture(scope="module")
def report() -> Report:
    engine_mod = pytest.importorskip("mcp_gateway.scan.engine")
    engine = engine_mod.Engine.load()
    return evaluate(engine, cg.generate(os.environ.get("MCP_SCAN_CORPUS_SEED", cg.SEED)))


def test_secrets_f1(report):
    f1 = report.secrets.f1
    assert f1 >= SECRETS_F1, (
        f"secrets F1 {f1:.3f} < {SECRETS_F1}\n{report.table()}\n{report.examples(cg.SECRET_TYPES)}"
    )


def test_personal_data_f1(report):
    f1 = report.pii.f1
    assert f1 >= PII_F1, (
        f"personal-data F1 {f1:.3f} < {PII_F1}\n{report.table()}\n{report.examples(cg.PII_TYPES)}"
    )


def test_false_alarms_on_benign_messages(report):
    rate = report.false_alarm_rate
    assert rate <= MAX_FALSE_ALARM_RATE, (
        f"false alarms on {rate:.2%} of benign samples\n{report.table()}\n"
        f"benign samples with detections:\n{report.benign_examples()}"
    )


def test_only_vocabulary_types_are_reported(report):
    unknown = sorted(set(report.types) - set(cg.ALL_TYPES))
    assert not unknown, f"detection types outside detection-types.md: {unknown}"


@pytest.mark.parametrize("type_name", cg.ALL_TYPES)
def test_every_type_works(report, type_name):
    s = report.types[type_name]
    problems = []
    if s.recall < TYPE_RECALL:
        problems.append(f"recall {s.recall:.3f} < {TYPE_RECALL}")
    if s.precision < TYPE_PRECISION:
        problems.append(f"precision {s.precision:.3f} < {TYPE_PRECISION}")
    assert not problems, (
        f"{type_name}: {'; '.join(problems)}\n{report.table()}\n{report.examples([type_name])}"
    )


if __name__ == "__main__":  # full report for the rules author
    from mcp_gateway.scan.engine import Engine

    seed = os.environ.get("MCP_SCAN_CORPUS_SEED", cg.SEED)
    rep = evaluate(Engine.load(sys.argv[1:] or None), cg.generate(seed))
    print(rep.table())
    print(rep.examples())
    if rep.benign_flagged:
        print(f"\n== benign samples with detections ({len(rep.benign_flagged)}):")
        print("\n".join(f"  - {m}" for m in rep.benign_flagged))
