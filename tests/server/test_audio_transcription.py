"""/v1/audio/transcriptions through the official openai SDK against a real ``labeeb serve``:
Whisper tiny.en on speech made by espeak-ng, with faster-whisper's real segments, words,
temperatures and streaming, and a clear 400 for every field Whisper cannot honour."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from audio_kit import espeak, spoken_wav, wav_bytes  # noqa: E402
from server_kit import assert_error  # noqa: E402

pytestmark = pytest.mark.slow

FIRST = "Please open the window and read the error message on my screen."
SECOND = "What is the weather like in London today?"


@pytest.fixture(scope="module")
def two_sentences() -> bytes:
    """Two sentences with 1.5 s of silence between them (7.2 s in all)."""
    first, rate = espeak(FIRST)
    second, _ = espeak(SECOND)
    return wav_bytes(np.concatenate([first, np.zeros(int(1.5 * rate), np.float32), second]), rate)


@pytest.fixture(scope="module")
def one_sentence() -> bytes:
    return spoken_wav(FIRST)


def transcribe(client, data: bytes, **fields):
    return client.audio.transcriptions.create(model="whisper-1", file=("speech.wav", data), **fields)


def test_verbose_json_has_faster_whispers_real_segments(client, idle, two_sentences):
    result = transcribe(client, two_sentences, response_format="verbose_json")
    assert result.language == "english" and result.duration == pytest.approx(7.19, abs=0.05)
    assert result.usage.type == "duration" and result.usage.seconds == result.duration
    first, second = result.segments
    assert "window" in first.text and "london" in second.text.lower(), result.segments
    assert [first.id, second.id] == [0, 1]
    assert 0.0 <= first.start < first.end < 4.0 < second.start < second.end <= result.duration
    for segment in result.segments:
        assert segment.tokens and all(isinstance(t, int) for t in segment.tokens)
        assert segment.temperature == 0.0 and segment.seek >= 0
        assert -1.0 < segment.avg_logprob < 0.0 and 0.0 < segment.compression_ratio < 2.4
        assert 0.0 <= segment.no_speech_prob < 0.6
    assert result.text == f"{first.text.strip()} {second.text.strip()}"
    assert result.words is None  # segments unless words are asked for


def test_word_timestamps(client, idle, two_sentences):
    result = transcribe(client, two_sentences, response_format="verbose_json", timestamp_granularities=["word"])
    assert result.segments is None
    words = result.words
    assert [w.word.strip(".?").lower() for w in words][:4] == ["please", "open", "the", "window"]
    assert all(w.start <= w.end for w in words)
    assert all(a.end <= b.start + 0.01 for a, b in zip(words, words[1:]))
    london = next(w for w in words if "london" in w.word.lower())
    assert 4.0 < london.start < london.end <= result.duration  # after the pause
    both = transcribe(client, two_sentences, response_format="verbose_json", timestamp_granularities=["word", "segment"])
    assert len(both.segments) == 2 and len(both.words) == len(words)
    assert both.words[-1].end == pytest.approx(both.segments[-1].end, abs=0.05)


def test_srt_and_vtt_have_one_cue_per_segment(client, idle, two_sentences):
    srt = transcribe(client, two_sentences, response_format="srt")
    cues = srt.strip().split("\n\n")
    assert len(cues) == 2 and cues[0].startswith("1\n00:00:0") and cues[1].startswith("2\n00:00:0")
    assert "window" in cues[0] and "London" in cues[1]
    start, end = cues[1].split("\n")[1].split(" --> ")
    assert "00:00:04,000" < start < end <= "00:00:07,190"
    vtt = transcribe(client, two_sentences, response_format="vtt")
    assert vtt.startswith("WEBVTT\n\n00:00:00.") and vtt.count(" --> ") == 2 and "," not in vtt.split("\n")[2]


def test_temperature_is_honoured(client, idle, one_sentence):
    greedy = transcribe(client, one_sentence, response_format="verbose_json")
    warm = transcribe(client, one_sentence, response_format="verbose_json", temperature=0.6)
    assert {s.temperature for s in greedy.segments} == {0.0}
    assert {s.temperature for s in warm.segments} == {0.6}  # what faster-whisper decoded with


def test_prompt_and_keywords_guide_the_spelling(client, idle):
    data = spoken_wav("Ask Labeeb to open the window.")
    assert "labeeb" not in transcribe(client, data).text.lower()
    assert "labeeb" in transcribe(client, data, prompt="Labeeb is an assistant. Ask Labeeb.").text.lower()
    assert "labeeb" in transcribe(client, data, keywords=["Labeeb"]).text.lower()


def test_chunking_strategy_sets_the_voice_activity_detection(client, idle):
    data = spoken_wav(FIRST, silence_before=3.0)

    def start(**fields) -> float:
        result = transcribe(client, data, response_format="verbose_json", **fields)
        assert "window" in result.text, result.text
        return result.segments[0].start

    default, auto = start(), start(chunking_strategy="auto")
    assert auto == default
    # speech starts near 3 s; the chunk Whisper sees starts prefix_padding_ms before it
    wide = start(chunking_strategy={"type": "server_vad", "prefix_padding_ms": 2000, "threshold": 0.5,
                                    "silence_duration_ms": 500})
    narrow = start(chunking_strategy={"type": "server_vad", "prefix_padding_ms": 100})
    assert wide < default - 1.0 and narrow > default


def test_stream_sends_openai_transcript_events(client, idle, two_sentences):
    from openai.types.audio import TranscriptionTextDeltaEvent, TranscriptionTextDoneEvent

    events = list(transcribe(client, two_sentences, stream=True))
    *deltas, done = events
    assert deltas and all(isinstance(e, TranscriptionTextDeltaEvent) for e in deltas)
    assert isinstance(done, TranscriptionTextDoneEvent) and done.type == "transcript.text.done"
    assert "".join(e.delta for e in deltas) == done.text
    assert "window" in done.text and "London" in done.text
    assert len(deltas) == 2  # one per segment, as each is decoded
    texts = list(transcribe(client, two_sentences, stream=True, response_format="text"))
    assert texts[-1].text == done.text


def test_a_stream_of_bad_audio_is_a_plain_error(server, idle):
    response = httpx.post(server.api + "/audio/transcriptions", timeout=60,
                          files={"file": ("a.wav", b"not audio at all" * 20, "audio/wav")},
                          data={"model": "whisper-1", "stream": "true"})
    assert_error(response, 400, "invalid_audio")


def test_languages_on_the_english_only_model(client, idle, one_sentence):
    assert "window" in transcribe(client, one_sentence, language="en").text
    assert "window" in transcribe(client, one_sentence, languages=["fr", "en"]).text
    result = transcribe(client, one_sentence, language="auto", response_format="verbose_json")
    assert result.language == "english"


@pytest.mark.parametrize(("fields", "param", "code", "words"), [
    ({"include[]": "logprobs"}, "include", "unsupported_value", ["log probabilities"]),
    ({"known_speaker_names[]": "agent"}, "known_speaker_names", "unsupported_parameter", ["diarization"]),
    ({"known_speaker_references[]": "data:audio/wav;base64,AAAA"}, "known_speaker_references",
     "unsupported_parameter", ["diarization"]),
    ({"response_format": "diarized_json"}, "response_format", "unsupported_value", ["diarization"]),
    ({"timestamp_granularities[]": "word"}, "timestamp_granularities", "unsupported_value", ["verbose_json"]),
    ({"stream": "true", "response_format": "srt"}, "stream", "unsupported_value", ["json or text"]),
    ({"chunking_strategy": "sometimes"}, "chunking_strategy", "invalid_value", ["auto"]),
    ({"chunking_strategy[type]": "client_vad"}, "chunking_strategy", "invalid_value", ["server_vad"]),
    ({"chunking_strategy[type]": "server_vad", "chunking_strategy[threshold]": "1.5"},
     "chunking_strategy[threshold]", "invalid_request", []),
    ({"language": "klingon"}, "language", "invalid_language", ["'klingon'"]),
    ({"language": "fr"}, "language", "model_not_multilingual", ["English-only", "french", "stt.model"]),
    ({"languages[]": ["fr", "de"]}, "languages", "model_not_multilingual", ["English-only", "stt.model"]),
    ({"temperature": "1.5"}, "temperature", "invalid_request", []),
])
def test_what_whisper_cannot_honour_is_refused_by_name(server, idle, one_sentence, fields, param, code, words):
    response = httpx.post(server.api + "/audio/transcriptions", timeout=60,
                          files={"file": ("speech.wav", one_sentence, "audio/wav")},
                          data={"model": "whisper-1", **fields})
    error = assert_error(response, 400, code, *words)
    assert error["param"] == param


def test_the_sdk_sees_refusals_as_bad_requests_and_the_server_goes_on(client, idle, one_sentence):
    import openai

    with pytest.raises(openai.BadRequestError) as caught:
        transcribe(client, one_sentence, include=["logprobs"])
    assert caught.value.body["param"] == "include"
    with pytest.raises(openai.BadRequestError):
        transcribe(client, one_sentence, known_speaker_names=["agent"], known_speaker_references=["data:,"])
    assert "window" in transcribe(client, one_sentence).text


def test_silence_is_an_empty_transcript(client, idle):
    silence = wav_bytes(np.zeros(32_000, np.float32), 16_000)
    result = transcribe(client, silence, response_format="verbose_json", timestamp_granularities=["word", "segment"])
    assert result.text == "" and result.segments == [] and result.words == []
    assert transcribe(client, silence, response_format="srt") == ""
    assert [e.type for e in transcribe(client, silence, stream=True)] == ["transcript.text.done"]


@pytest.mark.parametrize("endpoint", ["transcriptions", "translations"])
def test_a_form_field_the_api_does_not_define_is_a_400_naming_it(server, idle, one_sentence, endpoint):
    for field in ("temprature", "language" if endpoint == "translations" else "speaker"):
        response = httpx.post(f"{server.api}/audio/{endpoint}", timeout=60,
                              files={"file": ("speech.wav", one_sentence, "audio/wav")},
                              data={"model": "whisper-1", field: "0.2"})
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["param"] == field and field in error["message"], error
    assert httpx.get(server.url + "/health", timeout=10).status_code == 200
