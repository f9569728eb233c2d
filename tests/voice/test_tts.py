"""Speech out with the real engines: pyttsx3 (espeak-ng here) and the espeak-ng program.

The produced audio is checked for what a listener needs: it is not silent, it lasts as
long as the words need, and Whisper hears the words back.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

from labeeb.config import TtsConfig
from labeeb.voice import SpeechOutputError
from labeeb.voice.audio import read_audio, resample
from labeeb.voice.tts import EspeakSynthesizer, Pyttsx3Synthesizer, make_synthesizer, speakable, synthesize_to_wav
from voice_kit import rms

REPLY = "Your screen shows a terminal window with a green prompt."


def heard_words(whisper, samples, rate):
    return set(whisper.transcribe(resample(samples, rate)).text.lower().replace(",", " ").replace(".", " ").split())


@pytest.mark.parametrize("engine", ["pyttsx3", "espeak-ng"])
def test_reply_speech_is_audible_sane_and_intelligible(whisper, engine):
    samples, rate = make_synthesizer(TtsConfig(engine=engine)).synthesize(REPLY)
    seconds = len(samples) / rate
    assert samples.dtype == np.float32 and rate >= 8000
    assert rms(samples) > 0.02  # not silence
    assert 0.2 * len(REPLY.split()) < seconds < 1.0 * len(REPLY.split())  # 10 words: 2-10 s
    assert {"screen", "terminal", "window"} <= heard_words(whisper, samples, rate)


def test_rate_and_volume_settings_change_the_audio():
    slow, rate = Pyttsx3Synthesizer(rate=100).synthesize(REPLY)
    fast, _ = Pyttsx3Synthesizer(rate=300).synthesize(REPLY)
    quiet, _ = Pyttsx3Synthesizer(volume=0.2).synthesize(REPLY)
    loud, _ = Pyttsx3Synthesizer(volume=1.0).synthesize(REPLY)
    assert len(slow) > 1.8 * len(fast)
    assert rms(quiet) < 0.5 * rms(loud)


def test_settings_are_not_cancelled_before_the_utterance(monkeypatch):
    """espeak queues rate/volume changes while busy; pyttsx3's loop end used to cancel them
    whenever espeak still looked busy, and the answer came out at another rate."""
    from pyttsx3.drivers import _espeak

    cancels = []
    monkeypatch.setattr(_espeak, "IsPlaying", lambda: 1)  # as when the queued settings are pending
    real_cancel = _espeak.Cancel
    monkeypatch.setattr(_espeak, "Cancel", lambda: cancels.append(1) or real_cancel())
    slow, _ = Pyttsx3Synthesizer(rate=100).synthesize(REPLY)
    assert cancels == []
    monkeypatch.undo()
    fast, _ = Pyttsx3Synthesizer(rate=300).synthesize(REPLY)
    assert len(slow) > 1.8 * len(fast)


def test_voice_is_chosen_by_id_or_name():
    assert Pyttsx3Synthesizer(voice="gmw/en-us").voice == "gmw/en-us"
    assert Pyttsx3Synthesizer(voice="English (America)").voice == "gmw/en-us"
    with pytest.raises(SpeechOutputError, match="no voice 'klingon-warrior'"):
        Pyttsx3Synthesizer(voice="klingon-warrior")


def test_fresh_engine_per_utterance_nothing_overwritten_or_truncated(whisper, tmp_path):
    """pyttsx3 pitfalls: a shared engine keeps its save target, and with espeak
    runAndWait() returns before the file is written (long texts came out empty or cut)."""
    synth = Pyttsx3Synthesizer()
    long_text = " ".join(["The quick brown fox jumps over the lazy dog."] * 6)  # ~270 characters
    first, rate = synth.synthesize("First file.")
    long, _ = synth.synthesize(long_text)
    again, _ = synth.synthesize("First file.")
    assert len(again) == pytest.approx(len(first), rel=0.03)  # the same short file, not the long one
    assert len(long) / rate > 12  # the whole long text, not a truncated piece
    assert "lazy" in whisper.transcribe(resample(long[-5 * rate :], rate)).text.lower()


def test_nothing_is_printed_on_stdout(capfd):
    Pyttsx3Synthesizer().synthesize("Quiet please.")
    out, _ = capfd.readouterr()
    assert out == ""  # the espeak driver's "Audio saved to ..." would break --json


def test_synthesize_to_wav(tmp_path, whisper, tts_config):
    path = synthesize_to_wav("**Hello** from [Labeeb](https://example.com).", tmp_path / "a.wav", tts_config)
    info = soundfile.info(str(path))
    assert info.format == "WAV" and info.channels == 1 and info.duration > 0.8
    text = whisper.transcribe(read_audio(path)).text.lower()
    assert "hello" in text and "example" not in text
    with pytest.raises(SpeechOutputError, match="no words"):
        synthesize_to_wav("***", tmp_path / "b.wav", tts_config)


def test_speakable_text():
    assert speakable("## Title\n- **bold** item\n1. `code` here") == "Title bold item code here"
    assert speakable("See https://example.com/x?y=1 now") == "See a link now"
    assert speakable("```python\nprint(1)\n```Done.") == "Done."
    assert speakable("... --- ***") == ""


def test_missing_espeak_program_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(SpeechOutputError, match="espeak-ng not found"):
        EspeakSynthesizer()
