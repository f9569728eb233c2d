"""``/v1/audio/speech``: text to speech with the voice plugin's engines, in OpenAI's formats.

The text is spoken piece by piece (whole sentences; the first piece is the first sentence),
and each piece is encoded as soon as it is synthesised, so a streamed answer starts after
the first sentence and only one piece's samples are held at a time.

``speed`` is the engine's own rate where the engine can (espeak-ng speaks 80 to 450 words a
minute); what is left beyond that is applied by the encoder (``atempo``, pitch kept).
"""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING, Any, Callable, Iterator

from labeeb.server.audio_encode import Encoder
from labeeb.server.errors import ApiError

if TYPE_CHECKING:  # pragma: no cover
    from labeeb.server.schemas import SpeechRequest
    from labeeb.voice.tts import Synthesizer

#: OpenAI's voices -> the espeak-ng voice each one gets ("language+variant"). ``alloy``, the
#: voice most clients send, is the configured one (tts.engine, tts.voice). Without the
#: espeak-ng program (Windows, macOS) every OpenAI name is the configured voice.
OPENAI_VOICES: dict[str, str | None] = {
    "alloy": None,
    "ash": "en-us+m3",
    "ballad": "en-gb+m5",
    "coral": "en-us+f2",
    "echo": "en-us+m1",
    "fable": "en-gb-x-rp",
    "onyx": "en-us+m8",
    "nova": "en-us+f3",
    "sage": "en-us+f4",
    "shimmer": "en-us+f5",
    "verse": "en-us+m2",
    "marin": "en-us+f1",
    "cedar": "en-us+m6",
}
#: The words-per-minute range espeak-ng speaks at by itself (it clamps slower rates to 80).
NATIVE_RATES = (80, 450)
#: Pieces after the first gather whole sentences up to this many characters.
PIECE_CHARS = 300


def check(body: SpeechRequest) -> None:
    """Refusals that need no speech engine, before the request waits in the queue."""
    from labeeb.voice.tts import speakable

    if body.instructions and body.instructions.strip():
        raise ApiError(
            400, "instructions (tone, accent, emotion) cannot be honoured: the speech engine (espeak-ng or the "
            "platform's) reads text aloud and has no way to follow style instructions; leave instructions out",
            "unsupported_parameter", "instructions",
        )
    if not speakable(body.input):
        raise ApiError(400, "nothing to say: the input has no words", "invalid_input", "input")


def rates(base_rate: int, speed: float) -> tuple[int, float]:
    """(the engine's words per minute, the tempo the encoder adds) for ``speed``."""
    wanted = base_rate * speed
    native = round(min(max(wanted, NATIVE_RATES[0]), NATIVE_RATES[1]))
    return native, wanted / native


def pieces(text: str) -> list[str]:
    """``text`` as it is read aloud, in pieces: the first sentence alone, then whole
    sentences up to :data:`PIECE_CHARS` characters."""
    from labeeb.voice.speaker import SentenceSplitter
    from labeeb.voice.tts import speakable

    splitter = SentenceSplitter(max_chars=PIECE_CHARS)
    sentences = [speakable(s) for s in splitter.feed(speakable(text)) + splitter.flush()]
    out: list[str] = []
    for sentence in filter(None, sentences):
        if len(out) > 1 and len(out[-1]) + len(sentence) < PIECE_CHARS:
            out[-1] += " " + sentence
        else:
            out.append(sentence)
    return out


def synthesizer(settings: Any, voice: str, rate: int) -> tuple[Synthesizer, bool]:
    """The synthesizer for ``voice`` and whether the voice was the client's own name (not
    OpenAI's); 400 for a voice the engine does not have, 503 when there is no engine."""
    from labeeb.voice import SpeechOutputError
    from labeeb.voice.tts import EspeakSynthesizer, make_synthesizer

    config = settings.tts.model_copy(update={"rate": rate})
    low = voice.strip().lower()
    own = low not in OPENAI_VOICES
    if not own and OPENAI_VOICES[low] and (shutil.which("espeak-ng") or shutil.which("espeak")):
        return EspeakSynthesizer(OPENAI_VOICES[low] or "", rate, config.volume), False
    if own:
        config = config.model_copy(update={"voice": voice.strip()})
    try:
        return make_synthesizer(config), own
    except SpeechOutputError as exc:
        if own and "voice" in str(exc):
            raise _unknown_voice(voice, str(exc)) from None
        raise ApiError(503, f"speech output is not available: {exc}", "speech_unavailable") from None


def _unknown_voice(voice: str, reason: str) -> ApiError:
    reason = reason.removeprefix("tts.voice: ")  # the engine's words are about the setting
    return ApiError(400, f"unknown voice {voice!r}: {reason}; OpenAI's names ({', '.join(OPENAI_VOICES)}) "
                    "always work", "invalid_voice", "voice")


def encoded(settings: Any, body: SpeechRequest, streaming: bool,
            cancelled: Callable[[], bool] = lambda: False) -> Iterator[bytes]:
    """The ``response_format`` file's bytes as they are made (streaming), or in one piece."""
    from labeeb.voice import SpeechOutputError

    rate, tempo = rates(settings.tts.rate, body.speed)
    engine, own_voice = synthesizer(settings, body.voice_name(), rate)
    encoder = Encoder(body.response_format, streaming, tempo)
    try:
        for number, piece in enumerate(pieces(body.input)):
            if cancelled():
                return
            try:
                samples, sample_rate = engine.synthesize(piece)
            except SpeechOutputError as exc:
                if number == 0 and own_voice and "voice" in str(exc):  # espeak-ng names it only now
                    raise _unknown_voice(body.voice_name(), str(exc)) from None
                raise ApiError(500, f"speech synthesis failed: {exc}", "speech_failed") from None
            data = encoder.feed(samples, sample_rate)
            if data:
                yield data
        yield encoder.finish()
    finally:
        encoder.close()
