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


_OPS = ("add", "keep", "del")


def sari_row_stats(source: str, output: str, references: Sequence[str]) -> list[int]:
    """One row's SARI sufficient statistics: for add, keep and del (in that order) and n = 1..4, the
    triple (correct, system total, reference total). Corpus SARI sums them over rows (as EASSE does)."""
    s_tok, o_tok = _normalize(source).split(), _normalize(output).split()
    r_toks = [_normalize(r).split() for r in references]
    k = len(references)
    add, keep, dele = [], [], []
    for n in range(1, NGRAM_ORDER + 1):
        s, o = _ngram_counts(s_tok, n), _ngram_counts(o_tok, n)
        r: Counter = Counter()
        for rt in r_toks:
            r += _ngram_counts(rt, n)
        added = set(o) - set(s)
        add += [len(added & set(r)), len(added), len(set(r) - set(s))]
        s_k, o_k = _scaled(s, k), _scaled(o, k)
        kept_sys, kept_ref = s_k & o_k, s_k & r
        keep += [sum((kept_sys & kept_ref).values()), sum(kept_sys.values()), sum(kept_ref.values())]
        del_sys, del_ref = s_k - o_k, s_k - r
        dele += [sum((del_sys & del_ref).values()), sum(del_sys.values()), sum(del_ref.values())]
    return add + keep + dele


def sari_from_totals(totals: Sequence[float]) -> dict[str, float]:
    """Add / keep / delete F1 (0-100) from summed row statistics."""
    out = {}
    for i, op in enumerate(_OPS):
        block = totals[i * 3 * NGRAM_ORDER : (i + 1) * 3 * NGRAM_ORDER]
        out[op] = 100.0 * sum(_prf(*block[3 * n : 3 * n + 3]) for n in range(NGRAM_ORDER)) / NGRAM_ORDER
    return out


def sari_operations(sources: Sequence[str], outputs: Sequence[str], references: Sequence[Sequence[str]]) -> dict:
    """Corpus-level add / keep / delete F1 (0-100); SARI is their mean."""
    totals = [0] * (3 * 3 * NGRAM_ORDER)
    for src, out, refs in zip(sources, outputs, references, strict=True):
        totals = [a + b for a, b in zip(totals, sari_row_stats(src, out, refs), strict=True)]
    return sari_from_totals(totals)


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


def gleu_row_stats(
    sources: Sequence[str], outputs: Sequence[str], references: Sequence[Sequence[str]]
) -> list[list[list[int]]]:
    """For every row and every reference: the 10 GLEU statistics of the output (whitespace tokens)."""
    n_refs = len(references[0]) if references else 0
    if any(len(r) != n_refs for r in references):
        raise ValueError("GLEU needs the same number of references for every row")
    rows = []
    for src, out, refs in zip(sources, outputs, references, strict=True):
        s = src.split()
        src_ngrams = [Counter(tuple(s[i : i + n]) for i in range(len(s) + 1 - n)) for n in range(1, 5)]
        hyp = out.split()
        rows.append([_gleu_stats(hyp, src_ngrams, ref.split()) for ref in refs])
    return rows


def gleu_draws(n_rows: int, n_refs: int, iterations: int = 500) -> list[list[int]]:
    """The JFLEG scorer's reference draws: iteration j seeds Python's RNG with 101 * j and draws one
    reference index per row position, in order."""
    draws = []
    for j in range(iterations):
        random.seed(j * 101)
        draws.append([random.randint(0, n_refs - 1) for _ in range(n_rows)])
    return draws


def gleu(
    sources: Sequence[str], outputs: Sequence[str], references: Sequence[Sequence[str]], iterations: int = 500
) -> float:
    """Mean corpus GLEU over ``iterations`` reference draws (0-1), on whitespace tokens.

    All rows must have the same number of references, as in the JFLEG scorer.
    """
    stats = gleu_row_stats(sources, outputs, references)
    draws = gleu_draws(len(outputs), len(references[0]), iterations)
    total = 0.0
    for draw in draws:
        totals = [0] * (2 + 2 * NGRAM_ORDER)
        for row, ref in zip(stats, draw, strict=True):
            totals = [a + b for a, b in zip(totals, row[ref], strict=True)]
        total += _gleu_from_stats(totals)
    return total / iterations


# --------------------------------------------------------------------------- M2 F0.5 (NUS M2 scorer)
@dataclass
class M2Sentence:
    source: str
    edits: dict[int, list[tuple[int, int, str, list[str]]]]  # annotator -> (start, end, original, corrections)


def parse_m2(text: str) -> list[M2Sentence]:
    """Gold sentences and edits of an M2 file, read as the M2 scorer reads them (noop kept as an annotator).

    A malformed line raises ValueError("<line number>: <what is wrong>")."""
    sentences = []
    block: list[tuple[int, str]] = []
    for lineno, line in enumerate([*text.split("\n"), ""], 1):
        if line.strip():
            block.append((lineno, line))
        elif block:
            sentences.append(_m2_block(block))
            block = []
    return sentences


def _m2_block(block: list[tuple[int, str]]) -> M2Sentence:
    first_no, first = block[0]
    if not first.startswith("S "):
        raise ValueError(f"{first_no}: an M2 block starts with an 'S ' line, not {first[:40]!r}")
    tokens = first[2:].strip().split()
    annotations: dict[int, list] = {}
    for lineno, line in block[1:]:
        if line.startswith("S "):
            raise ValueError(f"{lineno}: a second 'S ' line in one block (blocks are separated by a blank line)")
        if not line.startswith("A "):
            continue
        fields = line[2:].split("|||")
        try:
            start, end = (int(x) for x in fields[0].split()[:2])
            annotator = int(fields[5])
        except (ValueError, IndexError):
            raise ValueError(
                f"{lineno}: not an M2 edit line ('A start end|||type|||correction|||REQUIRED|||-NONE-|||annotator'): "
                f"{line[:60]!r}"
            ) from None
        if fields[1] == "noop":
            start = end = -1
        corrections = [c.strip() if c != "-NONE-" else "" for c in fields[2].split("||")]
        original = " ".join(tokens[start:end])
        annotations.setdefault(annotator, []).append((start, end, original, corrections))
    n = len(tokens)
    edits = {a: [e for e in es if 0 <= e[0] <= n and 0 <= e[1] <= n] for a, es in annotations.items()}
    return M2Sentence(first[2:].strip(), edits or {0: []})


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
                # The skipped arcs below get epsilon added when `edits[arc] != "noop"`: a tuple compared with a
                # string, so always, noop arcs included. That is the reference's own line (nusnlp/m2scorer
                # scripts/levenshtein.py, set_weights: `if edits[M[k][lptr]] != 'noop':`), kept as is: the
                # scores must be the reference's (shared/metric-golden), not what its author may have meant.
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


def m2_row_candidates(output: str, sentence: M2Sentence, max_unchanged_words: int = 2) -> list[tuple[int, int, int]]:
    """For each annotator of one sentence: (correct, proposed, gold) edit counts of ``output``.

    This is the expensive part (the edit lattice); the corpus score only chooses among these."""
    vertices, edges, dist, edits = _sentence_lattice(sentence.source, output, max_unchanged_words)
    out = []
    for annotator_edits in sentence.edits.values():
        seq = _best_edit_sequence(vertices, edges, _set_weights(edges, dist, edits, annotator_edits), edits)
        out.append((_match(seq, annotator_edits), len(seq), len(annotator_edits)))
    return out


def m2_accumulate(candidates: Sequence[Sequence[tuple[int, int, int]]], beta: float = 0.5) -> tuple[int, int, int]:
    """Corpus (correct, proposed, gold): per sentence, the annotator that maximizes the running F, with
    the M2 scorer's tie-breaks (more correct, then fewer proposed + beta^2 * gold)."""
    correct = proposed = gold_total = 0
    b2 = beta * beta
    for options in candidates:
        best_f, best_c, best_p, best_g = -1.0, -1.0, float("inf"), float("inf")
        chosen = (0, 0, 0)
        for c, n_seq, n_gold in options:
            lc, lp, lg = correct + c, proposed + n_seq, gold_total + n_gold
            denom = b2 * lg + lp
            f = (1 + b2) * lc / denom if denom else (1.0 if lc == 0 else 0.0)
            if (
                best_f < f
                or (best_f == f and best_c < lc)
                or (best_f == f and best_c == lc and best_p + b2 * best_g > lp + b2 * lg)
            ):
                best_f, best_c, best_p, best_g = f, lc, lp, lg
                chosen = (c, n_seq, n_gold)
        correct += chosen[0]
        proposed += chosen[1]
        gold_total += chosen[2]
    return correct, proposed, gold_total


def m2_from_counts(correct: int, proposed: int, gold: int, beta: float = 0.5) -> dict:
    b2 = beta * beta
    p = correct / proposed if proposed else 1.0
    r = correct / gold if gold else 1.0
    f = (1 + b2) * p * r / (b2 * p + r) if (b2 * p + r) else 0.0
    return {
        "precision": p,
        "recall": r,
        "f0.5" if beta == 0.5 else f"f{beta}": f,
        "correct": int(correct),
        "proposed": int(proposed),
        "gold": int(gold),
    }


def m2_score(
    outputs: Sequence[str], gold: Sequence[M2Sentence], beta: float = 0.5, max_unchanged_words: int = 2
) -> dict:
    """Precision, recall, F_beta and edit counts, as the M2 scorer reports them."""
    if len(outputs) != len(gold):
        raise ValueError(f"{len(outputs)} outputs for {len(gold)} M2 sentences")
    candidates = [m2_row_candidates(o, s, max_unchanged_words) for o, s in zip(outputs, gold, strict=True)]
    return m2_from_counts(*m2_accumulate(candidates, beta), beta)


# --------------------------------------------------------------------------- BLEU, iBLEU, exact match
def _transpose(references: Sequence[Sequence[str]]) -> list[list[str]]:
    n = max(len(r) for r in references)
    # sacrebleu wants one stream per reference index; rows with fewer references repeat their last
    return [[refs[min(j, len(refs) - 1)] for refs in references] for j in range(n)]


def _bleu_metric():  # noqa: ANN202
    import sacrebleu

    return sacrebleu.BLEU()


def bleu(outputs: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    import sacrebleu

    return sacrebleu.corpus_bleu(list(outputs), _transpose(references)).score


def bleu_row_stats(outputs: Sequence[str], references: Sequence[Sequence[str]]) -> list[list[int]]:
    """sacrebleu's per-sentence BLEU statistics (lengths, matches, totals): corpus BLEU of any subset
    of rows is BLEU of their sum, which is how sacrebleu's own paired bootstrap resamples."""
    return [list(map(int, s)) for s in _bleu_metric()._extract_corpus_statistics(list(outputs), _transpose(references))]


def bleu_from_totals(totals: Sequence[int]) -> float:
    return _bleu_metric()._compute_score_from_stats(list(totals)).score


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
