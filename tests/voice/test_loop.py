"""The listening loop with real speech, real Whisper, real routing and real speech out."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from labeeb.voice.audio import PushedSource, read_audio
from labeeb.voice.loop import VoiceLoop, brief
from labeeb.voice.speaker import Speaker
from labeeb.voice.playback import WavSink
from labeeb.voice.tts import Pyttsx3Synthesizer
from labeeb.voice.vad import EndpointDetector, Utterance
from labeeb.voice.wake import WakeWord
from voice_kit import FakeClock, GatedSink, RecordingSynthesizer, noise, rms, silence


@pytest.fixture(scope="module")
def engine():
    return Pyttsx3Synthesizer()


def utterance(samples, at=100.0):
    return Utterance(samples=samples, ended_at=at)


@pytest.mark.parametrize(
    "spoken, skill",
    [("what is on my screen", "look"), ("describe my screen", "look"), ("read this document", "read"), ("read the document", "read")],
)
def test_spoken_commands_route_to_the_right_skill(assistant, whisper, speech, commands, spoken, skill):
    loop = VoiceLoop(assistant, whisper)
    turn = loop.turn(utterance(speech(spoken)))
    assert (turn.plugin, turn.skill) == ("commands", skill), turn.to_dict()
    assert not turn.error and turn.heard and turn.text
    assert commands.requests[-1].command.source == "voice"


def test_a_turn_speaks_the_streamed_answer_and_times_each_stage(assistant, whisper, speech, commands, engine, tmp_path):
    clock = FakeClock(start=100.0, step=0.5)  # every reading is half a second later
    speaker = Speaker(engine, WavSink(tmp_path / "answer.wav"), clock=clock)
    loop = VoiceLoop(assistant, whisper, speaker, clock=clock)
    turn = loop.complete(loop.turn(utterance(speech("what is on my screen"), at=100.0)))
    speaker.close()
    data = turn.to_dict()
    assert {"transcript", "text", "plugin", "skill", "timings"} <= set(data)
    assert data["text"] == commands.answer.strip() + " " or data["text"].strip() == commands.answer
    t = turn.timings
    assert t.transcribe == 0.5  # one clock reading after the utterance ended
    assert t.route is not None and t.ttft is not None and t.total is not None
    assert t.first_audio is not None and t.first_audio > t.transcribe
    assert speaker.spoken == ["Your screen shows a terminal.", "The cursor blinks at the prompt."]
    answer = read_audio(tmp_path / "answer.wav")
    assert rms(answer) > 0.02 and 3 < len(answer) / 16000 < 12
    heard = whisper.transcribe(answer).text.lower()
    assert "terminal" in heard and "cursor" in heard


@pytest.mark.parametrize("audio", [silence(2.0), noise(2.0, 0.3)], ids=["silence", "noise"])
def test_silence_or_noise_is_not_caught(assistant, whisper, engine, tmp_path, commands, audio):
    speaker = Speaker(engine, WavSink(tmp_path / "nh.wav"))
    loop = VoiceLoop(assistant, whisper, speaker)
    turn = loop.complete(loop.turn(utterance(audio)))
    speaker.close()
    assert not turn.heard and turn.text == "I didn't catch that." and not turn.error
    assert commands.requests == []  # nothing was routed
    assert "catch" in whisper.transcribe(read_audio(tmp_path / "nh.wav")).text.lower()


def test_not_heard_can_be_silent(assistant, whisper, engine):
    sink = GatedSink(gated=False)
    speaker = Speaker(engine, sink)
    loop = VoiceLoop(assistant, whisper, speaker, not_heard="")
    turn = loop.complete(loop.turn(utterance(silence(1.0))))
    assert not turn.heard and turn.text == "" and sink.blocks == []


def test_wake_word_gates_commands_and_opens_a_follow_up_window(assistant, whisper, speech, commands):
    clock = FakeClock()
    loop = VoiceLoop(assistant, whisper, wake=WakeWord("Labeeb", follow_up_s=8, clock=clock))
    ignored = loop.turn(utterance(speech("read this document")))
    assert not ignored.addressed and ignored.text == "" and commands.requests == []
    woken = loop.turn(utterance(speech("Labeeb, what is on my screen?")))
    assert woken.addressed and woken.skill == "look" and "labeeb" not in woken.command.lower()
    follow_up = loop.turn(utterance(speech("read this document")))  # within 8 s: no wake word needed
    assert follow_up.addressed and follow_up.skill == "read"
    clock.advance(9)
    assert not loop.turn(utterance(speech("read this document"))).addressed


def test_only_the_wake_word_gets_a_prompt(assistant, whisper, speech):
    loop = VoiceLoop(assistant, whisper, wake=WakeWord("Labeeb"))
    turn = loop.turn(utterance(speech("Labeeb")))
    assert turn.addressed and turn.command == "" and turn.text == "Yes?"
    assert loop.turn(utterance(speech("what can you do"))).skill == "help"  # the follow-up


def test_a_failing_plugin_is_spoken_briefly_and_the_loop_goes_on(assistant, whisper, speech, engine):
    synth = RecordingSynthesizer(engine)
    speaker = Speaker(synth, GatedSink(gated=False))
    source = PushedSource()
    turns, first_done = [], threading.Event()
    loop = VoiceLoop(assistant, whisper, speaker, on_turn=lambda turn: (turns.append(turn), first_done.set()))
    runner = threading.Thread(target=loop.run, args=(source, EndpointDetector()))
    runner.start()
    source.push(np.concatenate([speech("print the report"), silence(1.0)]))
    assert first_done.wait(120)  # guard: the failed turn was answered before the next command
    source.push(np.concatenate([speech("read this document"), silence(1.0)]))
    source.end()
    runner.join(timeout=120)
    speaker.close()
    assert [t.skill for t in turns] == ["broken", "read"]
    assert turns[0].error and "the printer is on fire" in turns[0].text
    assert synth.texts[0].startswith("Sorry: The commands.broken skill failed")
    assert not turns[1].error and synth.texts[-1] == "The document is a letter about the weather."


def test_a_missing_speech_model_fails_one_turn_not_the_loop(assistant, speech, monkeypatch, tmp_path):
    import huggingface_hub.constants

    from labeeb.config import SttConfig
    from labeeb.voice.stt import Transcriber

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    loop = VoiceLoop(assistant, Transcriber(SttConfig(model="base.en")))
    turn = loop.turn(utterance(speech("help")))
    assert turn.error and "not downloaded" in turn.text
    assert loop.turn(utterance(speech("help"))).error  # and the next turn is answered the same way


def test_barge_in_stops_the_answer_and_the_new_command_is_answered(assistant, whisper, speech, engine, commands):
    """Speech pushed while Labeeb talks stops it within one block; the new command runs."""
    commands.answer = "This answer is long on purpose. It goes on and on. Nobody should hear this part."
    sink = GatedSink()
    synth = RecordingSynthesizer(engine)
    speaker = Speaker(synth, sink)
    source = PushedSource()
    turns = []
    loop = VoiceLoop(assistant, whisper, speaker, on_turn=turns.append)
    runner = threading.Thread(target=loop.run, args=(source, EndpointDetector()))
    runner.start()
    source.push(np.concatenate([speech("what is on my screen"), silence(1.0)]))
    sink.tick(2)
    sink.wait_for(lambda s: len(s.blocks) == 2 and s.waiting == 1)  # the answer is being spoken
    source.push(np.concatenate([speech("read this document"), silence(1.0)]))  # the user talks over it
    sink.wait_for(lambda s: loop.barge_ins == 1)
    sink.open()
    source.end()
    runner.join(timeout=120)
    speaker.close()
    assert not runner.is_alive()
    assert [t.skill for t in turns] == ["look", "read"]
    assert "Nobody should hear this part." not in synth.texts
    assert speaker.interruptions == 1 and sink.aborts >= 1
    assert speaker.spoken == ["The document is a letter about the weather."]


def test_without_barge_in_labeeb_does_not_hear_itself(assistant, whisper, speech, engine, commands):
    sink = GatedSink()
    speaker = Speaker(engine, sink)
    source = PushedSource()
    turns = []
    loop = VoiceLoop(assistant, whisper, speaker, barge_in=False, on_turn=turns.append)

    class Counting(EndpointDetector):
        skipped = 0

        def reset(self):
            super().reset()
            self.skipped += 1

    detector = Counting()
    runner = threading.Thread(target=loop.run, args=(source, detector))
    runner.start()
    source.push(np.concatenate([speech("what is on my screen"), silence(1.0)]))
    sink.tick(2)
    sink.wait_for(lambda s: len(s.blocks) == 2 and s.waiting == 1)
    echo = np.concatenate([speech("read this document"), silence(1.0)])  # e.g. its own voice
    before = detector.skipped
    source.push(echo)
    sink.wait_for(lambda s: detector.skipped - before >= len(echo) // 512)  # all heard while talking
    sink.open()
    source.end()
    runner.join(timeout=120)
    speaker.close()
    assert [t.skill for t in turns] == ["look"] and loop.barge_ins == 0
    assert speaker.interruptions == 0 and len(speaker.spoken) == 2


def test_routes_to_the_real_screen_and_documents_plugins(whisper, speech):
    """With the built-in plugins: the spoken commands reach screen.describe and documents.read."""
    from labeeb.testing import FakeVision, make_assistant

    assistant = make_assistant(vision=FakeVision("x"))
    for spoken, skill in [("what is on my screen", "screen.describe"), ("what's on my screen?", "screen.describe"), ("read this document", "documents.read")]:
        text = whisper.transcribe(speech(spoken)).text
        assert assistant.route(text).skill.qualified_name == skill, text


def test_a_spoken_screen_question_is_answered_on_a_real_x_screen(whisper, speech, xvfb, monkeypatch):
    from labeeb.testing import FakeVision, make_assistant

    monkeypatch.setenv("DISPLAY", xvfb)
    fake = FakeVision("The screen is empty and black.")
    loop = VoiceLoop(make_assistant(vision=fake), whisper)
    turn = loop.turn(utterance(speech("what is on my screen")))
    assert (turn.plugin, turn.skill, turn.error) == ("screen", "describe", False), turn.text
    assert turn.text == "The screen is empty and black."
    assert fake.requests and fake.requests[0].images[0].size == (1024, 768)  # the real screenshot


def push_in_real_time(source, audio, block=0.25):
    """Push ``audio`` as a microphone would deliver it, then end the source."""
    step = int(16000 * block)
    for start in range(0, len(audio), step):
        source.push(audio[start : start + step])
        time.sleep(block)
    source.end()


def listen_in_real_time(loop, audio):
    """Run ``loop`` on a source that delivers ``audio`` as a microphone would, to its end."""
    source = PushedSource()
    feeder = threading.Thread(target=push_in_real_time, args=(source, audio))
    feeder.start()
    loop.run(source, EndpointDetector())
    feeder.join()


def test_the_screen_is_looked_at_while_the_question_is_spoken(whisper, speech, xvfb, monkeypatch):
    """Speech starts: the screen plugin grabs the real (Xvfb) screen and shows it to the loaded
    vision model before the words are known; the question then asks about the same pixels."""
    from labeeb.testing import FakeVision, make_assistant

    monkeypatch.setenv("DISPLAY", xvfb)
    fake = FakeVision("The screen is empty and black.")
    assistant = make_assistant(vision=fake)
    assistant.vision.backend()  # looking ahead never loads a model: this one is loaded
    turns = []
    loop = VoiceLoop(assistant, whisper, on_turn=turns.append)
    listen_in_real_time(loop, np.concatenate([silence(0.5), speech("what is on my screen"), silence(1.0)]))
    assert [(t.plugin, t.skill) for t in turns] == [("screen", "describe")]
    assert len(fake.looks) == 1
    (looked,), arrived_before = fake.looks[0]
    assert not arrived_before  # it looked while the question was still being spoken
    assert looked.size == (1024, 768) and looked.tobytes() == fake.requests[0].images[0].tobytes()


def test_looking_while_listening_can_be_turned_off(whisper, speech, xvfb, monkeypatch):
    from labeeb.config import Settings
    from labeeb.testing import FakeVision, make_assistant

    monkeypatch.setenv("DISPLAY", xvfb)
    fake = FakeVision("fine")
    settings = Settings()
    settings.screen.look_while_listening = False
    assistant = make_assistant(vision=fake, settings=settings)
    assistant.vision.backend()
    turns = []
    listen_in_real_time(VoiceLoop(assistant, whisper, on_turn=turns.append),
                        np.concatenate([speech("what is on my screen"), silence(1.0)]))
    assert [t.skill for t in turns] == ["describe"] and fake.requests and not fake.looks


def _recording_preparations(assistant):
    """Wrap ``assistant.command_coming``: the ``arrived`` event and ``asking`` of each call, in order."""
    calls, original = [], assistant.command_coming

    def record(arrived, asking):
        calls.append((arrived, asking))
        original(arrived, asking)

    assistant.command_coming = record
    return calls


def test_while_idle_the_screen_is_looked_at_before_anything_is_said(whisper, speech, xvfb, monkeypatch):
    """listen.prepare_while_idle: after that much silence the screen plugin looks at the real
    screen, so a question finds all of it seen; speech start stops the idle look and starts the
    usual one; the question is answered as ever."""
    from labeeb.testing import FakeVision, make_assistant

    monkeypatch.setenv("DISPLAY", xvfb)
    fake = FakeVision("The screen is empty and black.")
    assistant = make_assistant(vision=fake)
    assistant.vision.backend()
    calls = _recording_preparations(assistant)
    turns = []
    loop = VoiceLoop(assistant, whisper, on_turn=turns.append, prepare_every=0.6)
    listen_in_real_time(loop, np.concatenate([silence(2.0), speech("what is on my screen"), silence(1.0)]))
    assert [(t.plugin, t.skill) for t in turns] == [("screen", "describe")]
    assert loop.idle_preparations >= 2  # 2 s of silence, one every 0.6 s
    assert len(calls) >= loop.idle_preparations + 1  # and the one at speech start
    assert all(event.is_set() for event, _ in calls)  # each stopped: by the next one, speech, or the end
    # idle preparations first, not asking (one look each); then the one at speech start, asking
    assert [asking for _, asking in calls] == [False] * (len(calls) - 1) + [True]
    idle_looks = [images for images, arrived in fake.looks[:2]]
    assert all(images[0].size == (1024, 768) for images in idle_looks)  # the real screenshot
    assert fake.requests[0].images[0].tobytes() == idle_looks[0][0].tobytes()  # what the question saw


def test_idle_preparation_is_off_by_default(whisper, xvfb, monkeypatch):
    from labeeb.config import Settings
    from labeeb.testing import FakeVision, make_assistant

    assert Settings().listen.prepare_while_idle == 0
    monkeypatch.setenv("DISPLAY", xvfb)
    fake = FakeVision("fine")
    assistant = make_assistant(vision=fake)
    assistant.vision.backend()
    calls = _recording_preparations(assistant)
    loop = VoiceLoop(assistant, whisper)
    listen_in_real_time(loop, silence(1.5))
    assert loop.idle_preparations == 0 and not calls and not fake.looks


def test_brief_error_messages():
    assert brief("The x skill failed: RuntimeError: boom. More detail here.") == "The x skill failed: RuntimeError: boom"
    assert len(brief("word " * 100)) <= 103
