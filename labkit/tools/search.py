"""web_search and browse_website over the bundled corpus (data/world/corpus.jsonl).

The index is SQLite FTS5, in memory, built at first use. Chinese has no spaces, so CJK text is indexed as
overlapping character bigrams; Latin text as lower-cased words. Ranking is FTS5's BM25 (title weighted x2).
"""

from __future__ import annotations

import re
import sqlite3
import threading
from functools import lru_cache

from labkit.jsonl import iter_jsonl, require
from labkit.tools.registry import Tool, ToolInputError
from labkit.tools.world import Page, world_dir

_RUNS = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+|[0-9a-zA-Z\u00c0-\u024f]+")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
STOPWORDS = frozenset("a an the of in on at to for and or is are was were be what which who how when where do does "
                      "did me my i you your about tell find search please can could with from by it its".split())
TOP_K, SNIPPET_CHARS = 3, 90
_LOCK = threading.Lock()


def tokens(text: str) -> list[str]:
    """Words for Latin runs, character bigrams for CJK runs (a single CJK character stays a unigram)."""
    out: list[str] = []
    for run in _RUNS.findall(text):
        if _CJK.match(run):
            out += [run] if len(run) == 1 else [run[i:i + 2] for i in range(len(run) - 1)]
        else:
            out.append(run.lower())
    return out


@lru_cache(maxsize=None)
def corpus() -> tuple[Page, ...]:
    """Every page of ``data/world/corpus.jsonl``, checked; DataFileError names the line and field."""
    path = world_dir() / "corpus.jsonl"
    docs = []
    for line, rec in iter_jsonl(path):
        url, title, text, lang = (require(rec, field, str, path=path, line=line)
                                  for field in ("url", "title", "text", "lang"))
        docs.append(Page(url=url, title=title, text=text, lang=lang))
    return tuple(docs)


@lru_cache(maxsize=None)
def _index() -> sqlite3.Connection:
    con = sqlite3.connect(":memory:", check_same_thread=False)
    con.execute("CREATE VIRTUAL TABLE docs USING fts5(title, body, tokenize='unicode61')")
    con.executemany("INSERT INTO docs(rowid, title, body) VALUES (?, ?, ?)",
                    [(i, " ".join(tokens(d["title"])), " ".join(tokens(d["text"]))) for i, d in enumerate(corpus())])
    return con


def search(query: str, k: int = TOP_K) -> list[Page]:
    """The k best documents for a query (BM25), best first."""
    terms = list(dict.fromkeys(t for t in tokens(query) if t not in STOPWORDS))
    if not terms:
        return []
    match = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
    with _LOCK:
        rows = _index().execute("SELECT rowid FROM docs WHERE docs MATCH ? ORDER BY bm25(docs, 2.0, 1.0), rowid "
                                "LIMIT ?", (match, k)).fetchall()
    return [corpus()[r[0]] for r in rows]


def best_passage(text: str, question: str, sep: str) -> str:
    """The piece of ``text`` (split on ``sep``) sharing most tokens with the question; the first on ties."""
    pieces = [p.strip() for p in re.split(sep, text) if p.strip()]
    if not pieces:
        return text
    want = set(tokens(question)) - STOPWORDS
    return max(pieces, key=lambda p: (len(want & set(tokens(p))), -pieces.index(p)))


def web_search(query: str) -> str:
    if not str(query).strip():
        raise ToolInputError("argument 'query' is empty")
    hits = search(query)
    if not hits:
        return f"No results for {query!r}."
    lines = []
    for d in hits:
        snippet = best_passage(d["text"], query, r"(?<=[.!?。！？])\s*|\n")
        if len(snippet) > SNIPPET_CHARS:
            snippet = snippet[:SNIPPET_CHARS].rstrip() + "…"
        lines.append(f"{d['title']} | {d['url']} | {snippet}")
    return "\n".join(lines)


def find_page(url: str) -> Page | None:
    want = str(url).strip().rstrip("/").removeprefix("https://").removeprefix("http://")
    for d in corpus():
        if d["url"].removeprefix("https://") == want:
            return d
    return None


def browse_website(url: str, question: str = "") -> str:
    page = find_page(url)
    if page is None:
        raise ToolInputError(f"argument 'url': page {url!r} not found; use a url returned by web_search")
    if question.strip() and "\n" in page["text"]:
        return f"{page['title']}\n{best_passage(page['text'], question, chr(10))}"
    return f"{page['title']}\n{page['text']}"


TOOLS = [
    Tool(
        name="web_search",
        description="Search the web; returns the top 3 pages as title | url | snippet.",
        parameters={"type": "object", "additionalProperties": False, "properties": {
            "query": {"type": "string", "description": "Search keywords"}}},
        returns="Up to 3 lines: title | url | snippet.",
        fn=web_search,
        required=["query"],
    ),
    Tool(
        name="browse_website",
        description="Read a web page found by web_search.",
        parameters={"type": "object", "additionalProperties": False, "properties": {
            "url": {"type": "string", "description": "Page url from web_search"},
            "question": {"type": "string", "description": "What to look for on the page"}}},
        returns="The page text, or its part most relevant to the question.",
        fn=browse_website,
        required=["url"],
    ),
]
