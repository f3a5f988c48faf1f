"""Guided decoding (strict function calling): the formats' call grammars (character level), the token-level trie /
state machine on hand-written Gemma token sequences, the logits processor under random scores, and the tiny random
model end to end - guided outputs always name an offered tool with schema keys, free ones do not."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch

from labkit.formats import declare, get_format, register, unregister
from labkit.formats.guide import Grammar, accepting, expect, feed_text, shortest, tool_shapes
from labkit.tools import default_registry
from labkit.types import ParseError, ToolCall

OFFERED = ["web_search", "get_weather_info", "unit_convert", "currency_convert", "task_complete"]
BUILTIN_GUIDED = ["task_json", "autogpt", "react", "toolllama", "modelscope"]
STYLES = ["json", "xml", "kv", "prefixed", "yaml"]


@pytest.fixture(scope="module")
def registry() -> Any:
    return default_registry().subset(OFFERED)


@pytest.fixture(scope="module")
def declared() -> Iterator[list[str]]:
    """One declared format per style and finish (labels as a template file would write them)."""
    names = []
    for style in STYLES:
        for finish in ("answer", "call"):
            fields = {"thought": "why", "tool": "tool", "args": "input"} | ({"answer": "answer"} if finish == "answer"
                                                                           else {})
            if style == "prefixed":
                fields = {k: v.capitalize() for k, v in fields.items()}
            name = f"guided_{style}_{finish}"
            register(declare(name, {"style": style, "fields": fields, "finish": finish}))
            names.append(name)
    yield names
    for name in names:
        unregister(name)


def formats(declared: list[str]) -> list[str]:
    return BUILTIN_GUIDED + declared


def check_call(fmt_name: str, text: str, registry: Any) -> tuple[str | None, bool]:
    """(tool name or None for a final answer / give-up, whether the step is valid under strict calling): it parses,
    a call names an offered tool and its keys are that tool's properties with the required ones present."""
    parsed = get_format(fmt_name).parse(text, tools=registry)
    if isinstance(parsed, ParseError):
        return None, False
    if parsed.call is None:
        return None, True
    if parsed.call.name == "Finish" and fmt_name == "toolllama":
        return "Finish", True
    if parsed.call.name not in registry:
        return parsed.call.name, False
    tool = registry.get(parsed.call.name)
    keys = set(parsed.call.args)
    return parsed.call.name, keys <= set(tool.parameters["properties"]) and set(tool.required) <= keys


GOLD_CALLS = [ToolCall("get_weather_info", {"location": "北京", "start_date": "2025-03-15",
                                             "end_date": "2025-03-16"}),
              ToolCall("unit_convert", {"value": 3.5, "from_unit": "km", "to_unit": "mile"}),
              ToolCall("web_search", {"query": 'say "hi" {brace}\\ 引号'}),
              ToolCall("currency_convert", {"amount": -12, "from_currency": "USD", "to_currency": "CNY"}),
              ToolCall("task_complete", {}), ToolCall("task_complete", {"reason": "done"})]


# ---------------------------------------------------------------------------------------------------- grammars

def test_every_guided_format_accepts_its_gold_steps_and_refuses_off_schema_ones(registry: Any,
                                                                               declared: list[str]) -> None:
    for name in formats(declared):
        fmt = get_format(name)
        grammar = fmt.call_grammar(registry)
        assert isinstance(grammar, Grammar) and grammar.tools == tuple(OFFERED), name
        for call in GOLD_CALLS:
            assert grammar.accepts(fmt.render(call, 'think "x"\\ 想')), (name, call)
        if fmt.has_answer_form:
            assert grammar.accepts(fmt.render("答案是 5 km。", "t")), name
        bad = {"unoffered tool": ToolCall("calculator", {"expression": "1+1"}),
               "unknown key": ToolCall("web_search", {"q": "x"}),
               "extra key": ToolCall("web_search", {"query": "x", "page": "2"}),
               "missing required key": ToolCall("get_weather_info", {"location": "x"}),
               "number for a string": ToolCall("web_search", {"query": 5})}
        for what, call in bad.items():
            assert not grammar.accepts(fmt.render(call, "t")), (name, what)
        assert fmt.call_grammar(registry) is grammar  # memoised: masks cached per state are reused


def test_formats_without_a_call_syntax_or_tools_are_not_guided(registry: Any) -> None:
    assert get_format("conclusion").call_grammar(registry) is None
    assert get_format("task_json").call_grammar([]) is None


def test_tool_shapes_read_registries_tools_and_spec_dicts(registry: Any) -> None:
    shapes = tool_shapes(registry)
    assert [s.name for s in shapes] == OFFERED
    weather = shapes[1]
    assert weather.keys == ("location", "start_date", "end_date", "is_current")
    assert weather.required == ("location", "start_date", "end_date")
    assert tool_shapes([t.spec() for t in registry]) == shapes == tool_shapes([t.openai_schema() | {
        "function": t.openai_schema()["function"] | {"required": t.required}} for t in registry])
    enum = tool_shapes([{"name": "f", "parameters": {"properties": {"mode": {"enum": ["a", "b"]}}}}])[0]
    grammar = get_format("task_json").call_grammar([{"name": "f", "parameters": {"properties": {
        "mode": {"enum": ["a", "b"]}}}}])
    assert enum.kind("mode") == ("a", "b")
    assert grammar.accepts('{"task_name": "", "command": {"name": "f", "args": {"mode": "b"}}}')
    assert not grammar.accepts('{"task_name": "", "command": {"name": "f", "args": {"mode": "c"}}}')


def test_the_state_machine_tracks_where_the_call_is(registry: Any) -> None:
    grammar = get_format("task_json").call_grammar(registry)
    state = feed_text(grammar.start(), '{"task_name": "查 {x} \\"y\\"", "command": {"name": "')
    strings, free = expect(state)
    assert strings == [n + '"' for n in OFFERED] and free is None  # the name slot: offered names + closing quote
    assert feed_text(state, 'calculator"') is None and feed_text(state, "web_search ") is None
    state = feed_text(state, 'web_search", "args": {')
    assert expect(state) == (['"query":'], None)  # web_search has one key, and it is required
    state = feed_text(state, '"query": "a')
    strings, free = expect(state)
    assert free is not None and '"' in free and "\n" in free  # inside a JSON string: free text, escapes checked
    assert feed_text(state, "\n") is None and feed_text(state, "\\q") is None and feed_text(state, "\\n") is not None
    done = feed_text(state, '"}}}')
    assert done is not None and accepting(done) and expect(done) == ([], None)
    # react: the tool is the rest of the Action line; a number key takes JSON numbers only
    react = get_format("react").call_grammar(registry)
    state = feed_text(react.start(), "Thought: convert\nAction: unit_convert\nAction Input: {\"value\": ")
    assert feed_text(state, "-1.5e3,") is not None and feed_text(state, '"3"') is None
    assert feed_text(state, "01") is None


def test_free_text_never_holds_an_end_marker_or_a_stop_string(registry: Any) -> None:
    """Every parser cuts a step at <end_of_turn> / <eos> / </s>, and the loop stops generating at the format's stop
    strings: guided free text (thoughts, string values, answers) may hold neither, so the step stays whole."""
    react = get_format("react").call_grammar(registry)
    thought = feed_text(react.start(), "Thought: a")
    for bad in ("</s>", "<eos>", "<end_of_turn>", "Observation:"):
        assert feed_text(thought, bad) is None and feed_text(thought, bad[:-1]) is not None, bad
    assert react.accepts("Thought: a\nFinal Answer: x < y, </b>")
    assert not react.accepts("Thought: a\nFinal Answer: x</s>")
    task = get_format("task_json").call_grammar(registry)
    assert feed_text(task.start(), '{"task_name": "a<eos>') is None
    modelscope = get_format("modelscope").call_grammar(registry)
    assert not modelscope.accepts("answer <|startofexec|>")


def test_free_text_cannot_smuggle_a_tool_field(registry: Any, declared: list[str]) -> None:
    """The declared parsers read a field wherever its marker is: an XML ``<tool>`` tag inside the thought or the
    answer, or an answer line that starts with the tool label (any case), is read as a call of a tool nobody
    offered. Guided free text never writes one (XML free text holds no field's opening tag, a line-style answer is
    one line); the same answer without the smuggled line is still allowed."""
    checked = 0
    for name in declared:
        fmt = get_format(name)
        lab, grammar = fmt.labels, fmt.call_grammar(registry)
        call = fmt.render(ToolCall("web_search", {"query": "q"}), "t")
        smuggled = []
        if fmt.style == "xml":
            inner = f"<{lab['tool']}>calculator</{lab['tool']}>"
            smuggled.append(call.replace(f"<{lab['thought']}>t", f"<{lab['thought']}>t {inner}"))
            if fmt.has_answer_form:
                smuggled.append(fmt.render(f"y {inner}", "t"))
        elif fmt.style != "json" and fmt.has_answer_form:
            sep = "=" if fmt.style == "kv" else ": "
            smuggled.append(fmt.render(f"y\n{lab['tool'].upper()}{sep}calculator", "t"))
            assert grammar.accepts(fmt.render("y", "t")), name
        for text in smuggled:
            parsed = fmt.parse(text, tools=registry)
            assert not isinstance(parsed, ParseError) and parsed.call is not None, (name, text)
            assert parsed.call.name == "calculator", (name, text)  # what the parser would make of it
            assert not grammar.accepts(text) and grammar.accepts(call), (name, text)
            checked += 1
    assert checked == 6  # xml: 2 thoughts + 1 answer; kv, prefixed, yaml: 1 answer each


def test_a_budget_that_runs_short_keeps_every_tool_affordable(registry: Any) -> None:
    """The roomy completion (what free text is closed for) leaves room for the longest offered tool and its
    required keys, so the model - not the budget - picks the tool; the plain shortest one takes the cheapest."""
    task = get_format("task_json").call_grammar(registry)
    state = feed_text(task.start(), '{"task_name": "x')
    assert shortest(state) == '","command":{"name":"task_complete","args":{}}}'
    roomy = shortest(state, roomy=True)
    assert "currency_convert" in roomy and '"amount":0' in roomy and task.accepts('{"task_name": "x' + roomy)


def test_shortest_completion_finishes_a_valid_call_from_every_prefix(registry: Any, declared: list[str]) -> None:
    """What closes a call before the token budget runs out: from every prefix of a gold step, prefix + shortest
    completion is a whole step the format's own parser reads as a valid call (or answer)."""
    for name in formats(declared):
        fmt = get_format(name)
        grammar = fmt.call_grammar(registry)
        text = fmt.render(GOLD_CALLS[0], 'a "thought"')
        for cut in range(len(text) + 1):
            state = feed_text(grammar.start(), text[:cut])
            for roomy in (False, True):
                whole = text[:cut] + shortest(state, roomy=roomy)
                assert grammar.accepts(whole), (name, cut, whole)
                assert check_call(name, whole, registry)[1], (name, whole)


# ---------------------------------------------------------------------------------------------------- token level

@pytest.fixture(scope="module")
def index() -> Any:
    from labkit.llm import load_tokenizer
    from labkit.llm.guided import token_index

    return token_index(load_tokenizer())


EOS, END_OF_TURN = 1, 106


def tokens(index: Any, *pieces: str) -> list[int]:
    """A hand-written token sequence: each piece must be one Gemma token."""
    out = []
    for piece in pieces:
        assert piece in index.by_text, f"{piece!r} is not one Gemma token"
        out.append(index.by_text[piece][0])
    return out


def allowed_after(index: Any, grammar: Grammar, pieces: list[str], *, budget: int = 160) -> torch.Tensor:
    """The mask the processor leaves after a hand-written sequence (True: allowed next)."""
    from labkit.llm.guided import GuidedDecoding

    proc = GuidedDecoding(index, [grammar], prompt_len=1, max_new_tokens=budget, stop_ids=[EOS, END_OF_TURN])
    input_ids = torch.tensor([[2, *tokens(index, *pieces)]])
    scores = proc(input_ids, torch.zeros(1, index.size))
    assert not proc.broken[0]
    return scores[0] > float("-inf")


def test_token_masks_on_hand_written_gemma_sequences(index: Any, registry: Any) -> None:
    grammar = get_format("task_json").call_grammar(registry)
    ok = lambda mask, *pieces: [bool(mask[index.by_text[p][0]]) for p in pieces]  # noqa: E731
    head = ['{"', "task", "_", "name", '":', ' "', "查询", "天气", '",', ' "', "command", '":', ' {"', "name", '":',
            ' "']
    mask = allowed_after(index, grammar, head)
    assert ok(mask, "get", "web", "unit", "currency", "task") == [True] * 5  # prefixes of offered names
    assert ok(mask, "calc", " ", '"', "x") == [False] * 4 and not mask[EOS] and not mask[END_OF_TURN]
    assert int(mask.sum()) < 100  # a trie walk over the offered names, not the vocabulary
    mask = allowed_after(index, grammar, head + ["get", "_", "weather", "_", "info"])
    assert ok(mask, '"', '",') == [True, True] and ok(mask, "_", "x", '"}') == [False] * 3
    head += ["get", "_", "weather", "_", "info", '",', ' "', "args", '":', ' {"']
    mask = allowed_after(index, grammar, head)
    assert ok(mask, "location", "start", "end", "is") == [True] * 4 and ok(mask, "query", "}", "name") == [False] * 3
    inside = head + ["location", '":', ' "']
    mask = allowed_after(index, grammar, inside)
    assert ok(mask, "北京", " Beijing", "\\") == [True] * 3 and ok(mask, "\n", '"}') == [False, False]
    assert int(mask.sum()) > 200_000  # free text: every plain token
    mask = allowed_after(index, grammar, inside + ["北京", '",', ' "'])
    assert ok(mask, "start", "end", "is") == [True] * 3 and ok(mask, "location") == [False]  # no repeated key
    whole = inside + ["北京", '",', ' "', "start", "_", "date", '":', ' "', "2", '",', ' "', "end", "_", "date", '":',
                      ' "', "3"]
    mask = allowed_after(index, grammar, whole)
    assert ok(mask, '"', '",', '"}}') == [True] * 3 and not mask[EOS]
    mask = allowed_after(index, grammar, whole + ['"', "}}}"])
    assert mask.nonzero().flatten().tolist() == [EOS, END_OF_TURN]  # the call is complete: only the end of turn


def test_token_masks_for_react_lines(index: Any, registry: Any) -> None:
    grammar = get_format("react").call_grammar(registry)
    ok = lambda mask, *pieces: [bool(mask[index.by_text[p][0]]) for p in pieces]  # noqa: E731
    mask = allowed_after(index, grammar, [])
    assert ok(mask, "Thought", "Th") == [True, True] and ok(mask, "Action", " ") == [False, False]
    line = ["Thought", ":", " 查询", "天气"]
    mask = allowed_after(index, grammar, line)
    assert ok(mask, " today", "\n") == [True, True] and ok(mask, "\n\n") == [False]
    mask = allowed_after(index, grammar, line + ["\n", "Action", ":"])
    assert ok(mask, " get", " web", "get", " ") == [True] * 4 and ok(mask, " calc", " Final") == [False, False]
    mask = allowed_after(index, grammar, line + ["\n", "Action", ":", " get", "_", "weather", "_", "info", "\n",
                                                 "Action", " Input", ":"])
    assert ok(mask, ' {"', "{") == [True, True] and ok(mask, " hello", "\n") == [False, False]


def simulate(index: Any, grammars: list[Grammar | None], budget: int, seed: int) -> tuple[list[str], Any]:
    """Generation without a model: random scores (tokens that end free text boosted, so rows make their own
    choices before the budget closes them) through the processor, greedy, one grammar per row."""
    from labkit.llm.guided import GuidedDecoding

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # many small tensor ops: one thread is fastest (and fair on a busy 2-core CPU)
    try:
        return _simulate(index, grammars, budget, seed)
    finally:
        torch.set_num_threads(threads)


def _simulate(index: Any, grammars: list[Grammar | None], budget: int, seed: int) -> tuple[list[str], Any]:
    from labkit.llm.guided import GuidedDecoding

    gen = torch.Generator().manual_seed(seed)
    proc = GuidedDecoding(index, grammars, prompt_len=1, max_new_tokens=budget, stop_ids=[EOS, END_OF_TURN])
    boost = torch.zeros(index.size)
    boost[index.containing(frozenset('"\n>'))] = 8.0
    ids = torch.full((len(grammars), 1), 2)
    done = torch.zeros(len(grammars), dtype=torch.bool)
    for _ in range(budget):
        scores = proc(ids, torch.randn(len(grammars), index.size, generator=gen) + boost)
        nxt = torch.where(done, torch.zeros_like(done, dtype=torch.long), scores.argmax(-1))
        done |= (nxt == EOS) | (nxt == END_OF_TURN)
        ids = torch.cat([ids, nxt[:, None]], dim=1)
    texts = []
    for row in ids[:, 1:].tolist():
        cut = next((i for i, t in enumerate(row) if t in (EOS, END_OF_TURN, 0)), len(row))
        texts.append("".join(index.pieces[t] for t in row[:cut]))
    return texts, proc


def test_random_scores_always_give_valid_calls_in_every_format_and_row(index: Any, registry: Any,
                                                                       declared: list[str]) -> None:
    """Rows of one batch each hold their own grammar (mixed formats and tool sets); whatever the scores, every row
    ends as a step its format's parser reads, naming an offered tool with schema keys, within the budget."""
    other = default_registry().subset(["calculator", "time_delta", "task_complete"])
    names = formats(declared)
    rows = [(n, registry if i % 2 else other) for i, n in enumerate(names)]
    grammars = [get_format(n).call_grammar(r) for n, r in rows]
    texts, proc = simulate(index, grammars, budget=160, seed=0)
    chosen = set()
    for (name, reg), text in zip(rows, texts):
        tool, valid = check_call(name, text, reg)
        assert valid, (name, text)
        chosen.add(tool)
    assert len(chosen - {None}) >= 3  # the scores chose the tools, not a fixed rule
    assert not any(proc.broken) and not any(proc.relaxed)


def test_a_tight_budget_still_closes_the_call(index: Any, registry: Any) -> None:
    for name in BUILTIN_GUIDED:
        grammar = get_format(name).call_grammar(registry)
        texts, proc = simulate(index, [grammar] * 3, budget=60, seed=1)
        for text in texts:
            assert check_call(name, text, registry)[1], (name, text)


# ---------------------------------------------------------------------------------------------------- tiny model

@pytest.fixture(scope="module")
def tiny() -> Any:
    from labkit.llm import LocalHFModel

    return LocalHFModel("tiny", dtype=torch.float32)


GOLD = [{"id": "t1", "query": "北京明天（2025-03-16）天气怎么样？", "lang": "zh",
         "gold_calls": [{"name": "get_weather_info", "args": {"location": "北京", "start_date": "2025-03-16",
                                                              "end_date": "2025-03-16", "is_current": "no"}}],
         "thoughts": ["查询北京2025-03-16的天气"], "reference_answer": "北京 2025-03-16 阴，-1~6°C。"}]
PROMPTS = [[{"role": "user", "content": f"Query {i}: what is the weather in 北京 on day {i}?"}] for i in range(2)]
BUDGET = 96  # new tokens per step for the tiny model: below every format's own budget, so closing in time is tested


def test_the_random_tiny_model_calls_only_offered_tools_when_guided(tiny: Any, registry: Any,
                                                                  declared: list[str]) -> None:
    """The random tiny model under guided decoding, batched: every output, in every guided format, names an offered
    tool with keys from its schema; the same prompts decoded freely do not (so the check can fail)."""
    from labkit.agent import decoding_for
    from labkit.llm.base import cut_at_stop, cut_until

    free = tiny.chat_batch(PROMPTS, max_new_tokens=BUDGET)  # greedy: each format's stop rules only cut this text
    assert all(r.meta == {} for r in free)
    for name in formats(declared):
        grammar = get_format(name).call_grammar(registry)
        dec = decoding_for(name, BUDGET)
        guided = tiny.chat_batch(PROMPTS, guides=[grammar] * len(PROMPTS), **dec.kwargs())
        for result in guided:
            assert check_call(name, result.text, registry)[1], (name, result.text)
            assert result.meta.get("guided") == name and "guide_broken" not in result.meta
        for result in free:
            text = cut_until(cut_at_stop(result.text, list(dec.stop or ())), dec.until)
            assert check_call(name, text, registry)[0] not in OFFERED, (name, text)


def test_guides_are_per_row_and_a_row_without_one_is_free(tiny: Any, registry: Any) -> None:
    from labkit.agent import decoding_for

    grammar = get_format("task_json").call_grammar(registry)
    kw = decoding_for("task_json", BUDGET).kwargs()
    results = tiny.chat_batch(PROMPTS[:2], guides=[grammar, None], **kw)
    assert check_call("task_json", results[0].text, registry)[1]
    assert results[1] == tiny.chat(PROMPTS[1], **kw)
    single = tiny.chat(PROMPTS[0], guide=grammar, **kw)
    assert single.text == results[0].text
    with pytest.raises(ValueError, match="one per conversation"):
        tiny.chat_batch(PROMPTS, guides=[grammar])


def test_agent_loop_guided_runs_offered_tools_with_valid_arguments(tiny: Any) -> None:
    """run_plans with batch_size > 1: each run has its own offered tools (one grammar per row); with guided
    decoding every planning step is a call of an offered tool whose arguments the registry accepts."""
    from labkit.agent import run_plans, run_react

    items = [("北京明天天气怎么样？", ["get_weather_info", "web_search", "task_complete"]),
             ("100 美元是多少人民币？", ["currency_convert", "calculator", "task_complete"]),
             ("把 5 km 换成英里", ["unit_convert", "task_complete"])]
    guided = run_plans(tiny, items, max_steps=2, batch_size=3, guided=True, max_new_tokens=BUDGET)
    for trace, (_, offered) in zip(guided, items):
        plans = [s for s in trace.steps if s.kind != "conclusion"]
        assert plans and all(s.ok for s in plans), trace.stopped
        for step in plans:
            assert step.parsed["call"]["name"] in offered
            assert step.tool_error not in ("unknown_tool", "invalid_args"), step.observation
        assert trace.stopped != "parse_error"
    free = run_plans(tiny, items, max_steps=2, batch_size=3, max_new_tokens=BUDGET)
    assert all(t.stopped == "parse_error" for t in free)
    react = run_react(tiny, "北京明天天气怎么样？", tools=["get_weather_info", "task_complete"], max_steps=1,
                      max_new_tokens=BUDGET, guided=True)
    assert react.steps[0].ok and react.stopped != "parse_error"


def test_models_without_guided_decoding_ignore_the_option() -> None:
    """API clients, the emulators and the cache wrapper (so KAgentBench generation) decode freely; a model whose
    chat() has no guide keyword still works with guided=True."""
    from labkit.agent import run_plan
    from labkit.llm import CachedChatModel, RequestCache, SandboxTeacher, supports_guides
    from labkit.types import ChatResult

    class Plain:
        name = "plain"

        def chat(self, messages: list[Any], *, max_new_tokens: int = 256, temperature: float = 0.0,
                 stop: Any = None, until: Any = None) -> ChatResult:
            return ChatResult(get_format("task_json").render(ToolCall("task_complete", {"reason": "ok"}), "done"),
                              "plain")

    teacher = SandboxTeacher(gold=GOLD, bank=None)
    assert not supports_guides(teacher) and not supports_guides(Plain())
    query = GOLD[0]["query"]
    with_option = run_plan(teacher, query, guided=True)
    assert with_option.calls and with_option.to_dict() == run_plan(teacher, query).to_dict()
    assert run_plan(Plain(), query, guided=True).stopped == "finished"
    assert not supports_guides(CachedChatModel(Plain(), RequestCache("/nonexistent/cache.jsonl")))


def test_end_to_end_with_and_without_guided_decoding(tiny: Any, tmp_path: Any) -> None:
    """agent_success(guided=...): the rows notebook 06 and bench/guided_decoding.py report. Guided, the random
    model's planning step calls one of the tools the query was offered; free, it writes no parseable step."""
    from labkit.agent import Trace
    from labkit.evaluate.runner import agent_row, agent_success

    steps = {}
    for guided in (False, True):
        path = tmp_path / f"traces_{guided}.jsonl"
        rate, outcomes = agent_success(tiny, GOLD, traces_path=path, guided=guided, max_steps=1,
                                       max_new_tokens=BUDGET)
        row = agent_row(rate, outcomes)
        assert row["queries"] == 1 and row["finished"] == (outcomes[0].stopped == "finished")
        steps[guided] = Trace.load(path)[0].steps[0]
    from labkit.evaluate.benchmark import offered

    names = offered(GOLD[0], default_registry(), "task_json").names()
    assert steps[True].ok and steps[True].parsed["call"]["name"] in names
    assert steps[True].tool_error not in ("unknown_tool", "invalid_args")
    assert not steps[False].ok
