"""Speech over the API: real espeak-ng speech transcribed by Whisper tiny.en, and synthesis."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile

pytestmark = pytest.mark.slow

SENTENCE = "The quick brown fox jumps over the lazy dog."


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real speech, made by espeak-ng (not by the server under test)."""
    assert shutil.which("espeak-ng"), "espeak-ng is needed (apt install espeak-ng)"
    path = tmp_path_factory.mktemp("speech") / "fox.wav"
    subprocess.run(["espeak-ng", "-w", str(path), SENTENCE], check=True, timeout=60)
    return path


def webm_opus(wav: Path) -> bytes:
    """The same speech as a browser's MediaRecorder sends it: Opus in WebM."""
    import av

    samples, rate = soundfile.read(str(wav), dtype="float32")
    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="flt", layout="mono")
    frame.sample_rate = rate
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="webm") as out:
        stream = out.add_stream("libopus", rate=48000)
        stream.layout = "mono"
        resampler = av.AudioResampler(format="s16", layout="mono", rate=48000)
        for piece in resampler.resample(frame) + resampler.resample(None):
            for packet in stream.encode(piece):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()


def heard_the_fox(text: str) -> None:
    lowered = text.lower()
    assert "quick" in lowered and "lazy dog" in lowered, text


def test_transcription_of_real_speech(client, speech_wav, idle):
    with speech_wav.open("rb") as fh:
        result = client.audio.transcriptions.create(model="whisper-1", file=fh)
    heard_the_fox(result.text)


def test_transcription_of_a_browser_recording(client, speech_wav, idle):
    result = client.audio.transcriptions.create(model="whisper-1", file=("speech.webm", webm_opus(speech_wav)))
    heard_the_fox(result.text)


def test_transcription_response_formats(client, speech_wav, idle):
    data = speech_wav.read_bytes()
    text = client.audio.transcriptions.create(model="whisper-1", file=("a.wav", data), response_format="text")
    heard_the_fox(text)
    verbose = client.audio.transcriptions.create(
        model="whisper-1", file=("a.wav", data), response_format="verbose_json", language="en",
    )
    heard_the_fox(verbose.text)
    assert verbose.language == "english" and 2.0 < verbose.duration < 5.0  # OpenAI names the language
    assert 0.0 <= verbose.segments[0].start < verbose.segments[-1].end <= verbose.duration
    srt = client.audio.transcriptions.create(model="whisper-1", file=("a.wav", data), response_format="srt")
    assert srt.startswith("1\n00:00:00,000 --> 00:00:0")
    heard_the_fox(srt)
    vtt = client.audio.transcriptions.create(model="whisper-1", file=("a.wav", data), response_format="vtt")
    assert vtt.startswith("WEBVTT\n\n00:00:00.000 --> ")


def test_speech_synthesis_is_a_wav_that_whisper_understands(client, idle):
    response = client.audio.speech.create(model="tts-1", voice="alloy", input="Hello world. This is a test.",
                                          response_format="wav")
    data = response.read()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    samples, rate = soundfile.read(io.BytesIO(data), dtype="float32")
    assert rate >= 8000 and len(samples) / rate > 0.8
    assert np.abs(samples).max() > 0.05, "the speech should not be silent"
    heard = client.audio.transcriptions.create(model="whisper-1", file=("speech.wav", data)).text.lower()
    assert "hello" in heard and "test" in heard, heard


def test_speech_speed_and_flac(client, idle):
    normal = client.audio.speech.create(model="tts-1", voice="alloy", input="One two three four five six.",
                                        response_format="wav").read()
    fast = client.audio.speech.create(
        model="tts-1", voice="alloy", input="One two three four five six.", speed=2.0, response_format="flac",
    ).read()
    assert fast[:4] == b"fLaC"
    normal_samples, normal_rate = soundfile.read(io.BytesIO(normal))
    fast_samples, fast_rate = soundfile.read(io.BytesIO(fast))
    assert len(fast_samples) / fast_rate < 0.8 * len(normal_samples) / normal_rate
