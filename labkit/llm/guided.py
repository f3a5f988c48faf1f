"""Guided decoding for local models: a transformers ``LogitsProcessor`` that holds every row of a batch to its
format's call grammar (:mod:`labkit.formats.guide`), one grammar state per row.

Per step and row, the allowed next tokens are found without looping over the 262k-entry vocabulary:

* the strings the grammar expects next (the rest of a literal, the offered tool names with their terminator, the
  argument keys, ...) are a trie over characters; a token is a candidate when its text is a prefix of one of them
  (one dictionary look-up per prefix) or starts with one of them (a range of the vocabulary sorted by text);
* inside free text (a thought, a JSON string value, an answer) every token without a *sensitive* character (for a
  JSON string: quote, backslash, control characters) is allowed as a precomputed mask, and only the few hundred
  tokens with one are checked;
* every candidate is run through the grammar; the result is cached per grammar state (states repeat: inside a
  string the state does not depend on the text written so far).

Token budget: ``max_new_tokens`` is known, so the call is closed in time - a token is allowed only if the shortest
text that completes the grammar after it still fits in the tokens left (counted by tokenizing that text, with a
small margin). A thought that would run past the budget is cut so that the tool call still gets written.
End-of-turn / eos are allowed only where the output may end. Everything here is per row, so batched generation
(left padding, rows finishing at different steps, stop strings and the ``until`` rule stopping some rows) works.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import torch
from transformers import LogitsProcessor, PreTrainedTokenizerBase

from labkit.formats.guide import Grammar, State, accepting, expect, feed_text, shortest

_BYTE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")
NON_ASCII_BYTE = "\ufffd"  # a byte-fallback token of a multi-byte character: plain text, never part of a literal
MARGIN = 2  # tokens kept in hand when closing: a suffix can tokenize into a token more than the whole did
MAX_CACHED_STATES = 50_000


@dataclass
class Allowed:
    """What a grammar state allows next: in free text, the plain tokens (those without a ``sensitive`` character)
    while completing after them costs ``base_cost`` tokens, and candidate ``ids`` with the cost of completing after
    each."""

    sensitive: frozenset[str] | None  # free text here: the plain tokens are those without these characters
    base_cost: int
    ids: torch.Tensor
    costs: torch.Tensor
    accepting: bool


class TokenIndex:
    """The tokenizer's vocabulary as text, indexed for the look-ups guided decoding needs (built once per tokenizer,
    about a second for Gemma's 262k tokens)."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase):
        self.tokenizer = tokenizer
        n = len(tokenizer)
        decoder = getattr(tokenizer, "added_tokens_decoder", {}) or {}
        special = {i for i, t in decoder.items() if getattr(t, "special", True)}
        added = {i: t.content for i, t in decoder.items() if i not in special}
        pieces: list[str | None] = []
        for i, tok in enumerate(tokenizer.convert_ids_to_tokens(list(range(n)))):
            if i in special or tok is None:
                pieces.append(None)
            elif i in added:
                pieces.append(added[i])
            elif (m := _BYTE.match(tok)) is not None:
                byte = int(m.group(1), 16)
                pieces.append(chr(byte) if byte < 0x80 else NON_ASCII_BYTE)
            else:
                pieces.append(tok.replace("\u2581", " "))
        self.pieces = pieces
        self.size = n
        self.by_text: dict[str, list[int]] = {}
        for i, p in enumerate(pieces):
            if p:
                self.by_text.setdefault(p, []).append(i)
        order = sorted((p, i) for i, p in enumerate(pieces) if p)
        self._sorted = [p for p, _ in order]
        self._sorted_ids = [i for _, i in order]
        self._plain: dict[frozenset[str], torch.Tensor] = {}
        self._bias: dict[tuple[frozenset[str], torch.dtype, torch.device], torch.Tensor] = {}
        self._containing: dict[frozenset[str], list[int]] = {}
        self._allowed: dict[State, Allowed] = {}
        self.cost = lru_cache(maxsize=100_000)(self._cost)

    # -- vocabulary look-ups ------------------------------------------------------------------------------------
    def starting_with(self, text: str) -> list[int]:
        """Ids of the tokens whose text starts with ``text`` (a range of the sorted vocabulary)."""
        lo = bisect.bisect_left(self._sorted, text)
        hi = bisect.bisect_left(self._sorted, text + "\U0010ffff", lo)
        return self._sorted_ids[lo:hi]

    def _classify(self, chars: frozenset[str]) -> None:
        plain = torch.zeros(self.size, dtype=torch.bool)
        containing, flags = [], []
        for i, p in enumerate(self.pieces):  # once per character class, never per step
            ok = p is not None and (not chars or chars.isdisjoint(p))
            flags.append(ok)
            if p is not None and not ok:
                containing.append(i)
        plain[:] = torch.tensor(flags, dtype=torch.bool)
        self._plain[chars], self._containing[chars] = plain, containing

    def plain(self, chars: frozenset[str]) -> torch.Tensor:
        """Mask of the tokens with text and none of ``chars``."""
        if chars not in self._plain:
            self._classify(chars)
        return self._plain[chars]

    def bias(self, chars: frozenset[str], like: torch.Tensor) -> torch.Tensor:
        """0 for the tokens with text and none of ``chars``, -inf for the others (dtype and device of ``like``)."""
        key = (chars, like.dtype, like.device)
        if key not in self._bias:
            self._bias[key] = torch.zeros(self.size, dtype=like.dtype, device=like.device).masked_fill_(
                ~self.plain(chars).to(like.device), float("-inf"))
        return self._bias[key]

    def containing(self, chars: frozenset[str]) -> list[int]:
        """Ids of the tokens whose text has one of ``chars``."""
        if chars not in self._containing:
            self._classify(chars)
        return self._containing[chars]

    def _cost(self, text: str) -> int:
        """Tokens needed to write ``text`` (its own tokenization)."""
        return len(self.tokenizer.encode(text, add_special_tokens=False)) if text else 0

    # -- what a state allows ------------------------------------------------------------------------------------
    def allowed(self, state: State) -> Allowed:
        hit = self._allowed.get(state)
        if hit is not None:
            return hit
        strings, sensitive = expect(state)
        candidates: set[int] = set()
        for s in strings:
            for k in range(1, len(s) + 1):
                candidates.update(self.by_text.get(s[:k], ()))
            if len(s) > 1 or not (s.isalnum() or s.isspace()):  # a lone letter would match thousands of words
                candidates.update(self.starting_with(s))
        if sensitive is not None:
            candidates.update(self.containing(sensitive))
        ids, costs = [], []
        for t in sorted(candidates):
            after = feed_text(state, self.pieces[t])  # type: ignore[arg-type]
            if after is not None:
                ids.append(t)
                costs.append(self.cost(shortest(after, roomy=True)))
        entry = Allowed(sensitive, self.cost(shortest(state, plain=True, roomy=True)) if sensitive is not None else 0,
                        torch.tensor(ids, dtype=torch.long), torch.tensor(costs, dtype=torch.long),
                        accepting(state))
        if len(self._allowed) >= MAX_CACHED_STATES:
            self._allowed.clear()
        self._allowed[state] = entry
        return entry


_INDEXES: dict[int, TokenIndex] = {}


def token_index(tokenizer: PreTrainedTokenizerBase) -> TokenIndex:
    """The (cached) index of a tokenizer object (labkit shares one tokenizer object per distinct tokenizer)."""
    key = id(tokenizer)
    if key not in _INDEXES or _INDEXES[key].tokenizer is not tokenizer:
        _INDEXES[key] = TokenIndex(tokenizer)
    return _INDEXES[key]


class GuidedDecoding(LogitsProcessor):
    """Masks each row's next-token scores to what its grammar allows (rows without a grammar are left alone).

    ``prompt_len``: the padded prompt length (new tokens start there); ``max_new_tokens``: the budget the grammar
    must close within; ``stop_ids``: end-of-turn / eos, allowed where the grammar may end. After the run,
    ``relaxed[r]`` counts the steps where row r could no longer close within the budget (it was then steered to
    the shortest completion) and ``broken[r]`` whether a token outside the grammar slipped through (never expected).
    """

    def __init__(self, index: TokenIndex, grammars: Sequence[Grammar | None], *, prompt_len: int,
                 max_new_tokens: int, stop_ids: Sequence[int]):
        self.index, self.prompt_len, self.max_new_tokens = index, prompt_len, max_new_tokens
        self.stop_ids = torch.tensor(sorted(set(stop_ids)), dtype=torch.long)
        self._stops = set(stop_ids)
        self.states: list[State | None] = [g.start() if g is not None else None for g in grammars]
        self.fed = 0
        self.relaxed = [0] * len(self.states)
        self.broken = [False] * len(self.states)

    def _feed(self, row: int, token: int) -> None:
        state = self.states[row]
        if state is None:
            return
        piece = self.index.pieces[token] if token < self.index.size else None
        if token in self._stops or piece is None:  # the row ended (eos, end of turn, padding after it)
            self.states[row] = None
            return
        after = feed_text(state, piece)
        self.broken[row] = self.broken[row] or after is None
        self.states[row] = after

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        generated = input_ids.shape[1] - self.prompt_len
        if generated > self.fed:
            for row, tokens in enumerate(input_ids[:, self.prompt_len + self.fed:].tolist()):
                for token in tokens:
                    self._feed(row, token)
            self.fed = generated
        left = self.max_new_tokens - generated - 1  # tokens still free after the one chosen now
        for row, state in enumerate(self.states):
            if state is not None:
                self._mask(row, self.index.allowed(state), left, scores)
        return scores

    def _mask(self, row: int, allowed: Allowed, left: int, scores: torch.Tensor) -> None:
        fits = (allowed.costs == 0) | (allowed.costs + MARGIN <= left)  # cost 0: the output may end right after
        ids = allowed.ids[fits]
        use_base = allowed.sensitive is not None and (allowed.base_cost == 0 or allowed.base_cost + MARGIN <= left)
        if not len(ids) and not use_base and not allowed.accepting:  # cannot close in time: shortest way out
            self.relaxed[row] += 1
            best = min([*allowed.costs.tolist(), *([allowed.base_cost] if allowed.sensitive is not None else [])],
                       default=None)
            ids = allowed.ids[allowed.costs == best] if best is not None else allowed.ids
            use_base = allowed.sensitive is not None and allowed.base_cost == best
        if allowed.accepting:
            ids = torch.cat([ids, self.stop_ids])
        ids = ids.to(scores.device)
        if not len(ids) and not use_base:
            return  # nothing the grammar allows is a token (never seen): leave the row free rather than stall
        row_scores = scores[row]
        chosen = row_scores[ids].clone()
        if use_base:  # one pass over the row: -inf where the token is not plain free text
            n = min(self.index.size, row_scores.shape[0])
            row_scores[:n].add_(self.index.bias(allowed.sensitive, row_scores)[:n])
            row_scores[n:] = float("-inf")
        else:
            row_scores.fill_(float("-inf"))
        row_scores[ids] = chosen


def guided_meta(processor: GuidedDecoding | None, row: int, grammar: Grammar | None) -> dict[str, Any]:
    """What a ChatResult records about guiding its row (empty when it was not guided)."""
    if processor is None or grammar is None:
        return {}
    meta: dict[str, Any] = {"guided": grammar.format}
    if processor.relaxed[row]:
        meta["guide_relaxed_steps"] = processor.relaxed[row]
    if processor.broken[row]:
        meta["guide_broken"] = True
    return meta
