"""wiki_search: the sandbox encyclopedia (people, landmarks, companies from entities.json, plus every city)."""

from __future__ import annotations

import difflib
from functools import lru_cache

from labkit.tools.registry import Tool, ToolInputError
from labkit.tools.world import City, Entity, Fact, cities, is_zh, load_world_file, norm

LABELS = {  # fact key -> (English label, Chinese label, words in a question that ask for it)
    "born": ("Born", "出生", ("born", "birth", "age", "old", "出生", "生于", "年龄", "多大", "哪年生")),
    "died": ("Died", "逝世", ("died", "death", "die", "去世", "逝世", "死")),
    "nationality": ("Nationality", "国籍", ("nationality", "country", "国籍", "哪国")),
    "known_for": ("Known for", "主要成就", ("known", "famous", "work", "achievement", "成就", "著名", "代表", "贡献", "闻名")),
    "location": ("Location", "位置", ("where", "located", "city", "位于", "哪里", "在哪", "城市", "哪个")),
    "built": ("Built", "建造", ("built", "completed", "opened", "when", "year", "建", "落成", "开放", "哪年", "什么时候")),
    "size": ("Size", "规模", ("tall", "height", "high", "long", "length", "big", "large", "高", "长", "面积", "多大")),
    "founded": ("Founded", "成立", ("founded", "established", "when", "year", "成立", "创立", "创办", "哪年", "什么时候")),
    "founder": ("Founder", "创始人", ("founder", "founded by", "who", "创始人", "谁")),
    "headquarters": ("Headquarters", "总部", ("headquarter", "based", "where", "总部", "哪里", "在哪")),
    "industry": ("Industry", "行业", ("industry", "business", "do", "行业", "业务", "做什么")),
    "country": ("Country", "国家", ("country", "nation", "国家", "哪国")),
    "population": ("Population", "人口", ("population", "people", "live", "人口", "多少人")),
    "food": ("Famous food", "特色美食", ("food", "eat", "dish", "cuisine", "美食", "吃", "小吃", "特色菜")),
    "best_season": ("Best time to visit", "最佳旅游季节", ("season", "visit", "best time", "季节", "什么时候去", "旅游")),
}


def _city_entity(c: City) -> Entity:
    facts: list[Fact] = [
        {"key": "country", "en": c["country"]["en"], "zh": c["country"]["zh"]},
        {"key": "population", "en": f"about {c['population_m']} million", "zh": f"约{c['population_m']}百万"},
        {"key": "known_for", "en": c["known_for"]["en"], "zh": c["known_for"]["zh"]},
        {"key": "food", "en": c["food"]["en"], "zh": c["food"]["zh"]},
        {"key": "best_season", "en": c["best_season"]["en"], "zh": c["best_season"]["zh"]},
    ]
    return {"id": c["id"], "type": "city", "en": c["en"], "zh": c["zh"], "aliases": c.get("aliases", []),
            "city_id": c["id"], "facts": facts,
            "summary": {"en": f"City in {c['country']['en']}, known for {c['known_for']['en']}.",
                        "zh": f"{c['country']['zh']}城市，{c['known_for']['zh']}。"}}


@lru_cache(maxsize=None)
def entities() -> tuple[Entity, ...]:
    """Every encyclopedia entry: entities.json followed by one entry per city."""
    return tuple(load_world_file("entities.json")["entities"]) + tuple(_city_entity(c) for c in cities())


@lru_cache(maxsize=None)
def _index() -> dict[str, Entity]:
    index: dict[str, Entity] = {}
    for ent in entities():
        for name in [ent["en"], ent["zh"], ent["id"], *ent.get("aliases", [])]:
            index.setdefault(norm(name), ent)
    return index


def find_entity(name: str) -> Entity | None:
    """Exact name/alias match, else the longest known name contained in ``name`` (or containing it)."""
    key = norm(name)
    if not key:
        return None
    if key in _index():
        return _index()[key]
    hits = [(len(k), e) for k, e in _index().items() if len(k) >= 2 and (k in key or key in k)]
    return max(hits, key=lambda h: h[0])[1] if hits else None


def fact(ent: Entity, key: str, zh: bool) -> str | None:
    for f in ent["facts"]:
        if f["key"] == key:
            return f["zh" if zh else "en"]
    return None


def wiki_search(entity: str, question: str = "") -> str:
    ent = find_entity(entity)
    if ent is None:
        names = [n for e in entities() for n in (e["en"], e["zh"])]
        close = difflib.get_close_matches(str(entity), names, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ToolInputError(f"no encyclopedia entry for entity {entity!r}{hint}")
    zh = is_zh(f"{entity}{question}")
    q = str(question).lower()
    facts = sorted(ent["facts"], key=lambda f: not any(w in q for w in LABELS[f["key"]][2]))
    if zh:
        body = "；".join(f"{LABELS[f['key']][1]}：{f['zh']}" for f in facts)
        return f"{ent['zh']}（{ent['en']}）：{ent['summary']['zh']}{body}。"
    body = "; ".join(f"{LABELS[f['key']][0]}: {f['en']}" for f in facts)
    return f"{ent['en']} ({ent['zh']}): {ent['summary']['en']} {body}."


TOOLS = [
    Tool(
        name="wiki_search",
        description="Encyclopedia facts about a person, place, city or company.",
        parameters={"type": "object", "additionalProperties": False, "properties": {
            "entity": {"type": "string", "description": "Name of the person, place or company"},
            "question": {"type": "string", "description": "What you want to know about it"}}},
        returns="Summary and key facts, most relevant first.",
        fn=wiki_search,
        required=["entity"],
    )
]
