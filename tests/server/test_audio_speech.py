"""/v1/audio/speech through the official openai SDK against a real ``labeeb serve``: every
format decoded again with PyAV, heard by Whisper, streamed as it is made, and refused
clearly where it cannot do what is asked."""

from __future__ import annotations

import base64
import json
import sys
import time
import typing
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from audio_kit import decode, decode_pcm, pitch, wav_bytes  # noqa: E402
from server_kit import assert_error  # noqa: E402

pytestmark = pytest.mark.slow

SENTENCE = "Please open the window and read the error message on my screen."
THREE = "The first sentence is here. The second one follows it. And the third one ends the test."
CONTENT_TYPES = {"mp3": "audio/mpeg", "opus": "audio/ogg", "aac": "audio/aac", "flac": "audio/flac",
                 "wav": "audio/wav", "pcm": "audio/pcm"}


def openai_voices() -> list[str]:
    """Every voice name the installed openai SDK offers (its ``Voice`` type's literals)."""
    from openai.types.audio.speech_create_params import Voice

    names: list[str] = []
    for member in typing.get_args(Voice):
        names += [arg for arg in typing.get_args(member) if isinstance(arg, str)]
    return names


def heard(client, audio: bytes, name: str = "speech.wav") -> str:
    return client.audio.transcriptions.create(model="whisper-1", file=(name, audio)).text.lower()


def decoded(response_format: str, data: bytes):
    return decode_pcm(data) if response_format == "pcm" else decode(data)


@pytest.mark.parametrize("response_format", list(CONTENT_TYPES))
def test_each_format_is_what_it_says_and_whisper_hears_it(client, idle, response_format):
    response = client.audio.speech.with_raw_response.create(
        model="tts-1", voice="alloy", input=SENTENCE, response_format=response_format)
    data = response.content
    assert response.headers["content-type"].split(";")[0] == CONTENT_TYPES[response_format]
    assert int(response.headers["content-length"]) == len(data)
    audio = decoded(response_format, data)
    assert audio.rate == (48_000 if response_format == "opus" else 24_000) and audio.channels == 1
    assert 2.0 < audio.seconds < 6.0 and abs(audio.samples).max() > 0.1
    if response_format == "pcm":  # raw samples: Whisper gets them in a WAV
        data = wav_bytes(audio.samples, audio.rate)
    text = heard(client, data, f"speech.{'wav' if response_format == 'pcm' else response_format}")
    assert "window" in text and "screen" in text, text


def test_the_default_format_is_mp3_as_openai(client, idle):
    data = client.audio.speech.create(model="tts-1", voice="alloy", input="Hello world.").read()
    assert decode(data).codec == "mp3float"


@pytest.mark.parametrize("speed", [0.25, 0.5, 2.0, 4.0])
def test_speed_changes_the_length_in_proportion(client, idle, speed):
    def seconds(**extra) -> float:
        return decode(client.audio.speech.create(
            model="tts-1", voice="echo", input=SENTENCE, response_format="flac", **extra).read()).seconds

    normal, changed = seconds(), seconds(speed=speed)
    assert normal / changed == pytest.approx(speed, rel=0.2)


def test_every_openai_voice_is_an_installed_voice_that_whisper_understands(client, idle):
    voices = openai_voices()
    assert {"alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer", "verse"} <= set(voices)
    pitches = {}
    for voice in voices:
        data = client.audio.speech.create(model="tts-1", voice=voice, input=SENTENCE, response_format="wav").read()
        text = heard(client, data)
        assert "window" in text, (voice, text)
        audio = decode(data)
        pitches[voice] = pitch(audio.samples, audio.rate)
    # the documented mapping: female espeak-ng variants for OpenAI's female voices
    for voice in ("coral", "nova", "sage", "shimmer", "marin"):
        assert pitches[voice] > 160, (voice, pitches)
    for voice in ("ash", "ballad", "echo", "fable", "onyx", "verse", "cedar"):
        assert pitches[voice] < 140, (voice, pitches)


def test_an_engine_voice_by_name_or_as_an_object(client, idle, server):
    for voice in ("en-us", {"id": "en-us"}):
        data = client.audio.speech.create(model="tts-1", voice=voice, input=SENTENCE, response_format="wav").read()
        assert "window" in heard(client, data)
    response = httpx.post(server.api + "/audio/speech", timeout=60,
                          json={"model": "tts-1", "voice": "no-such-voice-anywhere", "input": "hello"})
    error = assert_error(response, 400, "invalid_voice", "no-such-voice-anywhere", "alloy")
    assert error["param"] == "voice"


def test_instructions_are_refused_because_espeak_cannot_follow_them(client, idle, server):
    response = httpx.post(server.api + "/audio/speech", timeout=60, json={
        "model": "gpt-4o-mini-tts", "voice": "coral", "input": "hello", "instructions": "Speak in a cheerful tone."})
    error = assert_error(response, 400, "unsupported_parameter", "instructions", "style")
    assert error["param"] == "instructions"
    # an empty instructions field asks nothing
    ok = client.audio.speech.create(model="tts-1", voice="alloy", input="hello", instructions="")
    assert decode(ok.read()).seconds > 0.3


def test_streamed_audio_arrives_in_pieces_as_it_is_made(client, idle):
    chunks, started = [], time.monotonic()
    with client.audio.speech.with_streaming_response.create(
            model="tts-1", voice="nova", input=THREE, response_format="mp3", stream_format="audio") as response:
        assert response.headers["content-type"] == "audio/mpeg"
        assert response.headers.get("transfer-encoding") == "chunked" and "content-length" not in response.headers
        for chunk in response.iter_bytes():
            chunks.append((time.monotonic() - started, chunk))
    assert len(chunks) >= 3, [len(c) for _, c in chunks]  # one piece per sentence at least
    streamed = decode(b"".join(c for _, c in chunks))
    whole = decode(client.audio.speech.create(model="tts-1", voice="nova", input=THREE, response_format="mp3").read())
    assert streamed.seconds == pytest.approx(whole.seconds, abs=0.2)
    text = heard(client, b"".join(c for _, c in chunks), "streamed.mp3")
    assert "first" in text and "third" in text, text


@pytest.mark.parametrize("response_format", ["wav", "flac", "opus", "aac", "pcm"])
def test_every_format_streams(client, idle, response_format):
    with client.audio.speech.with_streaming_response.create(
            model="tts-1", voice="alloy", input=THREE, response_format=response_format, stream_format="audio") as response:
        assert response.headers["content-type"].split(";")[0] == CONTENT_TYPES[response_format]
        data = b"".join(response.iter_bytes())
    audio = decoded(response_format, data)
    assert audio.seconds > 3.0 and abs(audio.samples).max() > 0.1


def test_sse_sends_openai_speech_events(client, idle):
    events = []
    with client.audio.speech.with_streaming_response.create(
            model="tts-1", voice="shimmer", input=THREE, response_format="pcm", stream_format="sse") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[len("data: "):]))
    kinds = [event["type"] for event in events]
    assert kinds[-1] == "speech.audio.done" and set(kinds[:-1]) == {"speech.audio.delta"} and len(kinds) >= 4
    assert events[-1]["usage"] == {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
    pcm = b"".join(base64.b64decode(event["audio"]) for event in events[:-1])
    audio = decode_pcm(pcm)
    assert audio.seconds > 3.0
    assert "third" in heard(client, wav_bytes(audio.samples, audio.rate))


def test_a_streamed_request_with_a_bad_voice_is_a_plain_error_and_the_server_goes_on(client, idle, server):
    response = httpx.post(server.api + "/audio/speech", timeout=60, json={
        "model": "tts-1", "voice": "no-such-voice-anywhere", "input": "hello", "stream_format": "sse"})
    assert_error(response, 400, "invalid_voice")
    response = httpx.post(server.api + "/audio/speech", timeout=60, json={
        "model": "tts-1", "voice": "alloy", "input": "hello", "stream_format": "mp4"})
    assert_error(response, 400, "invalid_request")
    assert decode(client.audio.speech.create(model="tts-1", voice="alloy", input="still here").read()).seconds > 0.3


def test_a_client_that_leaves_a_stream_stops_its_synthesis(client, idle):
    long_text = " ".join(f"This is sentence number {n} of a long answer." for n in range(90))[:4096]
    slow = dict(model="tts-1", voice="alloy", input=long_text, response_format="flac", speed=0.25)
    started = time.monotonic()
    assert decode(client.audio.speech.create(**slow).read()).seconds > 600
    whole = time.monotonic() - started
    with client.audio.speech.with_streaming_response.create(**slow, stream_format="audio") as response:
        next(response.iter_bytes())
    started = time.monotonic()  # the next request waits for the one left behind, unless it stopped
    assert decode(client.audio.speech.create(model="tts-1", voice="alloy", input="next please").read()).seconds > 0.3
    assert time.monotonic() - started < whole / 2
