"""Audio sources: files (any rate, any channels), pushed arrays, resampling, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

from labeeb.voice import SAMPLE_RATE, AudioError
from labeeb.voice.audio import BLOCK, FileSource, PushedSource, Resampler, read_audio, resample, to_mono, write_wav


def tone(seconds: float, rate: int, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100, 48000])
def test_files_at_any_rate_become_16k_mono(tmp_path, rate):
    path = tmp_path / "t.wav"
    soundfile.write(path, tone(1.5, rate), rate)
    samples = read_audio(path)
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert abs(len(samples) - 1.5 * SAMPLE_RATE) <= 2
    # the pitch survives resampling: the spectrum peaks at 440 Hz
    spectrum = np.abs(np.fft.rfft(samples))
    assert abs(np.argmax(spectrum) * SAMPLE_RATE / len(samples) - 440) < 2


def test_stereo_flac_is_mixed_to_mono(tmp_path):
    path = tmp_path / "s.flac"
    left, right = tone(1.0, 44100, 440), tone(1.0, 44100, 440)
    soundfile.write(path, np.stack([left, right], axis=1), 44100, format="FLAC")
    source = FileSource(path)
    assert source.duration == pytest.approx(1.0, abs=0.001)
    assert 0.3 < np.abs(source.samples).max() <= 0.55
    frames = list(source.frames())
    assert all(len(f) == BLOCK for f in frames[:-1])
    assert sum(map(len, frames)) == len(source.samples)


def test_espeak_speech_file(espeak):
    samples = read_audio(espeak("what is on my screen"))
    assert 0.8 < len(samples) / SAMPLE_RATE < 3.0
    assert np.abs(samples).max() > 0.1


@pytest.mark.parametrize(
    "content, message",
    [(b"not audio at all", "cannot read"), (b"", "cannot read"), (b"RIFF\x00\x00\x00\x00WAVEfmt ", "cannot read")],
)
def test_bad_files_give_clear_errors(tmp_path, content, message):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(AudioError, match=message):
        read_audio(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(AudioError, match="not found"):
        read_audio(tmp_path / "nope.wav")
    with pytest.raises(AudioError, match="not found"):
        read_audio(tmp_path)


def test_int_samples_are_scaled():
    assert to_mono(np.array([0, 16384, -32768], np.int16)).tolist() == [0.0, 0.5, -1.0]
    assert to_mono(np.array([128, 255, 0], np.uint8)).tolist() == pytest.approx([0.0, 0.9921875, -1.0])
    with pytest.raises(AudioError, match="1-D"):
        to_mono(np.zeros((2, 2, 2)))


def test_streaming_resampler_matches_whole_file_resampling():
    audio = tone(2.0, 44100, 300)
    whole = resample(audio, 44100)
    convert = Resampler(44100)
    pieces = [convert(audio[i : i + 1000]) for i in range(0, len(audio), 1000)] + [convert(None)]
    streamed = np.concatenate(pieces)
    assert len(streamed) == len(whole)
    assert np.abs(streamed - whole).max() < 1e-4
    with pytest.raises(AudioError):
        Resampler(0)


def test_pushed_source_yields_what_was_pushed_then_ends():
    source = PushedSource()
    source.push(tone(0.5, 16000))
    source.push(tone(0.25, 8000), rate=8000)
    source.end()
    frames = list(source.frames())
    assert sum(map(len, frames)) == pytest.approx(0.75 * SAMPLE_RATE, abs=4)


def test_pushed_source_close_stops_a_waiting_reader():
    import threading

    source = PushedSource(poll=0.01)
    out = []
    reader = threading.Thread(target=lambda: out.extend(source.frames()))
    reader.start()
    source.close()
    reader.join(timeout=10)
    assert not reader.is_alive() and out == []


def test_write_wav_roundtrip(tmp_path):
    path = write_wav(tmp_path / "x.wav", tone(0.5, 16000))
    data, rate = soundfile.read(path)
    assert rate == 16000 and len(data) == 8000
