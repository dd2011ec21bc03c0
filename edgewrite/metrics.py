"""The field's metrics, following the reference scorers each task publishes with.

- SARI as EASSE ``corpus_sari`` computes it (defaults: lowercase, 13a tokens, corpus-level n-gram
  statistics, F1 for deletion), not Hugging Face ``evaluate``'s sentence-averaged variant.
- GLEU as the JFLEG scorer (keisks/jfleg ``gleu.py``) computes it: 500 iterations, each drawing one
  reference per sentence with ``random.seed(101 * j)`` and Python 3's ``randint``, mean of corpus GLEU.
- F0.5 as the NUS M2 scorer computes it against M2 gold edits (edit lattice, max 2 unchanged words,
  per-sentence annotator choice that maximizes the cumulative F).
- BLEU through sacrebleu; iBLEU = alpha * BLEU(output, refs) - (1 - alpha) * BLEU(output, input).
- exact match.

Why by hand: EASSE installs only from git (its ``tseval`` dependency), the JFLEG and M2 scorers are
unpackaged scripts (the M2 one Python 2), and ERRANT needs a spaCy model from outside PyPI. Each
function here is checked against values computed by the reference scorers (shared/metric-golden).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

NGRAM_ORDER = 4


# --------------------------------------------------------------------------- SARI (EASSE)
@lru_cache(maxsize=1)
def _tokenizer_13a():
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

    return Tokenizer13a()


def _normalize(text: str) -> str:
    return _tokenizer_13a()(text.lower())


def _ngram_counts(tokens: list[str], n: int) -> Counter:
    return Counter(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def _scaled(counter: Counter, factor: int) -> Counter:
    return Counter({k: v * factor for k, v in counter.items()})


def _prf(correct: float, sys_total: float, ref_total: float) -> float:
    precision = correct / sys_total if sys_total > 0 else 0.0
    recall = correct / ref_total if ref_total > 0 else 0.0
    return 2 * precision * recall / (precision + recall) if precision > 0 and recall > 0 else 0.0


def sari_operations(sources: Sequence[str], outputs: Sequence[str], references: Sequence[Sequence[str]]) -> dict:
    """Corpus-level add / keep / delete F1 (0-100); SARI is their mean."""
    stats = {op: [[0, 0, 0] for _ in range(NGRAM_ORDER)] for op in ("add", "keep", "del")}
    for src, out, refs in zip(sources, outputs, references, strict=True):
        s_tok, o_tok = _normalize(src).split(), _normalize(out).split()
        r_toks = [_normalize(r).split() for r in refs]
        k = len(refs)
        for n in range(NGRAM_ORDER):
            s, o = _ngram_counts(s_tok, n + 1), _ngram_counts(o_tok, n + 1)
            r = Counter()
            for rt in r_toks:
                r += _ngram_counts(rt, n + 1)
            added = set(o) - set(s)
            st = stats["add"][n]
            st[0] += len(added & set(r))
            st[1] += len(added)
            st[2] += len(set(r) - set(s))
            s_k, o_k = _scaled(s, k), _scaled(o, k)
            kept_sys, kept_ref = s_k & o_k, s_k & r
            st = stats["keep"][n]
            st[0] += sum((kept_sys & kept_ref).values())
            st[1] += sum(kept_sys.values())
            st[2] += sum(kept_ref.values())
            del_sys, del_ref = s_k - o_k, s_k - r
            st = stats["del"][n]
            st[0] += sum((del_sys & del_ref).values())
            st[1] += sum(del_sys.values())
            st[2] += sum(del_ref.values())
    return {op: 100.0 * sum(_prf(*stats[op][n]) for n in range(NGRAM_ORDER)) / NGRAM_ORDER for op in stats}


def sari(sources: Sequence[str], outputs: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    ops = sari_operations(sources, outputs, references)
    return (ops["add"] + ops["keep"] + ops["del"]) / 3


# --------------------------------------------------------------------------- GLEU (JFLEG)
def _gleu_stats(hyp: list[str], src_ngrams: list[Counter], ref: list[str]) -> list[int]:
    stats = [len(hyp), len(ref)]
    for n in range(1, NGRAM_ORDER + 1):
        h = Counter(tuple(hyp[i : i + n]) for i in range(len(hyp) + 1 - n))
        r = Counter(tuple(ref[i : i + n]) for i in range(len(ref) + 1 - n))
        s_not_r = Counter({k: v for k, v in src_ngrams[n - 1].items() if k not in r})
        stats.append(max(sum((h & r).values()) - sum((h & s_not_r).values()), 0))
        stats.append(max(len(hyp) + 1 - n, 0))
    return stats


def _gleu_from_stats(stats: list[int]) -> float:
    if any(x == 0 for x in stats):
        return 0.0
    c, r = stats[:2]
    log_prec = sum(math.log(x / y) for x, y in zip(stats[2::2], stats[3::2], strict=True)) / NGRAM_ORDER
    return math.exp(min(0.0, 1 - r / c) + log_prec)


def gleu(
    sources: Sequence[str], outputs: Sequence[str], references: Sequence[Sequence[str]], iterations: int = 500
) -> float:
    """Mean corpus GLEU over ``iterations`` reference draws (0-1), on whitespace tokens.

    All rows must have the same number of references, as in the JFLEG scorer.
    """
    n_refs = len(references[0])
    if any(len(r) != n_refs for r in references):
        raise ValueError("GLEU needs the same number of references for every row")
    srcs = [s.split() for s in sources]
    src_ngrams = [[Counter(tuple(t[i : i + n]) for i in range(len(t) + 1 - n)) for n in range(1, 5)] for t in srcs]
    draws = []
    for j in range(iterations):
        random.seed(j * 101)
        draws.append([random.randint(0, n_refs - 1) for _ in outputs])
    totals = [[0] * (2 + 2 * NGRAM_ORDER) for _ in range(iterations)]
    for i, out in enumerate(outputs):
        hyp = out.split()
        per_ref: dict[int, list[int]] = {}
        for j in range(iterations):
            ref = draws[j][i]
            if ref not in per_ref:
                per_ref[ref] = _gleu_stats(hyp, src_ngrams[i], references[i][ref].split())
            totals[j] = [a + b for a, b in zip(totals[j], per_ref[ref], strict=True)]
    return sum(_gleu_from_stats(t) for t in totals) / iterations


# --------------------------------------------------------------------------- M2 F0.5 (NUS M2 scorer)
@dataclass
class M2Sentence:
    source: str
    edits: dict[int, list[tuple[int, int, str, list[str]]]]  # annotator -> (start, end, original, corrections)


def parse_m2(text: str) -> list[M2Sentence]:
    """Gold sentences and edits of an M2 file, read as the M2 scorer reads them (noop kept as an annotator)."""
    sentences = []
    for block in text.split("\n\n"):
        lines = [line for line in block.splitlines() if line]
        if not lines:
            continue
        source_lines = [line[2:].strip() for line in lines if line.startswith("S ")]
        if len(source_lines) != 1:
            raise ValueError(f"an M2 block needs exactly one S line: {lines[0][:60]!r}")
        tokens = source_lines[0].split()
        annotations: dict[int, list] = {}
        for line in lines[1:]:
            if not line.startswith("A "):
                continue
            fields = line[2:].split("|||")
            start, end = (int(x) for x in fields[0].split()[:2])
            if fields[1] == "noop":
                start = end = -1
            corrections = [c.strip() if c != "-NONE-" else "" for c in fields[2].split("||")]
            original = " ".join(tokens[start:end])
            annotations.setdefault(int(fields[5]), []).append((start, end, original, corrections))
        n = len(tokens)
        edits = {a: [e for e in es if 0 <= e[0] <= n and 0 <= e[1] <= n] for a, es in annotations.items()}
        sentences.append(M2Sentence(source_lines[0], edits or {0: []}))
    return sentences


def _levenshtein(first: list[str], second: list[str], cost_sub: int) -> dict:
    rows, cols = len(first) + 1, len(second) + 1
    dist = [[0] * cols for _ in range(rows)]
    back: dict = {}
    for i in range(1, rows):
        dist[i][0] = i
        back[(i, 0)] = [((i - 1, 0), ("del", i - 1, i, first[i - 1], "", 0))]
    for j in range(1, cols):
        dist[0][j] = j
        back[(0, j)] = [((0, j - 1), ("ins", 0, 0, "", second[j - 1], 0))]
    for i in range(1, rows):
        for j in range(1, cols):
            deletion = dist[i - 1][j] + 1
            insertion = dist[i][j - 1] + 1
            same = first[i - 1] == second[j - 1]
            substitution = dist[i - 1][j - 1] + (0 if same else cost_sub)
            best = min(substitution, deletion, insertion)
            entries = back.setdefault((i, j), [])
            if substitution == best:
                dist[i][j] = substitution
                edit = (
                    ("noop", i - 1, i, first[i - 1], second[j - 1], 1)
                    if same
                    else ("sub", i - 1, i, first[i - 1], second[j - 1], 0)
                )
                entries.append(((i - 1, j - 1), edit))
            if deletion == best:
                dist[i][j] = deletion
                entries.append(((i - 1, j), ("del", i - 1, i, first[i - 1], "", 0)))
            if insertion == best:
                dist[i][j] = insertion
                entries.append(((i, j - 1), ("ins", i, i, "", second[j - 1], 0)))
    return back


def _edit_graph(back: dict, start: tuple[int, int]) -> tuple[list, list, dict, dict]:
    vertices, edges, dist, edits = [], [], {}, {}
    queue = [start]
    while queue:
        v = queue.pop(0)
        if v in vertices:
            continue
        vertices.append(v)
        for nxt, edit in back.get(v, []):
            edges.append((nxt, v))
            dist[(nxt, v)] = 1
            edits[(nxt, v)] = edit
            if nxt not in queue:
                queue.append(nxt)
    return vertices, edges, dist, edits


def _merge_edits(e1: tuple, e2: tuple) -> tuple:
    kinds = (e1[0], e2[0])
    unchanged = e1[5] + e2[5]
    if kinds == ("noop", "noop"):
        return ("noop", e1[1], e2[2], e1[3] + " " + e2[3], e1[4] + " " + e2[4], unchanged)
    if kinds == ("ins", "ins"):
        return ("ins", e1[1], e2[2], "", e1[4] + " " + e2[4], unchanged)
    if kinds == ("del", "del"):
        return ("del", e1[1], e2[2], e1[3] + " " + e2[3], "", unchanged)
    # Every other combination is a substitution; the reference joins the parts that are non-empty
    # on each side (an insertion has no original, a deletion no correction).
    orig = e2[3] if e1[0] == "ins" else e1[3] if e2[0] == "ins" else e1[3] + " " + e2[3]
    corr = e1[4] if e2[0] == "del" else e2[4] if e1[0] == "del" else e1[4] + " " + e2[4]
    return ("sub", e1[1], e2[2], orig, corr, unchanged)


def _transitive_arcs(vertices: list, edges: list, dist: dict, edits: dict, max_unchanged: int) -> None:
    inf = float("inf")
    for vk in vertices:
        for vi in vertices:
            if (vi, vk) not in edits:
                continue
            for vj in vertices:
                if (vk, vj) not in edits:
                    continue
                dik, dkj = dist.get((vi, vk), inf), dist.get((vk, vj), inf)
                if dik + dkj < dist.get((vi, vj), inf):
                    merged = _merge_edits(edits[(vi, vk)], edits[(vk, vj)])
                    if merged[-1] <= max_unchanged:
                        edges.append((vi, vj))
                        dist[(vi, vj)] = dik + dkj
                        edits[(vi, vj)] = merged
    # The reference removes long noop arcs while iterating over the same list, which skips the
    # element after each removal; kept as is, since it decides which paths exist.
    for edge in edges:
        if edge in edits and edits[edge][0] == "noop" and dist[edge] > 1:
            edges.remove(edge)
            dist[edge] = inf
            del edits[edge]


def _set_weights(edges: list, dist: dict, edits: dict, gold: list) -> dict:
    eps = 0.001
    weights = dict(dist)
    by_span: dict = {}
    gold_by_span: dict = {}
    for edge in edges:
        span = edits[edge][1:3]
        by_span.setdefault(span, []).append(edge)
        gold_by_span.setdefault(span, [])
    for g in gold:
        gold_by_span.setdefault((g[0], g[1]), []).append(g)

    def matches(edit: tuple, g: tuple) -> bool:
        return edit[1] == g[0] and edit[2] == g[1] and edit[3] == g[2] and edit[4] in g[3]

    for span in sorted(by_span):
        arcs = sorted(by_span[span])
        golds = gold_by_span[span]
        if span[0] != span[1]:  # deletion or substitution
            for edge in arcs:
                if any(matches(edits[edge], g) for g in golds):
                    weights[edge] = -len(edges)
                elif edits[edge][0] != "noop":
                    weights[edge] += eps
            continue
        # insertions: match gold edits from both ends, in order (the reference's two-pointer walk)
        lptr, rptr, cur = 0, len(arcs) - 1, 0
        g_lptr, g_rptr = 0, len(golds) - 1
        while lptr <= rptr:
            edge = arcs[cur]
            edit = edits[edge]
            order = range(g_lptr, g_rptr + 1) if cur == lptr else reversed(range(g_lptr, g_rptr + 1))
            hit = False
            for i in order:
                if matches(edit, golds[i]):
                    hit = True
                    weights[edge] = -len(edges)
                    if cur == lptr:
                        g_lptr = i + 1
                    else:
                        g_rptr = i - 1
                    break
            if not hit and edit[0] != "noop":
                weights[edge] += eps
            if hit:
                if cur == lptr:
                    lptr += 1
                    while lptr < len(arcs) and arcs[lptr][0] != arcs[cur][1]:
                        if edits[arcs[lptr]] != "noop":
                            weights[arcs[lptr]] += eps
                        lptr += 1
                    cur = lptr
                else:
                    rptr -= 1
                    while rptr >= 0 and arcs[rptr][1] != arcs[cur][0]:
                        if edits[arcs[rptr]] != "noop":
                            weights[arcs[rptr]] += eps
                        rptr -= 1
                    cur = rptr
            elif cur == lptr:
                lptr += 1
                cur = rptr
            else:
                rptr -= 1
                cur = lptr
    return weights


def _best_edit_sequence(vertices: list, edges: list, weights: dict, edits: dict) -> list[tuple]:
    """Bellman-Ford over the lattice; the lowest-weight path prefers gold-matching edits."""
    best = {v: float("inf") for v in vertices}
    best[(0, 0)] = 0
    path: dict = {}
    for _ in range(len(vertices) - 1):
        changed = False
        for edge in edges:
            v, w = edge
            if best[v] + weights[edge] < best[w]:
                best[w] = best[v] + weights[edge]
                path[w] = v
                changed = True
        if not changed:  # converged: further passes of the reference change nothing
            break
    seq = []
    v = max(vertices)
    while v in path:
        w = path[v]
        edit = edits[(w, v)]
        if edit[0] != "noop":
            seq.append(edit[1:5])
        v = w
    return seq


def _match(seq: list[tuple], gold: list[tuple]) -> int:
    """Gold edits matched in file order. As in the reference, the scan does not stop at the first
    match, so a system edit counts once for every identical gold edit after the last match."""
    correct, last = 0, 0
    for e in reversed(seq):
        for i in range(last, len(gold)):
            g = gold[i]
            if e[0] == g[0] and e[1] == g[1] and e[2] == g[2] and e[3] in g[3]:
                correct += 1
                last = i + 1
    return correct


def _sentence_lattice(source: str, output: str, max_unchanged: int) -> tuple[list, list, dict, dict]:
    src, hyp = source.split(), output.split()
    start = (len(src), len(hyp))
    v1, e1, d1, x1 = _edit_graph(_levenshtein(src, hyp, 1), start)
    v2, e2, d2, x2 = _edit_graph(_levenshtein(src, hyp, 2), start)
    vertices = sorted(set(v1) | set(v2))
    edges = sorted(e1 + e2)  # the reference keeps duplicate arcs from both lattices
    dist = {**d2, **d1}
    for k in d2.keys() & d1.keys():
        dist[k] = min(d1[k], d2[k])
    edits = {**x2, **x1}
    _transitive_arcs(vertices, edges, dist, edits, max_unchanged)
    return vertices, edges, dist, edits


def m2_score(
    outputs: Sequence[str], gold: Sequence[M2Sentence], beta: float = 0.5, max_unchanged_words: int = 2
) -> dict:
    """Precision, recall, F_beta and edit counts, as the M2 scorer reports them."""
    if len(outputs) != len(gold):
        raise ValueError(f"{len(outputs)} outputs for {len(gold)} M2 sentences")
    correct = proposed = gold_total = 0.0
    b2 = beta * beta
    for output, sent in zip(outputs, gold, strict=True):
        lattice = _sentence_lattice(sent.source, output, max_unchanged_words)
        vertices, edges, dist, edits = lattice
        best_f, best_c, best_p, best_g = -1.0, -1.0, float("inf"), float("inf")
        chosen = (0, 0, 0)
        for annotator_edits in sent.edits.values():
            seq = _best_edit_sequence(vertices, edges, _set_weights(edges, dist, edits, annotator_edits), edits)
            c = _match(seq, annotator_edits)
            lc, lp, lg = correct + c, proposed + len(seq), gold_total + len(annotator_edits)
            denom = b2 * lg + lp
            f = (1 + b2) * lc / denom if denom else (1.0 if lc == 0 else 0.0)
            if (
                best_f < f
                or (best_f == f and best_c < lc)
                or (best_f == f and best_c == lc and best_p + b2 * best_g > lp + b2 * lg)
            ):
                best_f, best_c, best_p, best_g = f, lc, lp, lg
                chosen = (c, len(seq), len(annotator_edits))
        correct += chosen[0]
        proposed += chosen[1]
        gold_total += chosen[2]
    p = correct / proposed if proposed else 1.0
    r = correct / gold_total if gold_total else 1.0
    f = (1 + b2) * p * r / (b2 * p + r) if (b2 * p + r) else 0.0
    return {
        "precision": p,
        "recall": r,
        "f0.5" if beta == 0.5 else f"f{beta}": f,
        "correct": int(correct),
        "proposed": int(proposed),
        "gold": int(gold_total),
    }


# --------------------------------------------------------------------------- BLEU, iBLEU, exact match
def _transpose(references: Sequence[Sequence[str]]) -> list[list[str]]:
    n = max(len(r) for r in references)
    # sacrebleu wants one stream per reference index; rows with fewer references repeat their last
    return [[refs[min(j, len(refs) - 1)] for refs in references] for j in range(n)]


def bleu(outputs: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    import sacrebleu

    return sacrebleu.corpus_bleu(list(outputs), _transpose(references)).score


def ibleu(
    sources: Sequence[str], outputs: Sequence[str], references: Sequence[Sequence[str]], alpha: float = 0.9
) -> float:
    """alpha * BLEU(output, references) - (1 - alpha) * BLEU(output, input), sacrebleu BLEU (0-100)."""
    return alpha * bleu(outputs, references) - (1 - alpha) * bleu(outputs, [[s] for s in sources])


def nmt_bleu(outputs: Sequence[Sequence[str]], references: Sequence[Sequence[Sequence[str]]]) -> float:
    """Corpus BLEU on token lists as tensorflow/nmt computes it (EditEval's "bleu"): max order 4, no
    smoothing, brevity penalty from the shortest reference; 0-1."""
    matches, possible = [0] * 4, [0] * 4
    hyp_len = ref_len = 0
    for hyp, refs in zip(outputs, references, strict=True):
        ref_len += min(len(r) for r in refs)
        hyp_len += len(hyp)
        merged: Counter = Counter()
        for ref in refs:
            merged |= Counter(tuple(ref[i : i + n]) for n in range(1, 5) for i in range(len(ref) - n + 1))
        counts = Counter(tuple(hyp[i : i + n]) for n in range(1, 5) for i in range(len(hyp) - n + 1))
        for ngram, c in (counts & merged).items():
            matches[len(ngram) - 1] += c
        for n in range(1, 5):
            possible[n - 1] += max(len(hyp) - n + 1, 0)
    if min(possible) == 0 or min(matches) == 0:
        return 0.0
    log_mean = sum(math.log(m / p) for m, p in zip(matches, possible, strict=True)) / 4
    ratio = hyp_len / ref_len if ref_len else 0.0
    bp = 1.0 if ratio > 1.0 else (math.exp(1 - 1.0 / ratio) if ratio > 0 else 0.0)
    return math.exp(log_mean) * bp


def ibleu_tokens(
    sources: Sequence[Sequence[str]],
    outputs: Sequence[Sequence[str]],
    references: Sequence[Sequence[Sequence[str]]],
    alpha: float = 0.9,
) -> float:
    """EditEval's iBLEU on token lists (nmt BLEU); 0-1 scale."""
    return alpha * nmt_bleu(outputs, references) - (1 - alpha) * nmt_bleu(outputs, [[s] for s in sources])


def exact_match(outputs: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Percent of outputs equal (whitespace-normalized) to one of their references."""

    def norm(s: str) -> str:
        return " ".join(s.split())

    hits = sum(norm(o) in {norm(r) for r in refs} for o, refs in zip(outputs, references, strict=True))
    return 100.0 * hits / len(outputs) if outputs else 0.0
