"""End of utterance on real speech: Silero VAD (incremental), silence length, push-to-talk."""

from __future__ import annotations

import numpy as np
import pytest

from labeeb.voice import SAMPLE_RATE
from labeeb.voice.audio import blocks
from labeeb.voice.vad import EndpointDetector, PushToTalk, SileroVad, has_speech

from voice_kit import FakeClock, noise, silence


def feed_all(detector, audio, block=480):
    """Feed in blocks that are not VAD windows, as a microphone would."""
    found = []
    for chunk in blocks(audio, block):
        found += detector.feed(chunk)
    return found


def test_incremental_vad_equals_faster_whispers_whole_file_vad(speech):
    from faster_whisper.vad import get_vad_model

    audio = np.concatenate([silence(0.3), speech("what is on my screen"), silence(0.5)])
    audio = np.pad(audio, (0, 512 - len(audio) % 512))
    whole = get_vad_model()(audio).reshape(-1)
    vad = SileroVad()
    incremental = []
    for chunk in blocks(audio, 700):
        incremental += vad(chunk)
    assert np.allclose(incremental, whole, atol=1e-5)
    assert max(incremental) > 0.9 and min(incremental) < 0.1


def test_two_commands_separated_by_a_pause_are_two_utterances(speech):
    first, second = speech("what is on my screen"), speech("read this document")
    audio = np.concatenate([silence(0.5), first, silence(1.5), second, silence(1.0)])
    started = []
    detector = EndpointDetector(silence_ms=700, on_speech_start=lambda: started.append(True), clock=FakeClock())
    found = feed_all(detector, audio)
    assert len(found) == 2 and len(started) == 2
    for utterance, spoken in zip(found, (first, second)):
        assert utterance.reason == "silence"
        # the utterance holds the speech plus a little padding, not the long silences
        assert len(spoken) / SAMPLE_RATE - 0.3 < utterance.duration < len(spoken) / SAMPLE_RATE + 1.1
    assert detector.flush() is None


def test_silence_length_is_configurable(speech):
    audio = np.concatenate([speech("what is on my screen"), silence(1.2), speech("read this document"), silence(2.5)])
    short = feed_all(EndpointDetector(silence_ms=700), audio)
    long = feed_all(EndpointDetector(silence_ms=2000), audio)
    assert len(short) == 2
    assert len(long) == 1 and long[0].duration > 2.5


def test_speech_without_trailing_silence_ends_with_the_stream(speech):
    detector = EndpointDetector(silence_ms=700)
    assert feed_all(detector, speech("read this document")) == []
    tail = detector.flush()
    assert tail is not None and tail.reason == "end_of_stream" and tail.duration > 0.8


@pytest.mark.parametrize("audio", [silence(3.0), noise(3.0, 0.05), noise(3.0, 0.3, seed=2)], ids=["silence", "quiet-noise", "loud-noise"])
def test_silence_and_noise_are_not_utterances(audio):
    detector = EndpointDetector()
    assert feed_all(detector, audio) == [] and detector.flush() is None
    assert not has_speech(audio)


def test_a_click_shorter_than_min_speech_is_ignored(speech):
    click = speech("what is on my screen")[: int(0.12 * SAMPLE_RATE)]
    audio = np.concatenate([silence(0.5), click, silence(1.5)])
    assert feed_all(EndpointDetector(min_speech_ms=300), audio) == []


def test_long_speech_is_cut_at_max_utterance(speech):
    audio = np.concatenate([speech("what is on my screen and read this document and describe the window")] * 2)
    found = feed_all(EndpointDetector(max_utterance_s=2.0), audio)
    assert found and found[0].reason == "max_length" and found[0].duration <= 2.05


def test_end_time_comes_from_the_clock(speech):
    clock = FakeClock(start=50.0)
    detector = EndpointDetector(clock=clock)
    found = feed_all(detector, np.concatenate([speech("help"), silence(1.0)]))
    assert [u.ended_at for u in found] == [50.0]


def test_reset_forgets_speech_in_progress(speech):
    detector = EndpointDetector()
    feed_all(detector, speech("what is on my screen")[: SAMPLE_RATE // 2])
    assert detector.speaking
    detector.reset()
    assert not detector.speaking and detector.flush() is None


def test_has_speech(speech):
    assert has_speech(speech("read this document"))


def test_push_to_talk_records_between_press_and_release(speech):
    spoken = speech("what is on my screen")
    ptt = PushToTalk(clock=FakeClock(start=7.0))
    started = []
    ptt.on_speech_start = lambda: started.append(True)
    assert feed_all(ptt, silence(0.5)) == []  # not pressed: nothing recorded
    ptt.press()
    assert ptt.speaking and started == [True]
    assert feed_all(ptt, spoken) == []
    ptt.release()
    found = ptt.feed(silence(0.1))
    assert len(found) == 1 and found[0].reason == "push_to_talk" and found[0].ended_at == 7.0
    assert abs(len(found[0].samples) - len(spoken)) < 480
    ptt.toggle()
    feed_all(ptt, spoken)
    assert ptt.flush() is not None
    assert ptt.flush() is None


def test_push_to_talk_cuts_off_at_max_length(speech):
    ptt = PushToTalk(max_utterance_s=0.5)
    ptt.press()
    found = feed_all(ptt, speech("what is on my screen"))
    assert len(found) == 1 and 0.5 <= found[0].duration < 0.6
