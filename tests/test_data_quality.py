"""Dedup, PII anonymisation (measured on data/pii/labelled.jsonl), query/template splits and the leakage report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labkit.data.anonymize import anonymize, detect_pii, evaluate_pii, id_card_valid, load_pii_labels, luhn_valid
from labkit.data.dedup import NearDupIndex, cross_duplicates, deduplicate, jaccard
from labkit.data.split import leakage_report, split_queries, split_templates
from labkit.errors import DataFileError, UnknownNameError

PII_FLOOR_PRECISION = 0.9
PII_FLOOR_RECALL = 0.85


def test_dedup_removes_exact_and_near_duplicates_and_keeps_distinct() -> None:
    texts = ["北京明天的天气怎么样？", "北京明天的天气怎么样?", "北京明天的天气怎么样呢？",
             "上海到杭州的高铁有哪些车次？", "What is 15% of 240?", "what is 15 % of 240"]
    res = deduplicate(list(enumerate(texts)), text=lambda r: r[1], key=lambda r: str(r[0]))
    assert [r[1] for r in res.kept] == [texts[0], texts[3], texts[4]]
    reasons = {r["record"][1]: r["reason"] for r in res.removed}
    assert reasons[texts[1]] == "exact_duplicate" and reasons[texts[5]] == "exact_duplicate"
    assert reasons[texts[2]] == "near_duplicate" and res.removed[1]["jaccard"] >= 0.8


def test_near_dup_threshold_is_confirmed_by_true_jaccard() -> None:
    a, b = "请问从北京到上海的火车票多少钱", "请问从北京到广州的火车票多少钱"
    assert jaccard(a, b) < 0.8
    idx = NearDupIndex(0.8)
    idx.add("a", a)
    assert idx.query(b) == []
    assert cross_duplicates([("a", a)], [("b", a + "呀")])["near"][0]["left"] == "a"


def test_checksums() -> None:
    assert id_card_valid("11010519491231002X")
    assert not id_card_valid("110105194912310021")
    assert not id_card_valid("110105194913310028")  # month 13
    assert luhn_valid("4532015112830366") and not luhn_valid("4532015112830367")


def test_anonymize_replaces_each_type_with_placeholders() -> None:
    text = "我叫王小明，手机13812345678，邮箱wxm@example.com，身份证11010519491231002X，卡号4532 0151 1283 0366。"
    out, spans = anonymize(text)
    assert out == "我叫<NAME>，手机<PHONE>，邮箱<EMAIL>，身份证<ID_CARD>，卡号<BANK_CARD>。"
    assert [s.type for s in spans] == ["NAME", "PHONE", "EMAIL", "ID_CARD", "BANK_CARD"]
    assert detect_pii("订单号 202503150001234567，G1234 次列车 08:15 出发，温度 12 度") == []


def test_pii_precision_and_recall_on_labelled_set_meet_floor() -> None:
    report = evaluate_pii()
    assert report["strings"] >= 100 and report["negatives"] >= 30
    assert report["precision"] >= PII_FLOOR_PRECISION, report
    assert report["recall"] >= PII_FLOOR_RECALL, report
    for typ in ("PHONE", "ID_CARD", "EMAIL", "BANK_CARD"):
        assert report["per_type"][typ]["recall"] >= 0.9, (typ, report["per_type"][typ])


def test_pii_labels_file_errors_name_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "pii.jsonl"
    bad.write_text(json.dumps({"text": "abc", "spans": []}) + "\n"
                   + json.dumps({"text": "abc", "spans": [{"start": 1, "end": 9, "type": "PHONE"}]}) + "\n")
    with pytest.raises(DataFileError, match=r"pii.jsonl:2 \[field 'spans\[0\]'\]"):
        load_pii_labels(bad)


def _queries() -> list[dict]:
    qs = []
    for c in range(10):
        for k in range(4):
            qs.append({"id": f"q{c}-{k}", "cluster": f"c{c}", "query": f"主题{c}号的第{k}个问题：{'甲乙丙丁戊己庚辛壬癸'[c] * (k + 3)}"})
    # a train-side near-duplicate of a query from every cluster
    qs += [{"id": f"dup{c}", "cluster": f"x{c}", "query": qs[4 * c]["query"] + "？"} for c in range(10)]
    return qs


def test_split_holds_out_whole_clusters_and_drops_leaking_train_queries() -> None:
    qs = _queries()
    split = split_queries(qs, test_fraction=0.25, seed=3, by="cluster")
    test_clusters = {q["cluster"] for q in split.test}
    assert test_clusters == set(split.test_groups)
    assert not test_clusters & {q["cluster"] for q in split.train}
    assert split.dropped, "near-duplicates of held-out queries must not stay in train"
    report = leakage_report(split.train, split.test)
    assert report["exact_overlaps"] == 0 and report["near_overlaps"] == 0 and report["ok"]
    # and the report does see leakage when it exists
    leaky = leakage_report(split.train + split.dropped, split.test)
    assert leaky["exact_overlaps"] + leaky["near_overlaps"] == len(split.dropped) and not leaky["ok"]


def test_query_split_covers_every_cluster_and_keeps_paraphrases_together() -> None:
    qs = [{"id": f"{c}-{k}", "cluster": c, "query": f"{c} 问题 {k} " + "abcdefghij"[k] * (k + 4),
           "gold_calls": [{"name": c, "args": {"k": k // 2}}]} for c in ("calc", "weather", "fx") for k in range(10)]
    split = split_queries(qs, test_fraction=0.2, seed=0)
    assert {q["cluster"] for q in split.test} == {"calc", "weather", "fx"}
    assert len(split.test) == 6 and not split.dropped
    report = leakage_report(split.train, split.test)
    assert report["shared_gold_call_sets"] == 0 and report["ok"]
    moved = split.test[0]
    assert not leakage_report(split.train + [dict(moved, id="copy", query="完全不同的说法")], split.test)["ok"]


def test_split_templates_validates_names() -> None:
    assert split_templates(["a", "b", "c"], ["c"]) == (["a", "b"], ["c"])
    with pytest.raises(UnknownNameError, match="unknown template 'z'"):
        split_templates(["a", "b"], ["z"])
    with pytest.raises(ValueError):
        split_templates(["a"], ["a"])
