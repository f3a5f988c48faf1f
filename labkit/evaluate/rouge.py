"""Text similarity for the scorer: tokenisation, ROUGE-L (via ``rouge_chinese``) and BLEU (via nltk).

Two tokenizers, both ending with KAgentBench's rule that every token holding a CJK / Unicode ``Lo`` character is
split into single characters:

* ``"regex"`` (labkit's default): a regex word tokenizer. Compared with ``nltk.word_tokenize`` (about 1 string in 10
  tokenises differently): contractions stay whole (``don't``; nltk: ``do`` ``n't``); quotes are kept as they are (nltk
  rewrites ``"`` to ```` `` ```` / ``''``); every punctuation character is its own token, also the full stop of
  abbreviations (``U.S.`` -> ``U.S`` ``.``); URLs are cut at every ``:`` ``/`` ``?`` ``=``; numbers, dates, times and
  dotted/hyphenated words stay whole (``2025-03-15``, ``3.14``, ``12:30``), as in nltk; no sentence split first.
* ``"kagentbench"``: exactly the official ``benchmark_eval.py`` tokenisation, ``nltk.word_tokenize`` (Punkt sentence
  split, then nltk's Treebank-style word tokenizer). The English Punkt model ships inside labkit
  (``labkit/evaluate/nltk_data``, Apache-2.0, see its README), so nothing is ever downloaded.

ROUGE-L is rouge-chinese's summary-level LCS F-score over the space-joined tokens (case-sensitive, no stemming).
``exact=True`` (labkit) computes F = 2PR/(P+R), so identical texts score exactly 1.0; ``exact=False`` keeps
rouge-chinese's F = 2PR/(P+R+1e-8) (identical texts: 0.99999999), as the official script does. A text with no
tokens (empty or whitespace-only) scores 0; rouge-chinese itself would raise "Hypothesis is empty".

A text longer than :data:`MAX_TEXT_CHARS` is not compared (ROUGE-L and BLEU 0, :func:`too_long`): rouge-chinese
takes about a second on 10,000 tokens and longer the longer the text, so a hostile 5 MB prediction would stall
scoring for hours; real model outputs and references are under 2,000 characters.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
from rouge_chinese import Rouge

TOKENIZERS: tuple[str, ...] = ("regex", "kagentbench")
NLTK_DATA_DIR = Path(__file__).parent / "nltk_data"
PUNKT_ENGLISH_DIR = NLTK_DATA_DIR / "tokenizers" / "punkt_tab" / "english"

# A word: letters/digits/underscore, optionally joined by . - : / ' (3.14, 2025-03-15, 12:30, don't);
# anything else that is not a space is one token on its own (punctuation, symbols).
_TOKEN_RE = re.compile(r"\w+(?:[.\-:/']\w+)*|[^\w\s]")
_ROUGE = Rouge(metrics=["rouge-l"])
MAX_TEXT_CHARS = 8_000  # about 20x the longest answer of the query bank; real model outputs are under 2,000
_SMOOTH = SmoothingFunction().method1


def too_long(*texts: str) -> bool:
    """True when a text is longer than :data:`MAX_TEXT_CHARS` (not compared: see the module docstring)."""
    return any(len(t) > MAX_TEXT_CHARS for t in texts)


def _has_lo(token: str) -> bool:
    return not token.isascii() and any(unicodedata.category(ch) == "Lo" for ch in token)


def _split_cjk(tokens: Sequence[str]) -> list[str]:
    out: list[str] = []
    for tok in tokens:
        out.extend(list(tok) if _has_lo(tok) else [tok])
    return out


def _punkt_lines(name: str) -> list[str]:
    text = (PUNKT_ENGLISH_DIR / name).read_text(encoding="utf-8")
    return text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")


@lru_cache(maxsize=1)
def _word_tokenizer():  # -> callable(str) -> list[str]
    """nltk.word_tokenize with the shipped English Punkt model: Punkt sentences, then nltk's word tokenizer."""
    from nltk.tokenize import NLTKWordTokenizer
    from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

    params = PunktParameters()
    params.abbrev_types = set(_punkt_lines("abbrev_types.txt"))
    params.sent_starters = set(_punkt_lines("sent_starters.txt"))
    params.collocations = {tuple(line.split("\t")) for line in _punkt_lines("collocations.tab")}
    params.ortho_context = defaultdict(int, {k: int(v) for k, v in (ln.split("\t") for ln in
                                                                     _punkt_lines("ortho_context.tab"))})
    sentences, words = PunktSentenceTokenizer(params), NLTKWordTokenizer()
    return lambda text: [tok for sent in sentences.tokenize(text) for tok in words.tokenize(sent)]


@lru_cache(maxsize=65536)
def _tokens(text: str, tokenizer: str) -> tuple[str, ...]:
    if tokenizer == "regex":
        return tuple(_split_cjk(_TOKEN_RE.findall(text)))
    if tokenizer == "kagentbench":
        return tuple(_split_cjk(_word_tokenizer()(text)))
    raise ValueError(f"unknown tokenizer {tokenizer!r}; known: {', '.join(TOKENIZERS)}")


def tokenize(text: object, tokenizer: str = "regex") -> list[str]:
    """Split ``str(text)`` into word tokens; tokens holding CJK (Unicode ``Lo``) characters become single characters."""
    return list(_tokens(str(text), tokenizer))


@lru_cache(maxsize=65536)
def _rouge_l_cached(prediction: str, reference: str, tokenizer: str, exact: bool) -> float:
    hyp, ref = _tokens(prediction, tokenizer), _tokens(reference, tokenizer)
    if not hyp or not ref:
        return 0.0
    scores = _ROUGE.get_scores(" ".join(hyp), " ".join(ref))[0]["rouge-l"]
    if not exact:
        return float(scores["f"])
    p, r = float(scores["p"]), float(scores["r"])
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def rouge_l(prediction: object, reference: object, *, tokenizer: str = "regex", exact: bool = True) -> float:
    """ROUGE-L F in [0, 1] between ``str(prediction)`` and ``str(reference)`` (0 when either has no tokens or is
    :func:`too_long`)."""
    prediction, reference = str(prediction), str(reference)
    if too_long(prediction, reference):
        return 0.0
    return _rouge_l_cached(prediction, reference, tokenizer, exact)


def max_rouge_l(prediction: object, references: Sequence[object]) -> float:
    """Best ROUGE-L of ``prediction`` against any of ``references`` (0 when there are none)."""
    return max((rouge_l(prediction, ref) for ref in references), default=0.0)


def bleu(prediction: object, references: Sequence[object]) -> float:
    """Sentence BLEU in [0, 1] (nltk, smoothing method1), n-gram order capped by the shortest reference length.

    Reported as an extra column only; Overall uses ROUGE-L as KAgentBench does. Texts that are :func:`too_long`
    are left out (a long prediction scores 0).
    """
    if too_long(str(prediction)):
        return 0.0
    hyp = tokenize(prediction)
    refs = [tokenize(r) for r in references if not too_long(str(r))]
    refs = [r for r in refs if r]
    if not hyp or not refs:
        return 0.0
    order = max(1, min(4, min(len(r) for r in refs), len(hyp)))
    weights = tuple([1.0 / order] * order)
    return float(sentence_bleu(refs, hyp, weights=weights, smoothing_function=_SMOOTH))
