"""Fields named in a sentence, and their values read from a page's text or a model's JSON.

"extract the invoice number, date and total as JSON" names three fields; a page whose text
says "Invoice number: 4711" gives the first. The documents plugin's ``extract`` skill uses
these to answer without a model, and to ask the model for exactly these fields as JSON.
"""

from __future__ import annotations

import json
import re

_FIELD_LIST = re.compile(
    r"\b(?:extract|pull out|get|give me|find|fill in|list)\s+(?:me\s+)?(?:all\s+)?(?:the\s+)?"
    r"(?:fields?|values?)?\s*(?:named|called|of|for)?\s*(?P<list>.*?)"
    r"\s*(?:\b(?:fields?|values?)\b\s*)?"
    r"(?:\b(?:as|in|into|to)\s+(?:a\s+)?json\b.*|\bfrom\b.*|\bon\b.*|\bin\s+(?:this|the)\b.*)?[.?!]*$",
    re.I,
)
_GENERIC = {"", "all", "the", "fields", "field", "values", "data", "everything", "it", "this", "them", "json"}


def field_names(text: str, option: object = None) -> list[str]:
    """The fields a sentence names: "extract the invoice number, date and total as JSON"."""
    if option:
        items = option if isinstance(option, (list, tuple)) else str(option).split(",")
        return [str(item).strip() for item in items if str(item).strip()]
    match = _FIELD_LIST.search(text)
    if not match:
        return []
    names = []
    for item in re.split(r",|;|&|\band\b", match.group("list")):
        item = re.sub(r"^\s*(?:the|a|an|its|their)\s+", "", item.strip(), flags=re.I).strip(" .:'\"")
        if item.lower() not in _GENERIC and not re.match(r"(?:this|that|these|those)\b", item, re.I):
            names.append(item)
    return names


def key_of(name: str) -> str:
    return re.sub(r"\W+", "_", name.strip().lower()).strip("_") or "field"


def fields_from_text(text: str, names: list[str]) -> dict[str, str | None]:
    """Label/value pairs read from text ("Invoice number: 4711"), for the named fields or all."""
    from rapidfuzz import fuzz

    labelled = []
    for row in text.splitlines():
        label, sep, value = row.partition(":")
        if sep and label.strip() and value.strip():
            labelled.append((label.strip(), value.strip()))
    if not names:
        return {key_of(label): value for label, value in labelled}
    def words(text: str) -> str:
        return " ".join(re.findall(r"\w+", text.lower()))

    out: dict[str, str | None] = {}
    for name in names:
        wanted = words(name)
        value = next((v for label, v in labelled if fuzz.ratio(words(label), wanted) >= 85), None)
        if value is None:  # "Total 12.50" with no colon: the label starts the row
            for row in text.splitlines():
                row = " ".join(row.split())
                if row.lower().startswith(wanted + " "):
                    value = row[len(wanted):].strip(" :#-") or None
                    break
        out[key_of(name)] = value
    return out


def fields_format(keys: list[str]) -> dict[str, object]:
    """The ``response_format`` that makes a model answer one JSON object with exactly these
    fields (a string, a number or null each), enforced while it decodes; any object without keys."""
    keys = list(dict.fromkeys(keys))
    if not keys:
        return {"type": "json_object"}
    value = {"type": ["string", "number", "null"]}
    schema = {"type": "object", "properties": {key: value for key in keys}, "required": keys,
              "additionalProperties": False}
    return {"type": "json_schema", "json_schema": {"name": "fields", "schema": schema, "strict": True}}


def json_object(text: str) -> dict[str, object] | None:
    """The first JSON object in a model's answer (models wrap JSON in prose and fences)."""
    start = text.find("{")
    while start >= 0:
        try:
            value, _ = json.JSONDecoder().raw_decode(text[start:])
        except ValueError:
            start = text.find("{", start + 1)
            continue
        return value if isinstance(value, dict) else None
    return None
