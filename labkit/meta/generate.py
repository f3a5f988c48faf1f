"""Template generation (course note §4.2.2 steps 3-4): a Meta-Agent writes one candidate template per query cluster.

The Meta-Agent prompt (:func:`meta_prompt`) shows a cluster's representative queries and asks for a complete agent
template file with the six parts (Profile, Instruction, Tools, Goal, Memory, Format) and an output format - a
built-in one or a new one declared in the file. Two writers fill it in:

* :class:`LLMMetaAgent` - a real model through :mod:`labkit.llm` (``get_model("openai")`` when an API key is set);
* :class:`OfflineMetaAgent` - a seeded stand-in for GPT-4 that composes templates from the word pools in
  ``data/meta/generator.yaml``: persona, section names and header style, instruction wording, subset and order,
  language (zh / en / mixed), tool and memory layout, and the output format (five built-in planning formats and
  declared json / yaml / xml / kv / prefixed formats with different field names). Like a real generator it
  sometimes writes a flawed template - a part left out, a format whose example shows a different format, field
  names that collide, a format given in words only, a padded profile, broken YAML - at rates set by ``flaws``; the
  section check and the pairwise judge are there to catch those.

Both return :class:`Candidate` objects holding the template file text, exactly as it would be saved.
"""

from __future__ import annotations

import functools
import hashlib
import random
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

import yaml

from labkit.errors import DataFileError
from labkit.formats import BUILTIN_FORMATS, OUTPUT_FORMATS, OutputFormat, declare
from labkit.meta.cluster import QueryCluster
from labkit.paths import data_dir
from labkit.templates import SECTIONS, template_yaml

BUILTIN_PLANNING = tuple(n for n in OUTPUT_FORMATS if BUILTIN_FORMATS[n].has_call_form)  # react ... modelscope
DECLARED_STYLES = ("json", "yaml", "xml", "kv", "prefixed")
FLAW_KINDS = ("missing_section", "format_mismatch", "colliding_labels", "format_in_words", "padded", "broken_yaml")
# Chance that one candidate has each flaw (at most one flaw per candidate); tuned to look like a careful but
# imperfect generator: about 4 in 10 candidates carry one.
DEFAULT_FLAWS: dict[str, float] = {"missing_section": 0.12, "format_mismatch": 0.05, "colliding_labels": 0.06,
                                   "format_in_words": 0.09, "padded": 0.07, "broken_yaml": 0.03}
_VAR = {"max_steps": "{{ max_steps }}"}


class FormatTraits(TypedDict, total=False):
    """The output format the offline writer chose (:meth:`OfflineMetaAgent._format`)."""

    kind: str                    # "built-in <format>" | "declared <style>"
    style: str                   # "builtin" or the declared style (DECLARED_STYLES)
    finish: str                  # declared formats: "answer" | "call"


class Traits(FormatTraits, total=False):
    """What a writer chose for a candidate (``candidates.jsonl``'s ``traits``); an LLM writer records only
    ``writer``."""

    writer: str                  # "offline" | "llm"
    lang: str                    # zh | en | mixed (headings in the other language)
    prose_lang: str
    domain: str                  # the pool domain of the cluster (cluster_domain)
    persona: str
    header_style: str
    section_names: list[str]     # the headings, in order
    order: list[str]             # the sections (SECTIONS), in order
    output_format: str
    tool_style: str
    memory_style: str
    flaw: str | None             # FLAW_KINDS
    dropped_section: str | None  # the "missing_section" flaw's section


class CandidateDict(TypedDict):
    """:meth:`Candidate.to_dict`."""

    name: str
    cluster: int
    author: str
    traits: Traits
    text: str


@dataclass
class Candidate:
    """One generated template, before any check. ``text`` is the template file (YAML) as the writer produced it."""

    name: str
    cluster: int
    text: str
    author: str
    traits: Traits = field(default_factory=Traits)
    meta_prompt: str = ""

    def to_dict(self) -> CandidateDict:
        return {"name": self.name, "cluster": self.cluster, "author": self.author, "traits": self.traits,
                "text": self.text}


class PoolDomain(TypedDict):
    name: str
    tools: list[str]             # a cluster whose representatives need these tools most is in this domain


class Pools(TypedDict):
    """``data/meta/generator.yaml``: the offline writer's word pools (a language key is "zh" / "en")."""

    domains: list[PoolDomain]
    personas: dict[str, dict[str, list[str]]]        # lang -> domain -> personas
    profile_lines: dict[str, list[str]]              # lang -> lines with {persona}
    section_names: dict[str, dict[str, list[str]]]   # lang -> section (SECTIONS) -> headings
    header_styles: list[str]
    rules: dict[str, dict[str, list[str]]]           # rule id -> lang -> wordings
    finish_rules: dict[str, dict[str, str]]          # OutputFormat.finish_rule -> lang -> rule
    format_intros: dict[str, list[str]]
    answer_intros: dict[str, list[str]]
    format_in_words: dict[str, str]                  # lang -> text with {labels}
    labels: dict[str, dict[str, list[list[str]]]]    # style -> lang -> [thought, tool, args, answer, observation]
    padding: dict[str, list[str]]


@functools.lru_cache(maxsize=1)
def pools() -> Pools:
    """The word pools; a file without one of :class:`Pools`' keys raises DataFileError naming the key."""
    path = data_dir() / "meta" / "generator.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise DataFileError(path, "expected a mapping of word pools")
    for key in Pools.__annotations__:
        if key not in data:
            raise DataFileError(path, "missing word pool", field=key)
    return data


def _rng(*parts: object) -> random.Random:
    return random.Random(int.from_bytes(hashlib.sha256("\x00".join(map(str, parts)).encode()).digest()[:8], "big"))


def cluster_domain(cluster: QueryCluster) -> str:
    """The scenario of a cluster: the pool domain whose tools its representatives' queries need most."""
    used = Counter(c["name"] for q in cluster.representatives for c in q.get("gold_calls", []))
    for dom in pools()["domains"]:
        if dom["tools"] and any(used[t] for t in dom["tools"]) and \
                max(used[t] for t in dom["tools"]) == max(used.values(), default=0):
            return dom["name"]
    return "general"


def cluster_lang(cluster: QueryCluster) -> str:
    langs = cluster.langs
    return max(sorted(langs), key=lambda k: langs[k]) if langs else "zh"


# ---------------------------------------------------------------- the Meta-Agent prompt

META_PROMPT = """You are a Meta-Agent: you design prompt templates for a tool-using AI agent.
Here are {n} user queries from one scenario:
{queries}

Write ONE new agent prompt template for this scenario as a YAML file with these keys:
  name: {name}
  family: meta
  kind: planning
  output_format: the output format's name (one of {builtins}, or a new name of your own)
  format: (only for a new output format) {{style: json|yaml|xml|kv|prefixed, fields: {{thought: .., tool: .., args: ..,
          answer: .., observation: ..}}, finish: answer|call}}
  lang: zh or en (the language of the template's prose)
  sections: [profile, instruction, tools, goal, memory, format]
  description: one sentence on what is special about this template
  source: "written by a Meta-Agent for query cluster {cluster}"
  template: |
    the template text (Jinja2)
The template text must contain all six parts, in any order and with any headings you like:
Profile (who the agent is), Instruction (rules), Tools ({{{{ tools_block }}}}), Goal ({{{{ goal }}}}),
Memory ({{{{ memory_block }}}}; optionally {{{{ history_block }}}}, {{{{ knowledge }}}}, {{{{ now }}}}) and Format
(how to write one step, with an example; say how to finish). {{{{ max_steps }}}} is the step limit.
Be different from ReAct, AutoGPT, ToolLLaMA and ModelScope in wording, structure and persona. Reply with the YAML only."""


def meta_prompt(cluster: QueryCluster, name: str) -> str:
    queries = "\n".join(f"- {q['query']}" for q in cluster.representatives)
    return META_PROMPT.format(n=len(cluster.representatives), queries=queries, name=name, cluster=cluster.id,
                              builtins=", ".join(BUILTIN_PLANNING))


def candidate_name(cluster: QueryCluster, index: int, prefix: str = "metagen") -> str:
    return f"{prefix}_c{cluster.id:02d}_{index}"


class LLMMetaAgent:
    """A real model writes the template from :func:`meta_prompt` (its reply's YAML, fences removed)."""

    def __init__(self, model: Any, *, max_new_tokens: int = 1500):
        self.model, self.max_new_tokens = model, max_new_tokens
        self.name = f"Meta-Agent via {model.name}"

    def write(self, cluster: QueryCluster, index: int) -> Candidate:
        name = candidate_name(cluster, index)
        prompt = meta_prompt(cluster, name)
        reply = self.model.chat([{"role": "user", "content": prompt}], max_new_tokens=self.max_new_tokens,
                                temperature=0.9).text
        fenced = re.search(r"```(?:ya?ml)?[ \t]*\n(.*?)(?:```|\Z)", reply, re.DOTALL)
        text = (fenced.group(1) if fenced else reply).strip() + "\n"
        return Candidate(name, cluster.id, text, self.name, {"writer": "llm"}, prompt)


# ---------------------------------------------------------------- the offline generator

class OfflineMetaAgent:
    """Seeded stand-in for a GPT-4 Meta-Agent (see the module docstring). Same seed, same templates."""

    def __init__(self, seed: int = 0, flaws: Mapping[str, float] | None = None):
        self.seed = seed
        self.flaws = dict(DEFAULT_FLAWS if flaws is None else flaws)
        unknown = set(self.flaws) - set(FLAW_KINDS)
        if unknown:
            raise ValueError(f"unknown flaw kinds {sorted(unknown)}; known: {', '.join(FLAW_KINDS)}")
        self.name = f"offline Meta-Agent generator (seed={seed}; stands in for GPT-4)"

    def write(self, cluster: QueryCluster, index: int) -> Candidate:
        name = candidate_name(cluster, index)
        rng = _rng(self.seed, cluster.id, index, *(q["id"] for q in cluster.representatives))
        p = pools()
        lang = cluster_lang(cluster)
        mix = rng.random() < 0.3
        other = "en" if lang == "zh" else "zh"
        head_lang, label_lang = (other, other) if mix else (lang, lang)
        domain = cluster_domain(cluster)
        flaw = self._flaw(rng)
        fmt, fmt_traits = self._format(rng, label_lang, flaw)
        if flaw in ("format_in_words", "format_mismatch") and not fmt.declared:
            flaw = None  # a built-in format is always shown with its own example
        tool_style = self._tool_style(rng, fmt)
        # declared formats show memory in their own layout or as plain result lines (a KAgent JSON memory would
        # carry "task_name", which marks a prompt as asking for task_json)
        memory_style = fmt.memory_style if not fmt.declared or rng.random() < 0.7 else "results"
        header = rng.choice([h for h in p["header_styles"] if not (h == "xml" and fmt_traits.get("style") == "xml")])
        names = {s: rng.choice(p["section_names"][head_lang][s]) for s in SECTIONS}
        persona = rng.choice(p["personas"][lang][domain])
        parts = {
            "profile": self._profile(rng, lang, persona, flaw),
            "instruction": self._rules(rng, lang, fmt),
            "tools": self._tools(rng, lang),
            "goal": "{{ goal }}",
            "memory": self._memory(rng, lang),
            "format": self._format_section(rng, lang, fmt, flaw),
        }
        order = self._order(rng)
        dropped = None
        if flaw == "missing_section":
            dropped = rng.choice(["memory", "tools", "goal"])
            order.remove(dropped)
        text = "\n\n".join(_section(header, names[s], s, parts[s], head_lang, i) for i, s in enumerate(order, 1))
        if "{{" in parts["format"] or "{%" in parts["format"]:  # never: skeletons are plain JSON / text
            raise AssertionError("format section would be read as Jinja")
        data: dict[str, Any] = {
            "name": name, "family": "meta", "kind": "planning", "output_format": fmt.name, "lang": lang,
            "sections": list(SECTIONS),  # a generator claims all six; the section check verifies
            "description": f"Meta-Agent template for query cluster {cluster.id} ({domain}): {header} headings, "
                           f"{'mixed-language' if mix else lang} text, {fmt_traits['kind']} output.",
            "source": f"Generated by labkit.meta.generate.OfflineMetaAgent (seed {self.seed}) from query cluster "
                      f"{cluster.id}: " + " | ".join(q["query"] for q in cluster.representatives[:3]),
            "template": text + "\n",
        }
        if tool_style != fmt.tool_style:
            data["tool_style"] = tool_style
        if memory_style != fmt.memory_style:
            data["memory_style"] = memory_style
        if fmt.declared:
            data["format"] = fmt.spec()
        yaml_text = template_yaml(data)
        if flaw == "broken_yaml":
            yaml_text = yaml_text.replace("\ntemplate: |", "\ntemplate: |\n\t", 1)  # a tab where YAML needs spaces
        traits: Traits = {"writer": "offline", "lang": "mixed" if mix else lang, "prose_lang": lang, "domain": domain,
                  "persona": persona, "header_style": header, "section_names": [names[s] for s in order],
                  "order": order, "output_format": fmt.name, **fmt_traits, "tool_style": tool_style,
                  "memory_style": memory_style, "flaw": flaw, "dropped_section": dropped}
        return Candidate(name, cluster.id, yaml_text, self.name, traits, meta_prompt(cluster, name))

    # -- choices ------------------------------------------------------------------------------------------------
    def _flaw(self, rng: random.Random) -> str | None:
        roll, acc = rng.random(), 0.0
        for kind in FLAW_KINDS:
            acc += self.flaws.get(kind, 0.0)
            if roll < acc:
                return kind
        return None

    def _format(self, rng: random.Random, lang: str, flaw: str | None) -> tuple[OutputFormat, FormatTraits]:
        if rng.random() < 0.4 and flaw != "colliding_labels":
            fmt = BUILTIN_FORMATS[rng.choice(BUILTIN_PLANNING)]
            return fmt, {"kind": f"built-in {fmt.name}", "style": "builtin"}
        style = rng.choice(DECLARED_STYLES)
        thought, tool, args, answer, obs = rng.choice(pools()["labels"][style][lang])
        finish = "call" if rng.random() < 0.3 else "answer"
        if flaw == "colliding_labels":  # one label for the tool and its arguments: it cannot read back what it writes
            args = tool
        fields = {"thought": thought, "tool": tool, "args": args, "observation": obs}
        if finish == "answer":
            fields["answer"] = answer
        fmt = declare(declared_name(style, fields, finish), {"style": style, "fields": fields, "finish": finish})
        return fmt, {"kind": f"declared {style}", "style": style, "finish": finish}

    def _tool_style(self, rng: random.Random, fmt: OutputFormat) -> str:
        if fmt.tool_style_fixed:  # ToolLLaMA's list carries its Finish function, ModelScope's calls name api_names
            return fmt.tool_style
        return rng.choice(["react", "commands", "apis", fmt.tool_style])

    def _profile(self, rng: random.Random, lang: str, persona: str, flaw: str | None) -> str:
        line = rng.choice(pools()["profile_lines"][lang]).format(persona=persona)
        if flaw == "padded":
            pad = pools()["padding"][lang]
            line += "\n" + "\n".join(rng.sample(pad, len(pad)) * 3)
        return line

    def _rules(self, rng: random.Random, lang: str, fmt: OutputFormat) -> str:
        pool = pools()["rules"]
        ids = ["one_step", "max_steps"] + [r for r in ("tools_only", "args", "no_invention", "only_format")
                                           if rng.random() < (0.85 if r == "tools_only" else 0.5)]
        rng.shuffle(ids)
        lines = [rng.choice(pool[r][lang]).replace("{max_steps}", _VAR["max_steps"]) for r in ids]
        lines.insert(rng.randrange(len(lines) + 1), pools()["finish_rules"][fmt.finish_rule][lang])
        bullet = rng.choice(["- ", "* ", "numbered", "inline"])
        if bullet == "inline":
            return ("" if lang == "zh" else " ").join(lines)
        return "\n".join(f"{i}. {x}" if bullet == "numbered" else bullet + x for i, x in enumerate(lines, 1))

    def _tools(self, rng: random.Random, lang: str) -> str:
        if rng.random() < 0.4:
            names = "可选工具名：{{ tool_names }}\n" if lang == "zh" else "Tool names: {{ tool_names }}\n"
            return names + "{{ tools_block }}"
        return "{{ tools_block }}"

    def _memory(self, rng: random.Random, lang: str) -> str:
        zh = lang == "zh"
        rows = [("已完成的任务：\n" if zh else "Completed tasks:\n") + '{{ memory_block or "' + ("无" if zh else "none")
                + '" }}']
        extra = [("对话历史：" if zh else "Conversation so far: ") + '{{ history_block or "' + ("无" if zh else "none")
                  + '" }}',
                 ("参考知识：" if zh else "Knowledge: ") + '{{ knowledge or "' + ("无" if zh else "none") + '" }}',
                 ("当前时间：" if zh else "Current time: ") + "{{ now }}"]
        rows += [x for x in extra if rng.random() < 0.6]
        rng.shuffle(rows)
        return "\n".join(rows)

    def _format_section(self, rng: random.Random, lang: str, fmt: OutputFormat, flaw: str | None) -> str:
        p = pools()
        intro = rng.choice(p["format_intros"][lang])
        if flaw == "format_in_words" and fmt.declared:
            labels = ("、" if lang == "zh" else ", ").join(fmt.markers)
            return intro + "\n" + p["format_in_words"][lang].format(labels=labels)
        shown = fmt
        if flaw == "format_mismatch":  # the example shows another format than the one declared
            shown = BUILTIN_FORMATS[rng.choice([n for n in ("task_json", "react") if n != fmt.name])]
        call, *answer = shown.skeleton(lang).split("\n\n")
        text = intro + "\n" + call
        if answer:
            text += "\n" + rng.choice(p["answer_intros"][lang]) + "\n" + answer[0]
        return text

    def _order(self, rng: random.Random) -> list[str]:
        middle = ["instruction", "tools", "goal", "memory"]
        rng.shuffle(middle)
        order = ["profile", *middle, "format"]
        if rng.random() < 0.3:  # goal first (a "question-first" template)
            order.remove("goal")
            order.insert(0, "goal")
        if rng.random() < 0.25:  # rules after the format example
            order.remove("instruction")
            order.append("instruction")
        return order


def declared_name(style: str, fields: Mapping[str, str], finish: str) -> str:
    """A stable name for a declared format: its style and labels (ASCII), or a short hash of them."""
    labels = [fields[r] for r in ("thought", "tool", "args", "answer", "observation") if r in fields]
    slug = "_".join(re.sub(r"[^a-z0-9]+", "", x.lower()) for x in labels)
    if not slug.replace("_", "").isascii() or any(not re.sub(r"[^a-z0-9]+", "", x.lower()) for x in labels):
        slug = hashlib.sha1("|".join(labels).encode()).hexdigest()[:8]
    return f"{style}_{slug}" + ("_call" if finish == "call" else "")


_HEADERS_ZH_NUM = "一二三四五六七八九十"


def _section(style: str, title: str, role: str, body: str, lang: str, i: int) -> str:
    if style == "markdown":
        return f"## {title}\n{body}"
    if style == "bracket":
        return f"【{title}】\n{body}" if lang == "zh" else f"[{title}]\n{body}"
    if style == "xml":
        return f"<{role}>\n{body}\n</{role}>"
    if style == "numbered":
        return f"{_HEADERS_ZH_NUM[i - 1]}、{title}\n{body}" if lang == "zh" else f"{i}. {title}\n{body}"
    if style == "upper":
        return f"=== {title.upper()} ===\n{body}"
    return f"{title}{'：' if lang == 'zh' else ':'}\n{body}"


def generate_candidates(clusters: Sequence[QueryCluster], writer: Any, per_cluster: int = 3) -> list[Candidate]:
    """``per_cluster`` candidates for every cluster, in cluster order."""
    return [writer.write(c, i) for c in clusters for i in range(per_cluster)]


def flaw_examples(cluster: QueryCluster, kinds: Sequence[str | None], *, seed: int = 0,
                  max_tries: int = 200) -> list[Candidate]:
    """One candidate per requested flaw kind (None = a clean one), all with declared formats, for a cluster - e.g. to
    show what each check catches. Deterministic for (cluster, kinds, seed)."""
    out = []
    for want in kinds:
        flaws = {} if want is None else {want: 1.0}
        for i in range(max_tries):
            cand = OfflineMetaAgent(seed + i, flaws).write(cluster, len(out))
            if cand.traits["flaw"] == want and cand.traits["style"] != "builtin":
                out.append(cand)
                break
        else:
            raise ValueError(f"no candidate with flaw {want!r} in {max_tries} tries")
    return out
