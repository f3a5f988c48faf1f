"""PII detection and anonymisation: phone numbers (CN + international), 18-digit ID cards (checksum), e-mail,
bank cards (Luhn) and names introduced by a clear cue ("我叫X", "姓名：X", "Mr. X", "my name is X").

Each detector returns spans; :func:`anonymize` replaces them with ``<TYPE>`` placeholders; :func:`evaluate_pii`
measures precision and recall on a labelled file (``data/pii/labelled.jsonl``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from labkit.jsonl import iter_jsonl, require
from labkit.errors import DataFileError
from labkit.paths import data_dir

PII_TYPES = ("PHONE", "ID_CARD", "EMAIL", "BANK_CARD", "NAME")
_NB = r"(?<![0-9A-Za-z])"  # no digit/letter before
_NA = r"(?![0-9A-Za-z])"  # no digit/letter after

EMAIL_RE = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
ID_CARD_RE = re.compile(_NB + r"[1-9]\d{5}(?:19|20)\d{2}\d{2}\d{2}\d{3}[0-9Xx]" + _NA)
BANK_CARD_RE = re.compile(_NB + r"\d{4}(?:[ -]?\d{4}){2,3}(?:[ -]?\d{1,3})?" + _NA)
CN_MOBILE_RE = re.compile(r"(?<![0-9A-Za-z+])(?:(?:\+|00)86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}" + _NA)
CN_LANDLINE_RE = re.compile(_NB + r"0\d{2,3}-\d{7,8}" + _NA)
INTL_PHONE_RE = re.compile(r"(?<![0-9A-Za-z])(?:\+|00)[1-9]\d{0,2}(?:[ -]?\(?\d{1,4}\)?)(?:[ -]?\d{2,4}){2,4}" + _NA)

_SURNAMES_2 = "欧阳 司马 诸葛 上官 东方 皇甫 慕容 令狐 夏侯 公孙".split()
_SURNAMES_1 = set(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔"
    "钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢"
    "安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游"
    "辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应"
    "臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝"
)
# characters that end a name rather than continue it ("我叫张伟的朋友", "我叫李娜今天…")
_NAME_STOP = set("的是在了今昨想要和与跟我你他她它们来去住电手邮身今年岁，。、,.!！?？；;：: ")
_ZH_CUE_RE = re.compile(r"(?:我叫|我的名字是|我的名字叫|本人叫|姓名[:：]\s*|联系人[:：]\s*|收件人[:：]\s*|持卡人[:：]\s*)")
_EN_NAME_RE = re.compile(
    r"(?:\b(?:Mr|Mrs|Ms|Miss|Dr|Prof)\.?\s+|\b[Mm]y name is\s+|\bI am called\s+|\bName:\s*)"
    r"(?P<name>[A-Z][a-z]+(?:[ -][A-Z][a-z]+){0,2})"
)

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


class SpanRecord(TypedDict):
    """A span as the labelled file holds it."""

    start: int
    end: int
    type: str                    # one of PII_TYPES


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    type: str

    def to_dict(self) -> SpanRecord:
        return {"start": self.start, "end": self.end, "type": self.type}


class Scores(TypedDict):
    """Span-level precision and recall with their counts."""

    precision: float
    recall: float
    tp: int
    fp: int
    fn: int


class PIIError(TypedDict):
    text: str
    kind: str                    # "false_positive" | "missed"
    span: str                    # the span's text
    type: str


class PIIReport(Scores):
    """:func:`evaluate_pii`'s answer: the overall scores, then ``strings``, ``negatives`` (strings without PII),
    the scores per PII type and every error."""

    strings: int
    negatives: int
    per_type: dict[str, Scores]
    errors: list[PIIError]


def id_card_valid(s: str) -> bool:
    """GB 11643 checksum plus a real birth date."""
    if len(s) != 18 or not s[:17].isdigit():
        return False
    try:
        dt.date(int(s[6:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        return False
    total = sum(int(c) * w for c, w in zip(s[:17], _ID_WEIGHTS))
    return _ID_CHECK[total % 11] == s[17].upper()


def luhn_valid(digits: str) -> bool:
    if not digits.isdigit() or not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _zh_names(text: str) -> list[Span]:
    spans = []
    for cue in _ZH_CUE_RE.finditer(text):
        i = cue.end()
        sur = next((s for s in _SURNAMES_2 if text.startswith(s, i)), None)
        if sur is None and i < len(text) and text[i] in _SURNAMES_1:
            sur = text[i]
        if sur is None:
            continue
        j = i + len(sur)
        given = 0
        while j < len(text) and given < 2 and "\u4e00" <= text[j] <= "\u9fff" and text[j] not in _NAME_STOP:
            j += 1
            given += 1
        if given:
            spans.append(Span(i, j, "NAME"))
    return spans


def detect_pii(text: str) -> list[Span]:
    """All PII spans in ``text``, non-overlapping, in order. Earlier detectors win overlaps."""
    found: list[Span] = []

    def add(start: int, end: int, typ: str) -> None:
        if all(end <= s.start or start >= s.end for s in found):
            found.append(Span(start, end, typ))

    for m in EMAIL_RE.finditer(text):
        add(m.start(), m.end(), "EMAIL")
    for m in ID_CARD_RE.finditer(text):
        if id_card_valid(m.group()):
            add(m.start(), m.end(), "ID_CARD")
    for m in BANK_CARD_RE.finditer(text):
        if luhn_valid(re.sub(r"[ -]", "", m.group())):
            add(m.start(), m.end(), "BANK_CARD")
    for rx in (CN_MOBILE_RE, INTL_PHONE_RE, CN_LANDLINE_RE):
        for m in rx.finditer(text):
            if len(re.sub(r"\D", "", m.group())) >= 8:
                add(m.start(), m.end(), "PHONE")
    for s in _zh_names(text):
        add(s.start, s.end, s.type)
    for m in _EN_NAME_RE.finditer(text):
        add(m.start("name"), m.end("name"), "NAME")
    return sorted(found, key=lambda s: s.start)


def anonymize(text: str) -> tuple[str, list[Span]]:
    """Replace every detected span with ``<TYPE>``; returns the new text and the spans (offsets in the input)."""
    spans = detect_pii(text)
    out, pos = [], 0
    for s in spans:
        out.append(text[pos : s.start])
        out.append(f"<{s.type}>")
        pos = s.end
    out.append(text[pos:])
    return "".join(out), spans


def load_pii_labels(path: str | Path | None = None) -> list[tuple[str, list[Span]]]:
    """Read ``{"text", "spans":[{"start","end","type"}]}`` lines; spans are checked against the text."""
    path = Path(path) if path else data_dir() / "pii" / "labelled.jsonl"
    items = []
    for line, rec in iter_jsonl(path):
        text = require(rec, "text", str, path=path, line=line)
        spans = []
        for k, sp in enumerate(require(rec, "spans", list, path=path, line=line)):
            field = f"spans[{k}]"
            if not isinstance(sp, dict) or sp.get("type") not in PII_TYPES:
                raise DataFileError(path, f"span needs a type in {PII_TYPES}", line=line, field=field)
            start, end = sp.get("start"), sp.get("end")
            if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text)):
                raise DataFileError(path, f"bad offsets {start}..{end} for text of length {len(text)}",
                                    line=line, field=field)
            spans.append(Span(start, end, sp["type"]))
        items.append((text, spans))
    return items


def evaluate_pii(path: str | Path | None = None) -> PIIReport:
    """Span-level precision / recall (exact start, end and type) of :func:`detect_pii` on a labelled file."""
    tp, fp, fn = Counter(), Counter(), Counter()
    errors: list[PIIError] = []
    items = load_pii_labels(path)
    for text, gold in items:
        pred = set(detect_pii(text))
        gold_set = set(gold)
        for s in pred & gold_set:
            tp[s.type] += 1
        for s in pred - gold_set:
            fp[s.type] += 1
            errors.append({"text": text, "kind": "false_positive", "span": text[s.start:s.end], "type": s.type})
        for s in gold_set - pred:
            fn[s.type] += 1
            errors.append({"text": text, "kind": "missed", "span": text[s.start:s.end], "type": s.type})

    def pr(t: int, p: int, n: int) -> Scores:
        return {"precision": t / (t + p) if t + p else 1.0, "recall": t / (t + n) if t + n else 1.0,
                "tp": t, "fp": p, "fn": n}

    return {**pr(sum(tp.values()), sum(fp.values()), sum(fn.values())), "strings": len(items),
            "negatives": sum(1 for _, g in items if not g), "per_type": {t: pr(tp[t], fp[t], fn[t]) for t in PII_TYPES},
            "errors": errors}
