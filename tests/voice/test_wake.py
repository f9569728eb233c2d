"""The wake word: loose matching on transcripts, the follow-up window, real speech."""

from __future__ import annotations

import pytest

from labeeb.voice.wake import WakeWord, skeleton
from voice_kit import FakeClock


@pytest.mark.parametrize(
    "heard, command",
    [
        ("Labeeb, what is on my screen?", "what is on my screen?"),
        ("Hey Labeeb, read this document.", "read this document."),
        ("Labi, read this document.", "read this document."),  # how Whisper tiny spells it
        ("Hey Laby, what can you do?", "what can you do?"),
        ("lobby what is on my screen", "what is on my screen"),
        ("La Beeb, help", "help"),
        ("okay Labib, describe my screen", "describe my screen"),
        ("Labeeb?", ""),
    ],
)
def test_wake_word_spellings_are_recognised_and_removed(heard, command):
    assert WakeWord("Labeeb").match(heard) == command


@pytest.mark.parametrize(
    "heard",
    ["what is on my screen", "Read the label", "The lab results are in", "Hey Lamy, what time is it?", "I told Labeeb nothing", ""],
)
def test_commands_without_the_wake_word_are_ignored(heard):
    assert WakeWord("Labeeb").match(heard) is None


def test_multi_word_wake_word():
    wake = WakeWord("hey computer")
    assert wake.match("Hey computer, open the door") == "open the door"
    assert wake.match("Hey, computer. Open the door") == "Open the door"
    assert wake.match("open the door") is None


def test_no_wake_word_means_everything_is_addressed():
    wake = WakeWord("")
    assert not wake.enabled and wake.match("what is on my screen") == "what is on my screen"


def test_follow_up_window_uses_the_clock():
    clock = FakeClock()
    wake = WakeWord("Labeeb", follow_up_s=8.0, clock=clock)
    assert wake.match("and the button at the bottom?") is None
    wake.answered()
    clock.advance(7.9)
    assert wake.match("and the button at the bottom?") == "and the button at the bottom?"
    clock.advance(0.2)
    assert wake.match("and the button at the bottom?") is None
    assert wake.match("Labeeb, and the button?") == "and the button?"


def test_skeleton():
    assert skeleton("Labeeb") == skeleton("labi") == skeleton("Lobby") == "lb"
    assert skeleton("label") == "lbl" and skeleton("") == ""


@pytest.mark.parametrize(
    "spoken, command_word",
    [("Labeeb, what is on my screen?", "screen"), ("hey Labeeb, read this document", "document"), ("Labeeb, describe my screen", "screen")],
)
def test_real_speech_with_the_wake_word(whisper, speech, spoken, command_word):
    wake = WakeWord("Labeeb")
    transcript = whisper.transcribe(speech(spoken), hotwords="Labeeb")
    command = wake.match(transcript.text)
    assert command is not None, transcript.text
    assert command_word in command.lower() and "labeeb" not in command.lower()


def test_real_speech_without_the_wake_word_is_not_addressed(whisper, speech):
    transcript = whisper.transcribe(speech("read this document"), hotwords="Labeeb")
    assert "document" in transcript.text.lower()
    assert WakeWord("Labeeb").match(transcript.text) is None
