"""Checkers of notebook 04 (Meta-Agent: section check, the epsilon rule, the template threshold, writing a candidate)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from labkit.exercises import Feedback, exercise, failed, passed, run_student


@exercise("04.1", title="预测结构检查会删掉哪些候选模板",
          note_section="§4.2.2 Meta-Agent 方法：关键信息缺失、有明显缺陷的模板直接删除")
def predict_section_check(answer: Any, *, quiz: Mapping[str, str | Path]) -> Feedback:
    from labkit.meta.judge import section_check

    if isinstance(answer, str) or not all(isinstance(x, str) for x in answer):
        return failed("答案应是候选模板名字的集合，例如 {\"quiz_a\", \"quiz_c\"}（一个都不删就写 set()）。")
    picked = set(answer)
    unknown = picked - set(quiz)
    if unknown:
        return failed(f"没有这些候选：{sorted(unknown)}；候选是 {sorted(quiz)}。")
    verdicts = {name: section_check(path)[0] for name, path in quiz.items()}
    dropped = {n for n, v in verdicts.items() if not v.passed}
    hints = []
    for name in sorted(picked - dropped):
        hints.append(f"{name} 会通过：六个部分都在，它的格式也能“写出去再读回来”。它也许不是好模板（比如格式只用文字描述、"
                     "没有示例），但结构检查拦不住它——那是第 5 节成对裁判的事。")
    for name in sorted(dropped - picked):
        v = verdicts[name]
        if v.missing:
            hints.append(f"{name} 会被删：渲染时缺了一个部分（看看 {{{{ goal }}}}、{{{{ tools_block }}}}、"
                         "{{ memory_block }} 是不是都在模板文本里）。")
        elif v.round_trip:
            hints.append(f"{name} 会被删：看它的 format 声明（fields），两个字段用了同一个标签，"
                         "按这个格式写出的一步读回来就不是原来那一步了。")
        else:
            hints.append(f"{name} 会被删：它根本加载不了（{v.error[:80]}…）。")
    if hints:
        return failed("\n".join(hints), expected=len(dropped), got=len(picked))
    reasons = "；".join(f"{n}：{verdicts[n].reason[:60]}" for n in sorted(dropped))
    return passed(f"完全正确，结构检查删掉 {sorted(dropped)}（{reasons}）。其余的要交给成对裁判。")


EPS_CASES: list[tuple[float, float, float, bool, str]] = [
    (0.9, 0.8, 0.0, True, "候选比标杆好 0.1 > 0，应保留。"),
    (0.8, 0.8, 0.0, False, "两者一样好时 s2 - s1 = 0，并不“大于” ε = 0：笔记写的是 score2 - score1 > ε，用 >，不是 >=。"),
    (0.75, 0.5, 0.25, False, "差值正好等于 ε（0.25）时不保留：严格大于。"),
    (0.6, 0.8, 0.0, False, "候选比标杆差，不应保留。检查一下减法的方向：是 s2 - s1（候选减标杆）。"),
    (0.78, 0.8, -0.05, True, "ε 可以是负数：ε = -0.05 表示“比标杆差一点点也能接受”，-0.02 > -0.05，应保留。"),
    (0.7, 0.8, -0.05, False, "差了 0.1，超过了容忍度 0.05，不保留。"),
    (1.0, 0.5, 0.6, False, "ε 很大时要求候选大幅领先：0.5 并不大于 0.6。别忘了用上 eps。"),
]


@exercise("04.2", title="实现 ε 规则：保留 score2 − score1 > ε 的 prompt 实例",
          note_section="§4.2.2 Meta-Agent 方法：score2 − score1 > ε 则保留该 prompt 实例")
def epsilon_rule(answer: Any, *, instances: Any = None, epsilon: float | None = None) -> Feedback:
    got = []
    for s2, s1, eps, _, _ in EPS_CASES:
        value = run_student(answer, s2, s1, eps)
        if not isinstance(value, bool) and value not in (0, 1):
            return failed(f"keep({s2}, {s1}, {eps}) 返回了 {value!r}：应返回 True 或 False。")
        got.append(bool(value))
    typical = {"用了 >=：笔记写的是 score2 - score1 > ε，差值恰好等于 ε 时不保留。": lambda s2, s1, e: s2 - s1 >= e,
               "减法方向反了：是 s2 - s1（候选减标杆），候选更好时差值为正。": lambda s2, s1, e: s1 - s2 > e,
               "没有用上 eps：规则是和 ε 比，不是和 0 比。": lambda s2, s1, e: s2 - s1 > 0}
    for hint, rule in typical.items():
        if got == [rule(s2, s1, e) for s2, s1, e, _, _ in EPS_CASES]:
            return failed(hint)
    for (s2, s1, eps, want, why), mine in zip(EPS_CASES, got):
        if mine != want:
            return failed(f"keep(s2={s2}, s1={s1}, eps={eps}) 应为 {want}，你的函数给出 {mine}。{why}")
    if instances is not None and epsilon is not None and len(instances):
        mine = [bool(answer(r.s2, r.s1, epsilon)) for r in instances.itertuples()]
        if mine != list(instances["kept"]):
            return failed("在本次运行的实例上，你的函数与流水线的决定不一致（检查浮点比较是否用了 round 之类的处理）。")
        return passed(f"正确。用 ε = {epsilon} 时，本次 {len(mine)} 个实例里保留 {sum(mine)} 个。")
    return passed("正确：严格大于、方向是候选减标杆、ε 可正可负。")


@exercise("04.3", title="模板级阈值：实例平均分大于阈值的模板才保留",
          note_section="§4.2.2 Meta-Agent 方法：同一模板所有实例求平均分，大于阈值则保留该模板")
def template_threshold(answer: Any, *, instances: Any, threshold: float) -> Feedback:
    import pandas as pd

    if isinstance(answer, str) or not all(isinstance(x, str) for x in answer):
        return failed("答案应是模板名字的集合（set of str），例如 set(some_series.index)。")
    picked = set(answer)
    df = pd.DataFrame(instances)
    means = df.groupby("template")["s2"].mean()
    want = set(means[means > threshold].index)
    if picked == want:
        return passed(f"正确：{len(want)} 个模板的实例平均分大于 {threshold}，其余 {len(means) - len(want)} 个连同实例一起删除。")
    only_kept = df[df["kept"]].groupby("template")["s2"].mean()
    deltas = df.groupby("template")["delta"].mean() if "delta" in df else None
    if picked == set(only_kept[only_kept > threshold].index):
        return failed("你只对通过 ε 规则的实例求了平均：笔记说“对同一个模板的**所有**实例求平均分”。")
    if picked == set(means[means >= threshold].index):
        return failed("多了平均分恰好等于阈值的模板：笔记说“大于一定阈值”，和 ε 规则一样用严格大于。")
    if deltas is not None and picked == set(deltas[deltas > threshold].index):
        return failed("你用的是 s2 - s1 的平均；模板的得分是它自己实例的分数 s2 的平均。")
    if picked == set(means[means <= threshold].index) or picked == set(means[means < threshold].index):
        return failed("方向反了：这是被删掉的模板。")
    missing, extra = sorted(want - picked), sorted(picked - want)
    return failed(f"还不对：漏了 {len(missing)} 个应保留的模板，多了 {len(extra)} 个不该保留的。"
                  "按 template 分组、对 s2 求 mean()，再和阈值比较。", missing=missing, extra=extra)


COPY_SIMILARITY = 0.9  # TF-IDF cosine over character 2-4-grams above which a template counts as a copy


def _similarity(text: str, others: Mapping[str, str]) -> tuple[str, float]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    names = list(others)
    matrix = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4)).fit_transform([text, *others.values()])
    sims = (matrix[0] @ matrix[1:].T).toarray()[0]
    best = int(sims.argmax())
    return names[best], float(sims[best])


@exercise("04.4", title="扮演 Meta-Agent：为一个聚类写一个候选模板，让它通过两道筛选",
          note_section="§4.2.2 Meta-Agent 方法：生成 Agent Prompt 模板候选（第 4 步），再经筛选保留")
def write_candidate(answer: Any, *, cluster: Any, out_dir: str | Path, others: Mapping[str, str],
                    n_queries: int = 4, epsilon: float = -0.05, threshold: float = 0.8, seed: int = 0) -> Feedback:
    import yaml

    from labkit.meta.pipeline import judge_candidate
    from labkit.templates import list_templates

    if not isinstance(answer, str):
        return failed("答案应是模板文件的全文（一个 YAML 字符串），键有 name / family / kind / output_format / lang / "
                      "sections / description / source / template。")
    try:
        data = yaml.safe_load(answer)
    except yaml.YAMLError as exc:
        return failed(f"YAML 写坏了：{str(exc).splitlines()[0]}。多行的模板正文用 `template: |`，下面每行缩进两格。")
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return failed("YAML 顶层应是一个映射，至少有 name（模板名）和 template（模板正文）。")
    name = data["name"]
    if name in list_templates() or name in others:
        return failed(f"模板名 {name!r} 已经被占用（内置模板或生成的候选）：换一个自己的名字，例如 my_xxx。")
    body = str(data.get("template", ""))
    twin, sim = _similarity(body, others) if body.strip() else ("", 0.0)
    if sim > COPY_SIMILARITY:
        return failed(f"这份模板和 {twin} 的相似度是 {sim:.2f}（> {COPY_SIMILARITY}）：改名、改几个字不算写了新模板。"
                      "Meta-Agent 的意义是**多样**——换一种人设、章节措辞、规则顺序或输出格式。", copy_of=twin)
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(answer, encoding="utf-8")
    v = judge_candidate(path, cluster, n_queries=n_queries, epsilon=epsilon, threshold=threshold, seed=seed,
                        cache_path=folder / f"{name}.answers.jsonl")
    if not v.section.loaded:
        return failed(f"结构检查第 1 关：文件加载不了——{v.section.error[:300]}")
    if v.section.missing:
        return failed(f"结构检查第 2 关：缺了 {', '.join(v.section.missing)}。模板正文里要有 {{{{ goal }}}}、"
                      "{{ tools_block }}、{{ memory_block }}，还要有角色描述（Profile）、规则（Instruction）和输出格式说明。")
    if v.section.round_trip:
        return failed(f"结构检查第 3 关：格式不能往返——{v.section.round_trip[0][:200]}")
    if v.mean_s2 is None or not v.instances:
        return failed("没有评上分：这个聚类里没有可用的裁判 query。")
    if not v.kept:
        return failed(f"通过了结构检查，但成对裁判只给了平均 {v.mean_s2:.2f} 分（阈值 {threshold}；标杆模板平均 "
                      f"{v.mean_s1:.2f}）。作答的 sandbox-reader 在这些情况下更容易出错：prompt 里**没有该格式的示例**"
                      "（它会改用自己熟悉的格式）、没有“只能使用列出的工具”这类规则、prompt 太长。",
                      mean_s2=v.mean_s2)
    kept = sum(i.kept for i in v.instances)
    return passed(f"{name} 通过了两道筛选：六个部分齐全、格式能往返；裁判在 {len(v.instances)} 个情境上给它平均 "
                  f"{v.mean_s2:.2f} 分（标杆 {v.mean_s1:.2f}），{kept} 个实例满足 s2 − s1 > {epsilon}，模板平均分大于阈值 "
                  f"{threshold}，保留。这正是 Meta-Agent 漏斗对每个候选做的事。", mean_s2=v.mean_s2)
