"""docs/server.md's compatibility tables cannot go stale: each lists every field of the
official ``openai`` SDK's request type for its endpoint (enumerated as test_server_fields.py
does), says honoured, refused or taken for each, and what it calls refused is what the code
refuses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from labeeb.server.responses import ResponsesRequest
from labeeb.server.schemas import NEUTRAL_ONLY

DOC = Path(__file__).resolve().parents[2] / "docs" / "server.md"
SECTION = "## OpenAI compatibility, field by field"
STATUSES = ("honoured", "refused", "taken")


def tables() -> dict[str, dict[str, str]]:
    """{endpoint heading: {field: its status cell}} from the compatibility section."""
    text = DOC.read_text()
    assert SECTION in text, f"docs/server.md has no {SECTION!r} section"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    found: dict[str, dict[str, str]] = {}
    for block in section.split("\n### ")[1:]:
        heading, _, body = block.partition("\n")
        rows = [line.split("|")[1:3] for line in body.splitlines() if line.startswith("| `")]
        found[heading.strip().strip("`")] = {name: status.strip() for names, status in rows
                                             for name in re.findall(r"`([^`]+)`", names)}
    return found


def sdk_fields() -> dict[str, set[str]]:
    from openai.resources.models import Models
    from openai.types.audio import speech_create_params, transcription_create_params, translation_create_params
    from openai.types.chat import completion_create_params
    from openai.types.responses import response_create_params

    def fields(params: type, *more: str) -> set[str]:
        return set(params.__annotations__) | set(more)

    return {
        "POST /v1/chat/completions": fields(completion_create_params.CompletionCreateParamsBase, "stream"),
        "POST /v1/responses": fields(response_create_params.ResponseCreateParamsBase, "stream"),
        "POST /v1/audio/speech": fields(speech_create_params.SpeechCreateParams),
        "POST /v1/audio/transcriptions": fields(transcription_create_params.TranscriptionCreateParamsBase, "stream"),
        "POST /v1/audio/translations": fields(translation_create_params.TranslationCreateParams),
        "/v1/models": {name for name in vars(Models) if not name.startswith(("_", "with_"))},
    }


def test_there_is_one_table_per_endpoint():
    assert set(tables()) == set(sdk_fields())


@pytest.mark.parametrize("endpoint", sorted(sdk_fields()))
def test_every_sdk_field_is_in_the_table_with_what_labeeb_does(endpoint):
    listed, sdk = tables()[endpoint], sdk_fields()[endpoint]
    assert not sdk - set(listed), f"{endpoint}: fields the SDK sends that the table does not list: {sdk - set(listed)}"
    assert not set(listed) - sdk, f"{endpoint}: fields in the table the SDK does not know: {set(listed) - sdk}"
    for field, status in listed.items():
        assert status.startswith(STATUSES), f"{endpoint} {field}: {status!r} is not one of {STATUSES}"


def refused(endpoint: str) -> set[str]:
    return {field for field, status in tables()[endpoint].items() if status.startswith("refused")}


def test_what_chat_refuses_is_what_the_code_refuses():
    assert refused("POST /v1/chat/completions") == set(NEUTRAL_ONLY) | {"functions", "function_call"}


def test_what_responses_refuses_outright_is_what_its_request_does_not_list():
    always = {field for field, status in tables()["POST /v1/responses"].items() if status == "refused"}
    assert always == sdk_fields()["POST /v1/responses"] - set(ResponsesRequest.model_fields) - {"stream"}
