"""Voice: speech in (faster-whisper), speech out (pyttsx3), and the listening loop.

Each stage is its own small module, and hardware sits behind small protocols so everything
can run from files and pushed arrays: ``audio`` (sources), ``vad`` (end of utterance),
``stt`` (transcription), ``wake`` (wake word), ``tts`` (synthesis), ``playback`` (sinks),
``speaker`` (sentence-by-sentence, interruptible speech) and ``loop`` (the turns).
Nothing heavy is imported here.
"""

from __future__ import annotations

#: Every audio array inside Labeeb's voice path is mono float32 at this rate (Whisper's).
SAMPLE_RATE = 16_000


class VoiceError(Exception):
    """A voice problem with a message a user can act on."""


class AudioError(VoiceError):
    """Audio cannot be read or recorded (bad file, no microphone)."""


class SpeechModelError(VoiceError):
    """The speech recognition model cannot be loaded."""


class SpeechOutputError(VoiceError):
    """No speech engine or no audio output; answers stay text."""
