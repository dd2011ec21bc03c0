"""Synthetic grammar errors: clean sentences noised with rule-based learner errors, as (noisy -> clean)
training pairs for the grammar and fluency tasks.

Written here because no maintained package does this (nlpaug, last released 2022, makes generic
character/word noise, not learner errors). The rules follow the error types of the CoNLL-2014 and
BEA-2019 annotations that a small model most often misses: articles, prepositions, subject-verb
agreement, verb tense, noun number, spelling and punctuation. Deterministic for a given seed.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable

_ARTICLES = ("a", "an", "the")
_PREPOSITIONS = ("in", "on", "at", "for", "to", "of", "with", "by", "from", "about", "into")
_AGREEMENT = {
    "is": "are",
    "are": "is",
    "was": "were",
    "were": "was",
    "has": "have",
    "have": "has",
    "does": "do",
    "do": "does",
    "doesn't": "don't",
    "don't": "doesn't",
    "isn't": "aren't",
    "aren't": "isn't",
    "wasn't": "weren't",
    "weren't": "wasn't",
}
_IRREGULAR_PAST = {
    "went": "go",
    "saw": "see",
    "took": "take",
    "made": "make",
    "came": "come",
    "gave": "give",
    "found": "find",
    "thought": "think",
    "told": "tell",
    "became": "become",
    "left": "leave",
    "felt": "feel",
    "brought": "bring",
    "began": "begin",
    "kept": "keep",
    "wrote": "write",
    "stood": "stand",
    "heard": "hear",
    "met": "meet",
    "ran": "run",
    "paid": "pay",
    "sat": "sit",
    "spoke": "speak",
    "grew": "grow",
    "lost": "lose",
    "won": "win",
    "bought": "buy",
    "taught": "teach",
    "caught": "catch",
    "chose": "choose",
}
_WORD = re.compile(r"^[A-Za-z]+$")
_NOT_PLURAL = re.compile(r"(ss|us|is|ous|ics)$")


def _article(words: list[str], rng: random.Random) -> bool:
    spots = [i for i, w in enumerate(words) if w.lower() in _ARTICLES]
    if not spots:
        return False
    i = rng.choice(spots)
    if rng.random() < 0.6:
        first = i == 0
        del words[i]
        if first and words:
            words[0] = words[0][:1].upper() + words[0][1:]
    else:
        other = rng.choice([a for a in _ARTICLES if a != words[i].lower()])
        words[i] = other.capitalize() if words[i][:1].isupper() else other
    return True


def _preposition(words: list[str], rng: random.Random) -> bool:
    spots = [i for i, w in enumerate(words) if w.lower() in _PREPOSITIONS]
    if not spots:
        return False
    i = rng.choice(spots)
    other = rng.choice([p for p in _PREPOSITIONS if p != words[i].lower()])
    words[i] = other.capitalize() if words[i][:1].isupper() else other
    return True


def _agreement(words: list[str], rng: random.Random) -> bool:
    spots = [i for i, w in enumerate(words) if w.lower() in _AGREEMENT]
    third = [
        i
        for i, w in enumerate(words)
        if i > 0 and re.fullmatch(r"[a-z]{3,}[^s]s", w) and words[i - 1].lower() in ("he", "she", "it")
    ]
    if third and (not spots or rng.random() < 0.5):  # "she goes" -> "she go"
        i = rng.choice(third)
        words[i] = words[i][:-2] if words[i].endswith("es") and words[i][-3] in "shxz" else words[i][:-1]
        return True
    if not spots:
        return False
    i = rng.choice(spots)
    swap = _AGREEMENT[words[i].lower()]
    words[i] = swap.capitalize() if words[i][:1].isupper() else swap
    return True


def _tense(words: list[str], rng: random.Random) -> bool:
    spots = [i for i, w in enumerate(words) if w.lower() in _IRREGULAR_PAST or re.fullmatch(r"[a-z]{4,}ed", w)]
    if not spots:
        return False
    i = rng.choice(spots)
    w = words[i]
    if w.lower() in _IRREGULAR_PAST:
        words[i] = _IRREGULAR_PAST[w.lower()]
    elif w.endswith("ied"):
        words[i] = w[:-3] + "y"
    elif w[-3] == w[-4]:  # stopped -> stop
        words[i] = w[:-3]
    elif w[-3] not in "aeiouwxy" and w[-4] in "aeiou" and w[-5] not in "aeiou":  # stored -> store
        words[i] = w[:-1]
    else:  # walked -> walk
        words[i] = w[:-2]
    return True


def _number(words: list[str], rng: random.Random) -> bool:
    plural = [
        i
        for i, w in enumerate(words)
        if i > 0 and _WORD.match(w) and len(w) > 3 and w.endswith("s") and w.islower() and not _NOT_PLURAL.search(w)
    ]
    if not plural:
        return False
    i = rng.choice(plural)
    words[i] = words[i][:-1]
    return True


def _spelling(words: list[str], rng: random.Random) -> bool:
    spots = [i for i, w in enumerate(words) if _WORD.match(w) and len(w) >= 5]
    if not spots:
        return False
    i = rng.choice(spots)
    w = list(words[i])
    j = rng.randrange(1, len(w) - 1)
    kind = rng.random()
    if kind < 0.4:
        w[j], w[j + 1] = w[j + 1], w[j]
    elif kind < 0.7:
        del w[j]
    else:
        w.insert(j, w[j])
    words[i] = "".join(w)
    return True


def _punctuation(words: list[str], rng: random.Random) -> bool:
    commas = [i for i, w in enumerate(words) if w.endswith(",") and len(w) > 1]
    final = bool(words) and words[-1][-1:] in ".!?"
    if not commas and not final:
        return False
    if commas and (not final or rng.random() < 0.7):
        i = rng.choice(commas)
        words[i] = words[i][:-1]
    elif len(words[-1]) == 1:  # a tokenized final stop: "eat ."
        del words[-1]
    else:
        words[-1] = words[-1][:-1]
    return True


RULES: dict[str, Callable[[list[str], random.Random], bool]] = {
    "article": _article,
    "preposition": _preposition,
    "agreement": _agreement,
    "tense": _tense,
    "number": _number,
    "spelling": _spelling,
    "punctuation": _punctuation,
}


def add_errors(sentence: str, rng: random.Random, max_errors: int = 3) -> tuple[str, list[str]]:
    """The sentence with 1..max_errors learner errors, and the rules applied (none if nothing applied)."""
    words = sentence.split()
    applied = []
    n = rng.randint(1, max_errors)
    for name in rng.sample(list(RULES), len(RULES)):
        if len(applied) >= n:
            break
        if RULES[name](words, rng):
            applied.append(name)
    return " ".join(words), applied


_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def clean_sentences(texts: Iterable[str], min_words: int = 6, max_words: int = 40) -> list[str]:
    """Single sentences of prose from longer texts (no lists, code, headings or odd characters)."""
    out, seen = [], set()
    for text in texts:
        for sent in _SENTENCE.split(text.strip()):
            sent = " ".join(sent.split())
            n = len(sent.split())
            if not (min_words <= n <= max_words) or not sent[:1].isupper() or sent[-1:] not in ".!?":
                continue
            if re.search(r"[\n*#|`<>{}\[\]_=\\]|^\d|\d\.", sent) or sent in seen:
                continue
            seen.add(sent)
            out.append(sent)
    return out


def synthetic_pairs(texts: Iterable[str], n: int, seed: int) -> list[tuple[str, str, list[str]]]:
    """Up to ``n`` (noisy, clean, rules) triples from the sentences in ``texts``."""
    sentences = clean_sentences(texts)
    rng = random.Random(f"noise-{seed}")
    rng.shuffle(sentences)
    pairs = []
    for clean in sentences:
        if len(pairs) >= n:
            break
        noisy, rules = add_errors(clean, rng)
        if rules and noisy != clean:
            pairs.append((noisy, clean, rules))
    return pairs
