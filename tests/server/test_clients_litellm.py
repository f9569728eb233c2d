"""litellm against a real ``labeeb serve``, pointed at it as its users point it at any
OpenAI-compatible server (``openai/<model>`` with ``api_base``): JSON mode, a strict JSON
schema, a required tool call, the Responses API plain and streamed, seeds, speech that decodes
and transcription with word timestamps and streamed events. The model is a real language model
(SmolLM2-135M-Instruct inside SmolVLM, labeeb.real_lm), so answers are judged."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from server_kit import CITY, WEATHER, LabeebServer

sys.path.insert(0, str(Path(__file__).parent))

from audio_kit import decode, spoken_wav  # noqa: E402

pytestmark = pytest.mark.slow

SPOKEN = "Please open the window and read the error message on my screen."


@pytest.fixture(scope="module")
def litellm(real_lm_server: LabeebServer) -> Any:
    """The litellm module, with its price list read from the package (no network at import)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm

        yield litellm


@pytest.fixture
def lm(litellm, real_lm_server: LabeebServer) -> dict[str, Any]:
    """What every litellm call takes to reach the server's vision model."""
    real_lm_server.wait_idle()
    return {"model": "openai/" + real_lm_server.vision_model, "api_base": real_lm_server.api, "api_key": "x"}


def chat(litellm, lm: dict[str, Any], text: str, **options: Any) -> Any:
    return litellm.completion(messages=[{"role": "user", "content": text}], **lm, **options).choices[0]


def test_json_object_parses(litellm, lm):
    choice = chat(litellm, lm, "Describe Paris as a JSON object with a name and a country.", max_tokens=60,
                  response_format={"type": "json_object"})
    assert choice.finish_reason == "stop"
    assert isinstance(json.loads(choice.message.content), dict)


def test_a_strict_json_schema_validates(litellm, lm):
    choice = chat(litellm, lm, "Tell me about Paris.", max_tokens=60, response_format={
        "type": "json_schema", "json_schema": {"name": "city", "schema": CITY, "strict": True}})
    assert choice.finish_reason == "stop"
    city = json.loads(choice.message.content)
    jsonschema.validate(city, CITY)
    assert city["name"] == "Paris" and city["country"] == "France"


def test_a_required_tool_call_is_well_formed(litellm, lm):
    choice = chat(litellm, lm, "What will the weather be in Paris for the next 3 days?", max_tokens=60,
                  tools=[WEATHER], tool_choice="required", parallel_tool_calls=False)
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls
    assert call.id.startswith("call_") and call.function.name == "get_weather"
    arguments = json.loads(call.function.arguments)
    jsonschema.validate(arguments, WEATHER["function"]["parameters"])
    assert arguments == {"city": "Paris", "days": 3}  # the values the question gave


def test_one_seed_one_answer_two_seeds_two(litellm, lm):
    def story(seed: int) -> str:
        return chat(litellm, lm, "Tell me a story.", max_tokens=16, temperature=1.0, seed=seed).message.content

    first = story(1)
    assert story(1) == first
    assert story(2) != first


def test_responses_plain_and_streamed(litellm, lm):
    # 16: litellm raises a smaller max_output_tokens to OpenAI's minimum, 16
    answer = litellm.responses(input="What is the capital of France?", max_output_tokens=16, **lm)
    assert answer.status == "incomplete" and answer.incomplete_details.reason == "max_output_tokens"
    text = answer.output[0].content[0].text
    assert "Paris" in text and answer.usage.output_tokens == 16
    events = list(litellm.responses(input="What is the capital of France?", max_output_tokens=16, stream=True, **lm))
    kinds = [str(getattr(event.type, "value", event.type)) for event in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    # litellm hands the server's response.incomplete on as its ResponseCompletedEvent
    assert kinds[-1] in ("response.incomplete", "response.completed")
    assert events[-1].response.status == "incomplete" and events[-1].response.usage.output_tokens == 16
    deltas = "".join(event.delta for kind, event in zip(kinds, events) if kind == "response.output_text.delta")
    assert deltas == text  # greedy: the same answer, piece by piece


@pytest.mark.parametrize(("response_format", "codec"), [("mp3", "mp3"), ("opus", "opus")])
def test_speech_decodes(litellm, real_lm_server, response_format, codec):
    spoken = litellm.speech(model="openai/tts-1", voice="alloy", input=SPOKEN, response_format=response_format,
                            api_base=real_lm_server.api, api_key="x")
    decoded = decode(spoken.content)
    assert decoded.codec.startswith(codec) and decoded.channels == 1
    assert 2.0 < decoded.seconds < 10.0 and float(abs(decoded.samples).max()) > 0.05  # speech, not silence


def test_transcription_words_and_streamed_events(litellm, real_lm_server):
    where = {"model": "openai/whisper-1", "api_base": real_lm_server.api, "api_key": "x"}
    wav = spoken_wav(SPOKEN)  # made by espeak-ng, not by the server under test
    result = litellm.transcription(file=("speech.wav", io.BytesIO(wav)), response_format="verbose_json",
                                   timestamp_granularities=["word"], **where)
    words = result["words"]
    assert [w["word"].strip(".").lower() for w in words][:4] == ["please", "open", "the", "window"]
    assert all(0.0 <= w["start"] <= w["end"] for w in words)
    assert all(a["end"] <= b["start"] + 0.01 for a, b in zip(words, words[1:]))
    events = list(litellm.transcription(file=("speech.wav", io.BytesIO(wav)), response_format="json",
                                        stream=True, **where))
    assert [e.type for e in events[:-1]] == ["transcript.text.delta"] * (len(events) - 1) and len(events) > 1
    assert events[-1].type == "transcript.text.done"
    assert events[-1].text == "".join(e.delta for e in events[:-1]).strip() == result["text"]
