"""The speech encoder on real espeak-ng speech, each output decoded again with PyAV."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from audio_kit import decode, decode_pcm, espeak  # noqa: E402

from labeeb.server.audio_encode import FORMATS, RATE, Encoder, tempo_steps  # noqa: E402

SENTENCE = "Please open the window and read the error message on my screen."
#: response_format -> (the decoder FFmpeg picks, the container it finds)
EXPECTED = {"mp3": ("mp3float", "mp3"), "opus": ("opus", "ogg"), "aac": ("aac", "aac"),
            "flac": ("flac", "flac"), "wav": ("pcm_s16le", "wav")}


@pytest.fixture(scope="module")
def speech() -> tuple[np.ndarray, int]:
    return espeak(SENTENCE)


def encode(response_format: str, streaming: bool, samples: np.ndarray, rate: int, tempo: float = 1.0,
           pieces: int = 3) -> tuple[bytes, list[bytes]]:
    encoder = Encoder(response_format, streaming, tempo)
    parts = [encoder.feed(piece, rate) for piece in np.array_split(samples, pieces)]
    parts.append(encoder.finish())
    return b"".join(parts), parts


@pytest.mark.parametrize("response_format", sorted(FORMATS))
@pytest.mark.parametrize("streaming", [False, True], ids=["whole", "streamed"])
def test_each_format_decodes_to_the_same_24khz_mono_speech(speech, response_format, streaming):
    samples, rate = speech
    data, parts = encode(response_format, streaming, samples, rate)
    if response_format == "pcm":
        decoded = decode_pcm(data)
    else:
        decoded = decode(data)
        assert (decoded.codec, decoded.container) == EXPECTED[response_format]
    # Opus always decodes at 48 kHz; what was encoded is 24 kHz
    assert decoded.rate == (48_000 if response_format == "opus" else RATE) and decoded.channels == 1
    # mp3 and aac add the codec's priming samples when nothing says to trim them
    assert abs(decoded.seconds - len(samples) / rate) < 0.1, decoded.seconds
    assert np.abs(decoded.samples).max() > 0.1, "speech, not silence"
    if streaming:  # bytes come out while the speech goes in, not only at the end
        assert sum(1 for part in parts[:-1] if part) >= 1
    else:
        assert not any(parts[:-1])


def test_whole_wav_has_the_plain_44_byte_header_and_a_streamed_one_says_unknown_length(speech):
    samples, rate = speech
    whole, _ = encode("wav", False, samples, rate)
    assert whole[:4] == b"RIFF" and whole[36:40] == b"data"
    assert int.from_bytes(whole[40:44], "little") == len(whole) - 44
    assert abs((len(whole) - 44) / 2 - len(samples) * RATE / rate) <= 2  # resampled to 24 kHz
    streamed, _ = encode("wav", True, samples, rate)
    assert streamed[4:8] == b"\xff\xff\xff\xff" and streamed[40:44] == b"\xff\xff\xff\xff"
    assert streamed[44:] == whole[44:]


def test_pcm_is_raw_little_endian_16_bit(speech):
    samples, rate = speech
    data, _ = encode("pcm", False, samples, rate)
    wav, _ = encode("wav", False, samples, rate)
    assert data == wav[44:]


@pytest.mark.parametrize("tempo", [0.25, 0.5, 1.6, 4.0])
def test_tempo_changes_the_length_and_keeps_the_pitch(speech, tempo):
    from audio_kit import pitch

    samples, rate = speech
    data, _ = encode("flac", True, samples, rate, tempo)
    decoded = decode(data)
    assert decoded.seconds == pytest.approx(len(samples) / rate / tempo, rel=0.03)
    assert pitch(decoded.samples, decoded.rate) == pytest.approx(pitch(samples, rate), rel=0.1)


def test_tempo_steps_stay_in_atempo_range():
    assert tempo_steps(1.0) == []
    assert tempo_steps(0.25) == [0.5, 0.5]
    assert np.prod(tempo_steps(0.3)) == pytest.approx(0.3) and all(0.5 <= s <= 100 for s in tempo_steps(0.3))
    assert tempo_steps(3.5) == [3.5]


def test_an_encoder_given_up_halfway_closes_cleanly(speech):
    samples, rate = speech
    encoder = Encoder("mp3", True)
    encoder.feed(samples[: rate // 2], rate)
    encoder.close()
    encoder.close()
