"""Text similarity for the scorer: Chinese-aware tokenisation, ROUGE-L (via ``rouge_chinese``) and BLEU (via nltk).

Tokenisation follows KAgentBench's idea (word tokens, then every token holding a CJK / Unicode ``Lo`` character is
split into single characters) but uses a regex word tokenizer instead of ``nltk.word_tokenize``, so no Punkt model is
ever downloaded. Differences from ``nltk.word_tokenize`` (about 1 string in 10 tokenises differently):

* contractions stay whole (``don't`` -> ``don't``; nltk: ``do`` ``n't``);
* quotes are kept as they are (nltk rewrites ``"`` to `````` / ``''``);
* every punctuation character is its own token, including the full stop of abbreviations (``U.S.`` -> ``U.S`` ``.``);
* numbers, dates, times and dotted/hyphenated words stay whole (``2025-03-15``, ``3.14``, ``12:30``), as in nltk.

ROUGE-L differences from KAgentBench's ``rouge_score`` (its formula otherwise: LCS F-score, case-sensitive):

* identical texts score exactly 1.0 — rouge-chinese computes F = 2PR/(P+R+1e-8), giving 0.99999999; we take its P and
  R and compute F = 2PR/(P+R) ourselves;
* empty *or whitespace-only* texts score 0 instead of crashing rouge-chinese ("Hypothesis is empty").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
from rouge_chinese import Rouge

# A word: letters/digits/underscore, optionally joined by . - : / ' (3.14, 2025-03-15, 12:30, don't);
# anything else that is not a space is one token on its own (punctuation, symbols).
_TOKEN_RE = re.compile(r"\w+(?:[.\-:/']\w+)*|[^\w\s]")
_ROUGE = Rouge(metrics=["rouge-l"])
_SMOOTH = SmoothingFunction().method1


def _has_lo(token: str) -> bool:
    return any(unicodedata.category(ch) == "Lo" for ch in token)


def tokenize(text: object) -> list[str]:
    """Split ``str(text)`` into word tokens; tokens holding CJK (Unicode ``Lo``) characters become single characters."""
    tokens: list[str] = []
    for tok in _TOKEN_RE.findall(str(text)):
        tokens.extend(list(tok) if _has_lo(tok) else [tok])
    return tokens


@lru_cache(maxsize=65536)
def _rouge_l_cached(prediction: str, reference: str) -> float:
    hyp, ref = tokenize(prediction), tokenize(reference)
    if not hyp or not ref:
        return 0.0
    scores = _ROUGE.get_scores(" ".join(hyp), " ".join(ref))[0]["rouge-l"]
    p, r = float(scores["p"]), float(scores["r"])
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def rouge_l(prediction: object, reference: object) -> float:
    """ROUGE-L F in [0, 1] between ``str(prediction)`` and ``str(reference)``; 1.0 exactly for identical token lists."""
    return _rouge_l_cached(str(prediction), str(reference))


def max_rouge_l(prediction: object, references: Sequence[object]) -> float:
    """Best ROUGE-L of ``prediction`` against any of ``references`` (0 when there are none)."""
    return max((rouge_l(prediction, ref) for ref in references), default=0.0)


def bleu(prediction: object, references: Sequence[object]) -> float:
    """Sentence BLEU in [0, 1] (nltk, smoothing method1), n-gram order capped by the shortest reference length.

    Reported as an extra column only; Overall uses ROUGE-L as KAgentBench does.
    """
    hyp = tokenize(prediction)
    refs = [tokenize(r) for r in references]
    refs = [r for r in refs if r]
    if not hyp or not refs:
        return 0.0
    order = max(1, min(4, min(len(r) for r in refs), len(hyp)))
    weights = tuple([1.0 / order] * order)
    return float(sentence_bleu(refs, hyp, weights=weights, smoothing_function=_SMOOTH))
