"""Speaking sentence by sentence as the answer streams, and stopping at once when told.

Time is controlled by the test (a gated sink and a fake clock), never by sleeps.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import soundfile

from labeeb.config import TtsConfig
from labeeb.skills import Skill
from labeeb.hookspecs import hookimpl
from labeeb.voice.playback import SoundDeviceSink, WavSink
from labeeb.voice.speaker import SentenceSplitter, Speaker, open_speaker
from labeeb.voice.tts import Pyttsx3Synthesizer
from voice_kit import FakeClock, GatedSink, RecordingSynthesizer, rms


@pytest.fixture(scope="module")
def engine():
    return Pyttsx3Synthesizer()


def split_stream(text, size=3, first_words=0):
    splitter = SentenceSplitter(first_words=first_words)
    out = []
    for i in range(0, len(text), size):  # arbitrary chunk boundaries, as a model streams
        out += splitter.feed(text[i : i + size])
    return out + splitter.flush()


def test_sentences_are_cut_where_a_listener_expects():
    text = "Sure. The screen shows Dr. Smith's notes.\n1. Buy milk\nDone! Is that all? Yes"
    assert split_stream(text) == ["Sure.", "The screen shows Dr. Smith's notes.", "1. Buy milk", "Done!", "Is that all?", "Yes"]
    assert split_stream("Version 3.5 is out. Great") == ["Version 3.5 is out.", "Great"]


def test_the_first_fragment_is_spoken_before_its_sentence_ends():
    long_first = "The screen shows a terminal window with a failing test and an editor next to it. It is red. Fix"
    assert split_stream(long_first, first_words=8) == [
        "The screen shows a terminal window with a", "failing test and an editor next to it.", "It is red.", "Fix"]
    # a comma after three words comes first; a short first sentence is left whole
    assert split_stream("I see a terminal, and an editor. Next.", first_words=8) == ["I see a terminal,", "and an editor.", "Next."]
    assert split_stream("Sure, it failed. Next one.", first_words=8) == ["Sure, it failed.", "Next one."]
    # only the first piece of an answer; every answer gets its own (reset by flush)
    splitter = SentenceSplitter(first_words=3)
    assert splitter.feed("one two three four five six seven ") == ["one two three"]
    assert splitter.feed("eight nine ten eleven") == [] and splitter.flush() == ["four five six seven eight nine ten eleven"]
    assert splitter.feed("again one two three ") == ["again one two"]
    # text with hardly any spaces (a path, code) is cut at about six characters a word
    pieces = split_stream("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf is missing", first_words=4)
    assert len(pieces[0]) <= 24 and "".join(pieces).replace(" ", "") == "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttfismissing"
    assert split_stream(long_first, first_words=0)[0] == "The screen shows a terminal window with a failing test and an editor next to it."


def test_a_very_long_sentence_is_cut_at_a_comma():
    splitter = SentenceSplitter(max_chars=80)
    pieces = splitter.feed("one, two, three, " * 12) + splitter.flush()
    assert len(pieces) > 2 and all(len(p) <= 80 for p in pieces)
    assert " ".join(pieces).split() == ("one, two, three, " * 12).split()


def test_sentences_play_in_order_into_a_wav_file(tmp_path, engine, whisper):
    from labeeb.voice.audio import read_audio

    speaker = Speaker(engine, WavSink(tmp_path / "out.wav"))
    speaker.say("The first sentence is short. The second one mentions a green apple.")
    speaker.close()
    assert speaker.spoken == ["The first sentence is short.", "The second one mentions a green apple."]
    info = soundfile.info(str(tmp_path / "out.wav"))
    assert 3 < info.duration < 10
    text = whisper.transcribe(read_audio(tmp_path / "out.wav")).text.lower()
    assert text.index("first") < text.index("apple")


def test_first_sentence_is_heard_while_the_rest_is_generated(engine, assistant, commands):
    """The skill only writes its second sentence after the first one has started playing."""
    clock = FakeClock(step=1.0)
    sink = GatedSink(gated=False)
    synth = RecordingSynthesizer(engine)
    speaker = Speaker(synth, sink, clock=clock)
    seen: dict[str, object] = {}

    def slow_answer(request):
        yield "The first sentence is here. "
        sink.wait_for(lambda s: len(s.blocks) > 0)  # guard only: returns once audio is out
        seen["second_at"] = clock()
        seen["texts_then"] = list(synth.texts)
        yield "The second sentence follows."

    class Slow:
        @hookimpl
        def register_skills(self, register):
            register(Skill("slow", slow_answer, examples=["tell me slowly"]))

    assistant.host.register(Slow(), name="slow")
    from labeeb.messages import Command

    speaker.begin()
    reply = assistant.handle(Command(text="tell me slowly"), on_chunk=speaker.feed)
    speaker.end(reply.text)
    speaker.close()
    assert reply.skill == "slow" and not reply.error
    assert seen["texts_then"] == ["The first sentence is here."]  # synthesised before the rest existed
    assert speaker.first_audio_at is not None and speaker.first_audio_at < seen["second_at"]
    assert synth.texts == ["The first sentence is here.", "The second sentence follows."]
    assert speaker.spoken == synth.texts


def test_interrupt_stops_within_a_block_and_drops_the_queue(engine):
    sink = GatedSink()
    synth = RecordingSynthesizer(engine)
    speaker = Speaker(synth, sink, block_s=0.05)
    speaker.say("This first sentence is long enough to take a few seconds to say. And this second one never plays.")
    sink.tick(3)
    sink.wait_for(lambda s: len(s.blocks) == 3 and s.waiting == 1)  # playing block 4 now
    assert speaker.speaking
    speaker.interrupt()
    sink.tick(1)  # the block in flight finishes; nothing after it
    assert speaker.wait(timeout=60)
    assert not speaker.speaking
    assert len(sink.blocks) == 4 and sink.aborts == 1
    assert synth.texts == ["This first sentence is long enough to take a few seconds to say."]
    assert speaker.spoken == [] and speaker.interruptions == 1
    # after an interruption the speaker works again
    sink.open()
    speaker.say("Back again.")
    speaker.close()
    assert speaker.spoken == ["Back again."] and sink.closed


def test_end_speaks_the_final_text_when_it_differs_from_the_stream(engine):
    sink = GatedSink(gated=False)
    synth = RecordingSynthesizer(engine)
    speaker = Speaker(synth, sink)
    speaker.begin()
    speaker.end("Not streamed at all.")
    speaker.wait(60)
    speaker.begin()
    speaker.feed("Streamed ")
    speaker.end("Streamed text.")  # a process_reply hook changed it
    speaker.close()
    assert synth.texts == ["Not streamed at all.", "Streamed text."]


def test_no_audio_output_warns_once_and_text_goes_on(engine):
    warnings = []
    speaker = Speaker(engine, SoundDeviceSink(device=9999), warn=warnings.append)
    speaker.say("One. Two. Three.")
    speaker.wait(60)
    speaker.say("Four.")
    speaker.close()
    assert len(warnings) == 1 and "answers are shown as text only" in warnings[0]
    assert not speaker.enabled and speaker.spoken == []


def test_open_speaker_without_an_engine_is_one_warning(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    warnings = []
    assert open_speaker(TtsConfig(engine="espeak-ng"), warn=warnings.append) is None
    assert warnings == ['espeak-ng not found; `sudo apt install espeak-ng` or set tts.engine = "pyttsx3"; answers are shown as text only']


def test_open_speaker_to_a_wav_file(tmp_path):
    speaker = open_speaker(TtsConfig(), to_file=tmp_path / "x.wav")
    assert speaker is not None
    speaker.say("Hello there.")
    speaker.close()
    data, rate = soundfile.read(tmp_path / "x.wav", dtype="float32")
    assert rms(data) > 0.02 and 0.5 < len(data) / rate < 3


def test_unknown_output_device_is_reported_before_speaking():
    warnings = []
    assert open_speaker(TtsConfig(output_device="no such speaker"), warn=warnings.append) is None
    assert len(warnings) == 1 and "no audio output device" in warnings[0]


def test_speaking_from_many_threads_is_serialised(engine):
    sink = GatedSink(gated=False)
    speaker = Speaker(engine, sink)
    threads = [threading.Thread(target=speaker.say, args=(f"Number {i}.",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    speaker.close()
    assert sorted(speaker.spoken) == [f"Number {i}." for i in range(4)]
    assert np.isfinite(sink.audio).all()


def test_chunks_of_an_interrupted_answer_are_not_spoken(engine):
    sink = GatedSink(gated=False)
    synth = RecordingSynthesizer(engine)
    speaker = Speaker(synth, sink)
    speaker.begin()
    speaker.interrupt()  # barge-in while the model is still streaming
    speaker.feed("Late words from the old answer. ")
    speaker.end("Late words from the old answer.")
    speaker.wait(60)
    speaker.begin()
    speaker.feed("A new answer. ")
    speaker.end("A new answer.")
    speaker.close()
    assert synth.texts == ["A new answer."]
