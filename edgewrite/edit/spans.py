"""Edits as data: (source unit, edited unit) -> individual suggestions, each with a character span in
the source, its replacement, a kind from a small fixed set and a one-line reason a person can read.

The alignment follows ERRANT (Bryant et al., ACL 2017): a Damerau-Levenshtein alignment of the two token
sequences whose substitution cost is linguistic (same lemma, same part of speech, character
similarity), so "go -> goes" aligns as one substitution rather than a deletion and an insertion; then
the runs of non-matching tokens are merged or split by ERRANT's rules (case changes with the punctuation
before them, whitespace and hyphen joins, auxiliary + verb groups, content words together; adjacent
substitutions and similar words at a run's edges split). Why by hand: ERRANT (PyPI ``errant``) needs a
spaCy English pipeline, and the official ``en_core_web_sm`` is published only outside the package
registries this project can reach (PyPI carries third-party re-uploads only, which we do not install).
Parts of speech and lemmas come from ``lemminflect`` (dictionary lookups, no tagger), plus closed-class
word lists; the kinds are a coarse version of ERRANT's types. Agreement with the M2 gold edits of the
dev grammar sets is measured by ``m2_agreement`` (benchmarks/edit_alignment.py).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from itertools import combinations, groupby

# The kinds, in the order a report lists them.
SPELLING = "spelling"
CAPITALIZATION = "capitalization"
PUNCTUATION = "punctuation"
DETERMINER = "determiner"
PREPOSITION = "preposition"
VERB_FORM = "verb form"
NOUN_NUMBER = "noun number"
WORD_FORM = "word form"
WORD_ORDER = "word order"
WORD_CHOICE = "word choice"
MISSING_WORD = "missing word"
UNNEEDED_WORD = "unneeded word"
REWRITE = "rewrite"
KINDS = (
    SPELLING,
    CAPITALIZATION,
    PUNCTUATION,
    DETERMINER,
    PREPOSITION,
    VERB_FORM,
    NOUN_NUMBER,
    WORD_FORM,
    WORD_ORDER,
    WORD_CHOICE,
    MISSING_WORD,
    UNNEEDED_WORD,
    REWRITE,
)


@dataclass(frozen=True)
class Suggestion:
    """One change a writer can take or leave: ``source[start:end]`` (code points) becomes ``replacement``."""

    start: int
    end: int
    original: str
    replacement: str
    kind: str
    reason: str
    confidence: float | None = None  # the model's confidence in this edit, where a policy computed one

    def shifted(self, offset: int) -> Suggestion:
        return Suggestion(
            self.start + offset,
            self.end + offset,
            self.original,
            self.replacement,
            self.kind,
            self.reason,
            self.confidence,
        )

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- tokens and word classes
_TOKEN = re.compile(r"[^\W_]+(?:['’][^\W_]+)*|[^\w\s]|_+", re.UNICODE)

_DETERMINERS = frozenset(
    "a an the this that these those my your his her its our their some any no every each all both either "
    "neither much many few little several another other such what whatever which whichever enough".split()
)
_PREPOSITIONS = frozenset(
    "about above across after against along amid among around as at before behind below beneath beside "
    "besides between beyond by despite down during except for from in inside into like near of off on onto "
    "out outside over past per since than through throughout till to toward towards under underneath unlike "
    "until up upon via with within without".split()
)
_PRONOUNS = frozenset(
    "i me you he him she it we us they them myself yourself himself herself itself ourselves yourselves "
    "themselves mine yours hers ours theirs who whom whose one someone anyone everyone nobody something "
    "anything everything nothing".split()
)
_CONJUNCTIONS = frozenset("and or but nor so yet because although though while whereas if unless whether".split())
_AUXILIARIES = frozenset(
    "be am is are was were been being have has had having do does did can could may might must shall should "
    "will would 'm 're 's 've 'd 'll ca wo".split()
)
_PARTICLES = frozenset(["not", "n't", "to", "'s"])
_NUMBERS = frozenset(
    "one two three four five six seven eight nine ten eleven twelve twenty thirty forty fifty hundred thousand "
    "million billion dozen".split()
)
_OPEN = frozenset({"NOUN", "VERB", "ADJ", "ADV", "PROPN", "X"})
_SINGULAR_CUES = frozenset("a an one every each this that another".split())
_PLURAL_CUES = frozenset("these those many several few both two three four five".split())
_THIRD_PERSON = frozenset("he she it this that there".split())


def tokenize(text: str) -> list[tuple[str, int, int]]:
    """Words (with inner apostrophes) and single punctuation marks, with their code-point spans."""
    return [(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(text)]


def _is_punct(word: str) -> bool:
    return not any(ch.isalnum() for ch in word)


@lru_cache(maxsize=65536)
def _lemmas(word: str) -> dict[str, tuple[str, ...]]:
    """lemminflect's dictionary lemmas by part of speech ({} for a word it does not know)."""
    from lemminflect import getAllLemmas

    lower = word.lower().replace("’", "'")
    return dict(getAllLemmas(lower)) or (dict(getAllLemmas(word)) if word != lower else {})


@lru_cache(maxsize=65536)
def _pos(word: str) -> str:
    """A coarse universal part of speech, without context: closed classes first, then the dictionary."""
    low = word.lower().replace("’", "'")
    if _is_punct(word):
        return "PUNCT"
    if low.replace(",", "").replace(".", "").isdigit() or low in _NUMBERS:
        return "NUM"
    for words, tag in (
        (_DETERMINERS, "DET"),
        (_AUXILIARIES, "AUX"),
        (_PARTICLES, "PART"),
        (_PRONOUNS, "PRON"),
        (_PREPOSITIONS, "ADP"),
        (_CONJUNCTIONS, "CCONJ"),
    ):
        if low in words:
            return tag
    found = _lemmas(word)
    for tag in ("NOUN", "VERB", "ADJ", "ADV", "PROPN"):
        if tag in found:
            return tag
    return "PROPN" if word[:1].isupper() else "X"


def _lemma_set(word: str) -> frozenset[str]:
    return frozenset({word.lower(), *(lemma for ls in _lemmas(word).values() for lemma in ls)})


def _similarity(a: str, b: str) -> float:
    """Normalized character similarity (1 - Levenshtein / longer length, as ERRANT's char cost)."""
    a, b = a.lower(), b.lower()
    if a == b:
        return 1.0
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return 1 - prev[-1] / max(len(a), len(b))


# --------------------------------------------------------------------------- alignment (ERRANT's)
def _sub_cost(o: str, c: str) -> float:
    if o.lower() == c.lower():
        return 0.0
    lemma_cost = 0.0 if _lemma_set(o) & _lemma_set(c) else 0.499
    po, pc = _pos(o), _pos(c)
    pos_cost = 0.0 if po == pc else (0.25 if po in _OPEN and pc in _OPEN else 0.5)
    return lemma_cost + pos_cost + (1 - _similarity(o, c))


def _alignment(orig: Sequence[str], cor: Sequence[str]) -> list[tuple[str, int, int, int, int]]:
    """The cheapest sequence of ops (M match, S substitute, D delete, I insert, T<n> transpose n tokens)."""
    n, m = len(orig), len(cor)
    cost = [[0.0] * (m + 1) for _ in range(n + 1)]
    back: list[list[str]] = [[""] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        cost[i][0], back[i][0] = float(i), "D"
    for j in range(1, m + 1):
        cost[0][j], back[0][j] = float(j), "I"
    low_o = [t.lower() for t in orig]
    low_c = [t.lower() for t in cor]
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            if orig[i - 1] == cor[j - 1]:
                cost[i][j], back[i][j] = cost[i - 1][j - 1], "M"
                continue
            options = [
                (cost[i - 1][j - 1] + _sub_cost(orig[i - 1], cor[j - 1]), "S"),
                (cost[i - 1][j] + 1, "D"),
                (cost[i][j - 1] + 1, "I"),
            ]
            k = 2  # a transposition of k tokens: the same words in another order
            while k <= min(i, j) and k <= 8:
                if sorted(low_o[i - k : i]) == sorted(low_c[j - k : j]) and low_o[i - k : i] != low_c[j - k : j]:
                    options.insert(0, (cost[i - k][j - k] + k - 1, f"T{k}"))  # a tie goes to word order
                    break
                k += 1
            best = min(options, key=lambda x: x[0])  # ties: T, then S before D before I (list order)
            cost[i][j], back[i][j] = best
    ops: list[tuple[str, int, int, int, int]] = []
    i, j = n, m
    while i > 0 or j > 0:
        op = back[i][j]
        if op in ("M", "S"):
            ops.append((op, i - 1, i, j - 1, j))
            i, j = i - 1, j - 1
        elif op == "D":
            ops.append((op, i - 1, i, j, j))
            i -= 1
        elif op == "I":
            ops.append((op, i, i, j - 1, j))
            j -= 1
        else:
            k = int(op[1:])
            ops.append(("T", i - k, i, j - k, j))
            i, j = i - k, j - k
    return ops[::-1]


def _merge(seq: list[tuple[str, int, int, int, int]]) -> list[tuple[str, int, int, int, int]]:
    if not seq:
        return []
    return [("X", seq[0][1], seq[-1][2], seq[0][3], seq[-1][4])]


def _process(seq: list, orig: Sequence[str], cor: Sequence[str]) -> list:
    """ERRANT's merging rules over one run of non-matching ops."""
    if len(seq) <= 1:
        return seq
    ops = [s[0] for s in seq]
    if set(ops) in ({"D"}, {"I"}):
        return _merge(seq)
    content = False
    spans = sorted(combinations(range(len(seq)), 2), key=lambda x: x[1] - x[0], reverse=True)
    for start, end in spans:
        if "S" not in ops[start : end + 1]:
            continue
        o = orig[seq[start][1] : seq[end][2]]
        c = cor[seq[start][3] : seq[end][4]]
        if o and c and o[-1].lower() == c[-1].lower():  # case changes
            if start == 0 and ((len(o) == 1 and c[0][:1].isupper()) or (len(c) == 1 and o[0][:1].isupper())):
                return _merge(seq[start : end + 1]) + _process(seq[end + 1 :], orig, cor)
            if (len(o) > 1 and _is_punct(o[-2])) or (len(c) > 1 and _is_punct(c[-2])):
                return (
                    _process(seq[: end - 1], orig, cor)
                    + _merge(seq[end - 1 : end + 1])
                    + _process(seq[end + 1 :], orig, cor)
                )
        joined_o = re.sub(r"['\-]", "", "".join(o).lower())
        joined_c = re.sub(r"['\-]", "", "".join(c).lower())
        if joined_o == joined_c:  # whitespace and hyphens: [every day -> everyday]
            return _process(seq[:start], orig, cor) + _merge(seq[start : end + 1]) + _process(seq[end + 1 :], orig, cor)
        tags = {_pos(t) for t in (*o, *c)}
        if len(o) != len(c) and (len(tags) == 1 or tags <= {"AUX", "PART", "VERB"}):  # [to eat -> eating]
            return _process(seq[:start], orig, cor) + _merge(seq[start : end + 1]) + _process(seq[end + 1 :], orig, cor)
        if end - start < 2:
            if len(o) == len(c) == 2:  # adjacent substitutions stay apart
                return _process(seq[: start + 1], orig, cor) + _process(seq[start + 1 :], orig, cor)
            if (ops[start] == "S" and _similarity(o[0], c[0]) > 0.75) or (
                ops[end] == "S" and _similarity(o[-1], c[-1]) > 0.75
            ):
                return _process(seq[: start + 1], orig, cor) + _process(seq[start + 1 :], orig, cor)
            if end == len(seq) - 1 and (
                (ops[-1] in ("D", "S") and _pos(o[-1]) == "DET") or (ops[-1] in ("I", "S") and _pos(c[-1]) == "DET")
            ):
                return _process(seq[:-1], orig, cor) + [seq[-1]]
        if tags & _OPEN:
            content = True
    return _merge(seq) if content else seq


def align(orig: Sequence[str], cor: Sequence[str]) -> list[tuple[int, int, int, int]]:
    """The edits that turn token sequence ``orig`` into ``cor``: (o_start, o_end, c_start, c_end)."""
    edits = []
    ops = _alignment(orig, cor)
    for kind, run in groupby(ops, key=lambda op: op[0] if op[0] in ("M", "T") else "E"):
        run = list(run)
        if kind == "M":
            continue
        for op in run if kind == "T" else _process(run, orig, cor):
            edits.append((op[1], op[2], op[3], op[4]))
    return edits


# --------------------------------------------------------------------------- kinds and reasons
def _q(tokens: Sequence[str]) -> str:
    return "'" + " ".join(tokens) + "'"


def _forms(lemma: str, word: str) -> set[str]:
    """The Penn tags ``word`` has as an inflection of verb ``lemma`` (VBZ, VBD, ...; "run" is VB, VBP, VBN)."""
    from lemminflect import getAllInflections

    low = word.lower()
    return {tag for tag, forms in getAllInflections(lemma, upos="VERB").items() if low in forms}


def _verb_reason(o: str, c: str, before: str | None) -> str:
    shared = [lemma for lemma in _lemmas(o).get("VERB", ()) + _lemmas(o).get("AUX", ()) if lemma in _lemma_set(c)]
    to, tc = (_forms(shared[0], o), _forms(shared[0], c)) if shared else (set(), set())
    after = f" after '{before}'" if before and _pos(before) in ("PRON", "NOUN", "PROPN") else ""
    present = {"VB", "VBP"}
    if ("VBZ" in to and tc & present) or ("VBZ" in tc and to & present):
        return f"agreement: '{o}' → '{c}'{after}"
    if {o.lower(), c.lower()} in ({"is", "are"}, {"was", "were"}, {"am", "are"}, {"am", "is"}):
        return f"agreement: '{o}' → '{c}'{after}"
    if ("VBD" in to) != ("VBD" in tc):
        participle = ("VBN" in to and "VBD" in tc) or ("VBN" in tc and "VBD" in to)  # [went -> gone]
        return f"verb form: '{o}' → '{c}'" if participle else f"tense: '{o}' → '{c}'"
    return f"verb form: '{o}' → '{c}'"


def _noun_reason(o: str, c: str, before: str | None) -> str:
    cue = before.lower() if before else ""
    if cue in _SINGULAR_CUES or cue in _PLURAL_CUES:
        return f"noun number: '{o}' → '{c}' after '{before}'"
    return f"noun number: '{o}' → '{c}'"


def _one_word(o: str, c: str, before: str | None) -> tuple[str, str]:
    po, pc = _pos(o), _pos(c)
    if po == pc == "DET":
        return DETERMINER, f"determiner: '{o}' → '{c}'"
    if po == pc == "ADP":
        return PREPOSITION, f"preposition: '{o}' → '{c}'"
    lo, lc = _lemmas(o), _lemmas(c)
    if _lemma_set(o) & _lemma_set(c) or {po, pc} <= {"AUX"}:
        verbs_o = set(lo.get("VERB", ())) | set(lo.get("AUX", ())) | ({o.lower()} if po == "AUX" else set())
        verbs_c = set(lc.get("VERB", ())) | set(lc.get("AUX", ())) | ({c.lower()} if pc == "AUX" else set())
        nouns = set(lo.get("NOUN", ())) & set(lc.get("NOUN", ()))
        verbs = (verbs_o & verbs_c) or {po, pc} <= {"AUX"}
        if verbs and nouns:  # [two cat -> cats], [she go -> goes]: the word before decides, as a tagger would
            verbs = before is None or _pos(before) in ("PRON", "NOUN", "PROPN", "AUX", "PART", "ADV", "X")
        if verbs:
            return VERB_FORM, _verb_reason(o, c, before)
        if nouns:
            return NOUN_NUMBER, _noun_reason(o, c, before)
        return WORD_FORM, f"word form: '{o}' → '{c}'"
    if not lo and o.islower() and _similarity(o, c) >= 0.5:  # not a word the dictionary knows, close to one
        return SPELLING, f"spelling: '{o}' → '{c}'"
    prefix = len(_common_prefix(o.lower(), c.lower()))
    if prefix >= 4 and prefix >= min(len(o), len(c)) - 3:  # [happy -> happiness], [decide -> decision]
        return WORD_FORM, f"word form: '{o}' → '{c}'"
    if _similarity(o, c) >= 0.8:
        return SPELLING, f"spelling: '{o}' → '{c}'"
    return WORD_CHOICE, f"word choice: '{o}' → '{c}'"


def _common_prefix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def classify(o: Sequence[str], c: Sequence[str], before: str | None = None) -> tuple[str, str]:
    """The kind and a one-line reason of the edit ``o`` -> ``c`` (token lists; ``before``: the token before)."""
    if not o and not c:
        raise ValueError("an edit changes something")
    if o and c and " ".join(o).lower() == " ".join(c).lower():
        return CAPITALIZATION, f"capitalization: {_q(o)} → {_q(c)}"
    if all(_is_punct(t) for t in (*o, *c)):
        if not o:
            return PUNCTUATION, f"punctuation: add {_q(c)}"
        if not c:
            return PUNCTUATION, f"punctuation: remove {_q(o)}"
        return PUNCTUATION, f"punctuation: {_q(o)} → {_q(c)}"
    if o and c and re.sub(r"['\-\s]", "", "".join(o).lower()) == re.sub(r"['\-\s]", "", "".join(c).lower()):
        what = "spacing" if len(o) != len(c) or "-" in "".join(o + c) else "spelling"  # [it's -> its]
        return SPELLING, f"{what}: {_q(o)} → {_q(c)}"
    if len(o) > 1 and sorted(t.lower() for t in o) == sorted(t.lower() for t in c):
        return WORD_ORDER, f"word order: {_q(o)} → {_q(c)}"
    words_o = [t for t in o if not _is_punct(t)]
    words_c = [t for t in c if not _is_punct(t)]
    if not o or not c:
        words, added = (words_c, True) if not o else (words_o, False)
        verb = "add" if added else "remove"
        tags = {_pos(t) for t in words}
        if tags == {"DET"}:
            return DETERMINER, f"determiner: {verb} {_q(words)}"
        if tags == {"ADP"}:
            return PREPOSITION, f"preposition: {verb} {_q(words)}"
        if added:
            return MISSING_WORD, f"missing word: add {_q(c)}"
        return UNNEEDED_WORD, f"unneeded word: remove {_q(o)}"
    if len(words_o) == len(words_c) == 1 and len(o) + len(c) <= 3:
        return _one_word(words_o[0], words_c[0], before)
    tags = {_pos(t) for t in (*o, *c)}
    if tags <= {"AUX", "PART", "VERB"}:  # [has went -> has gone], [to eat -> eating]
        return VERB_FORM, f"verb form: {_q(o)} → {_q(c)}"
    if len(o) + len(c) <= 3:
        return WORD_CHOICE, f"word choice: {_q(o)} → {_q(c)}"
    return REWRITE, f"rewrite: {_q(o)} → {_q(c)}"


# --------------------------------------------------------------------------- text -> suggestions
_CONFIDENCES: OrderedDict[tuple[str, str], list[Suggestion]] = OrderedDict()


def remember_confidences(source: str, edited: str, found: list[Suggestion]) -> None:
    """Keep the confidences a model gave the edits of (source, edited), so that every interface that
    derives the edits of that unit again (check, lsp, serve, assist) hands them out with them."""
    _CONFIDENCES[(source.strip(), edited.strip())] = found
    while len(_CONFIDENCES) > 20_000:
        _CONFIDENCES.popitem(last=False)


# Inline code, URLs and e-mail addresses in prose are the writer's literal text: no edit may touch them.
_PROTECTED = re.compile(r"`[^`\n]+`|https?://\S+|www\.\S+|\b[\w.+-]+@[\w-]+\.[\w.-]+\b")


def protected_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in _PROTECTED.finditer(text)]


def suggestions(source: str, edited: str) -> list[Suggestion]:
    """The individual edits that turn ``source`` into ``edited`` (spans in ``source``'s code points), less
    any that would touch inline code, a URL or an e-mail address. Applying all of them
    (``apply_suggestions``) gives ``edited`` up to the whitespace between tokens (and those spans)."""
    keep = protected_spans(source)
    found = [
        s
        for s, _, _ in located_suggestions(source, edited)
        if not any(a < s.end and s.start < b or (s.start == s.end and a < s.start < b) for a, b in keep)
    ]
    known = list(_CONFIDENCES.get((source.strip(), edited.strip()), []))
    if not known:
        return found
    out = []
    for s in found:
        match = next((k for k in known if (k.original, k.replacement) == (s.original, s.replacement)), None)
        if match is not None:
            known.remove(match)
            s = Suggestion(s.start, s.end, s.original, s.replacement, s.kind, s.reason, match.confidence)
        out.append(s)
    return out


def located_suggestions(source: str, edited: str) -> list[tuple[Suggestion, int, int]]:
    """Each suggestion with the span its replacement takes in ``edited``: ``edited[a:b] == replacement``, and
    ``edited[:a] + original + edited[b:]`` is ``edited`` with that one edit left out."""
    if source == edited:
        return []
    src, cor = tokenize(source), tokenize(edited)
    out = []
    for i1, i2, j1, j2 in align([t for t, _, _ in src], [t for t, _, _ in cor]):
        o = [t for t, _, _ in src[i1:i2]]
        c = [t for t, _, _ in cor[j1:j2]]
        kind, reason = classify(o, c, src[i1 - 1][0] if i1 > 0 else None)
        if i1 < i2 and j1 < j2:
            start, end = src[i1][1], src[i2 - 1][2]
            at, to = cor[j1][1], cor[j2 - 1][2]
            replacement = edited[at:to]
        elif i1 < i2:  # a deletion takes the space before it (or after it), never a line break
            start, end = src[i1][1], src[i2 - 1][2]
            before_gap = source[src[i1 - 1][2] : start] if i1 > 0 else "\n"
            after_gap = source[end : src[i2][1]] if i2 < len(src) else "\n"
            if "\n" not in before_gap and (i1 > 0 and (before_gap or "\n" in after_gap or i2 == len(src))):
                start -= len(before_gap)
                at = cor[j1 - 1][2] if j1 > 0 else 0
            elif "\n" not in after_gap:
                end += len(after_gap)
                at = cor[j1][1] if j1 < len(cor) else len(edited)
            else:
                at = cor[j1 - 1][2] if j1 > 0 else 0
            to, replacement = at, ""
        else:  # an insertion at a point, with the space the edited text has around it
            text = edited[cor[j1][1] : cor[j2 - 1][2]]
            if i1 > 0:
                start = end = src[i1 - 1][2]
                gap = edited[cor[j1 - 1][2] : cor[j1][1]] if j1 > 0 else " "
                replacement = gap + text
                to = cor[j2 - 1][2]
                at = to - len(replacement)
            else:
                start = end = src[0][1] if src else 0
                gap = edited[cor[j2 - 1][2] : cor[j2][1]] if j2 < len(cor) else " "
                replacement = text + gap
                at = cor[j1][1]
                to = at + len(replacement)
        if edited[at:to] != replacement:  # a gap the edited text does not have: no reliable location
            at = to = -1
        out.append((Suggestion(start, end, source[start:end], replacement, kind, reason), at, to))
    return out


def apply_suggestions(text: str, edits: Iterable[Suggestion]) -> tuple[str, list[Suggestion]]:
    """``text`` with ``edits`` applied, and the edits that were dropped: any whose span is out of range,
    overlaps an earlier one, or no longer holds its ``original`` text (a stale or misbehaving client)."""
    kept, dropped = [], []
    last_end = -1
    for e in sorted(edits, key=lambda e: (e.start, e.end)):
        if not (0 <= e.start <= e.end <= len(text)) or text[e.start : e.end] != e.original or e.start < last_end:
            dropped.append(e)
            continue
        if e.start == e.end and e.start == last_end and kept and kept[-1].start == kept[-1].end:
            dropped.append(e)  # two insertions at one point: their order is not defined
            continue
        kept.append(e)
        last_end = e.end
    out, pos = [], 0
    for e in kept:
        out.append(text[pos : e.start])
        out.append(e.replacement)
        pos = e.end
    out.append(text[pos:])
    return "".join(out), dropped


def document_suggestions(units: Sequence[tuple[int, str, str]]) -> list[Suggestion]:
    """Suggestions over a document from its units: (offset in the document, unit text, edited unit)."""
    return [s.shifted(offset) for offset, before, after in units for s in suggestions(before, after)]


def line_column(text: str, offsets: Iterable[int], utf16: bool = False) -> dict[int, tuple[int, int]]:
    """Code-point offsets -> (0-based line, column); columns in UTF-16 code units when ``utf16`` (LSP)."""
    wanted = sorted(set(offsets))
    out: dict[int, tuple[int, int]] = {}
    line, col, k = 0, 0, 0
    for pos, ch in enumerate(text):
        if k >= len(wanted):
            break
        while k < len(wanted) and wanted[k] == pos:
            out[wanted[k]] = (line, col)
            k += 1
        if ch == "\n":
            line, col = line + 1, 0
        else:
            col += 2 if utf16 and ord(ch) > 0xFFFF else 1
    while k < len(wanted):
        out[wanted[k]] = (line, col)
        k += 1
    return out


# --------------------------------------------------------------------------- agreement with M2 gold edits
# M2 error types (CoNLL-2013's NUCLE tags and ERRANT's) -> the kinds that describe them; a type missing
# here (sentence-level NUCLE tags, "Others") has no counterpart and is left out of the kind agreement.
_NUCLE_KINDS = {
    "ArtOrDet": {DETERMINER},
    "Nn": {NOUN_NUMBER},
    "Npos": {WORD_FORM},
    "Prep": {PREPOSITION},
    "Vt": {VERB_FORM},
    "Vform": {VERB_FORM},
    "SVA": {VERB_FORM},
    "Vm": {VERB_FORM, WORD_CHOICE},
    "V0": {VERB_FORM, MISSING_WORD},
    "Wci": {WORD_CHOICE},
    "Wa": {WORD_CHOICE},
    "Wform": {WORD_FORM},
    "WOinc": {WORD_ORDER},
    "WOadv": {WORD_ORDER},
    "Mec": {SPELLING, PUNCTUATION, CAPITALIZATION},
    "Rloc-": {UNNEEDED_WORD},
    "Trans": {WORD_CHOICE, MISSING_WORD, UNNEEDED_WORD},
    "Pform": {WORD_CHOICE, WORD_FORM},
    "Pref": {WORD_CHOICE, WORD_FORM},
}
_ERRANT_KINDS = {
    "ORTH": {CAPITALIZATION, SPELLING},
    "SPELL": {SPELLING},
    "PUNCT": {PUNCTUATION},
    "DET": {DETERMINER},
    "PREP": {PREPOSITION},
    "VERB:SVA": {VERB_FORM},
    "VERB:FORM": {VERB_FORM},
    "VERB:TENSE": {VERB_FORM},
    "VERB:INFL": {VERB_FORM, SPELLING},
    "NOUN:NUM": {NOUN_NUMBER},
    "NOUN:INFL": {NOUN_NUMBER, SPELLING},
    "NOUN:POSS": {WORD_FORM},
    "MORPH": {WORD_FORM},
    "ADJ:FORM": {WORD_FORM},
    "WO": {WORD_ORDER},
    "CONTR": {SPELLING, WORD_FORM},
}


def kinds_of_m2_type(m2_type: str) -> set[str]:
    """The kinds an M2 error type (NUCLE's or ERRANT's) corresponds to; empty when none does."""
    if m2_type in _NUCLE_KINDS:
        return set(_NUCLE_KINDS[m2_type])
    op, _, pos = m2_type.partition(":")
    if op not in ("M", "R", "U") or not pos:
        return set()
    if pos in _ERRANT_KINDS:
        kinds = set(_ERRANT_KINDS[pos])
        if op != "R" and pos.startswith("VERB"):
            kinds.add(MISSING_WORD if op == "M" else UNNEEDED_WORD)
        return kinds
    if op == "M":
        return {MISSING_WORD}
    if op == "U":
        return {UNNEEDED_WORD}
    return {REWRITE, WORD_CHOICE} if pos == "OTHER" else {WORD_CHOICE}


def _m2_blocks(text: str) -> Iterable[tuple[list[str], dict[int, list[tuple[int, int, str, str]]]]]:
    """(tokens, annotator -> [(start, end, type, first correction)]) of every M2 block, noops left out."""
    for block in text.strip().split("\n\n"):
        lines = block.strip().split("\n")
        if not lines or not lines[0].startswith("S "):
            continue
        tokens = lines[0][2:].split()
        edits: dict[int, list[tuple[int, int, str, str]]] = {}
        for line in lines[1:]:
            if not line.startswith("A "):
                continue
            fields = line[2:].split("|||")
            start, end = (int(x) for x in fields[0].split()[:2])
            ann = int(fields[5])
            edits.setdefault(ann, [])
            if fields[1] == "noop" or start < 0:
                continue
            correction = fields[2].split("||")[0]
            edits[ann].append((start, end, fields[1], "" if correction == "-NONE-" else correction.strip()))
        yield tokens, edits


def m2_agreement(text: str) -> dict:
    """How the alignment's edits agree with the gold edits of an M2 file. For each annotator of each
    sentence, the corrected sentence is rebuilt from that annotator's edits and aligned with the source;
    an edit agrees when its token span and correction equal a gold edit's. Kind agreement: of the agreeing
    edits whose gold type has a counterpart among the kinds, the share classified as one of them.
    Sentences whose gold edits overlap (annotation noise: the corrected text is ambiguous) are counted
    and left out."""
    gold_n = ours_n = both = typed = kind_ok = skipped = sentences = 0
    confusion: dict[str, dict[str, int]] = {}
    for tokens, annotators in _m2_blocks(text):
        for gold in annotators.values():
            spans = sorted((s, e) for s, e, _, _ in gold)
            if any(b[0] < a[1] or (b == a and a[0] == a[1]) for a, b in zip(spans, spans[1:], strict=False)):
                skipped += 1
                continue
            sentences += 1
            corrected, shift = list(tokens), 0
            for s, e, _, c in sorted(gold, key=lambda g: (g[0], g[1])):
                new = c.split()
                corrected[s + shift : e + shift] = new
                shift += len(new) - (e - s)
            wanted = {(s, e, c): t for s, e, t, c in gold}
            for i1, i2, j1, j2 in align(tokens, corrected):
                ours_n += 1
                key = (i1, i2, " ".join(corrected[j1:j2]))
                if key not in wanted:
                    continue
                both += 1
                kinds = kinds_of_m2_type(wanted[key])
                if kinds:
                    typed += 1
                    kind, _ = classify(tokens[i1:i2], corrected[j1:j2], tokens[i1 - 1] if i1 else None)
                    kind_ok += kind in kinds
                    row = confusion.setdefault(wanted[key], {})
                    row[kind] = row.get(kind, 0) + 1
            gold_n += len(gold)
    precision = both / ours_n if ours_n else 1.0
    recall = both / gold_n if gold_n else 1.0
    return {
        "sentences": sentences,
        "skipped_overlapping": skipped,
        "gold_edits": gold_n,
        "aligned_edits": ours_n,
        "agreeing_edits": both,
        "span_precision": precision,
        "span_recall": recall,
        "span_f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "typed_edits": typed,
        "kind_agreement": kind_ok / typed if typed else 0.0,
        "kinds_by_gold_type": confusion,
    }
