"""Configuration: every setting, typed, with its default (documented in the repo's
``config.toml``). Reading the user's file and the environment over these is
:mod:`labeeb.config_sources`'s job.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_MODEL = "HuggingFaceTB/SmolVLM-256M-Instruct"


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key and the fix."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class PreprocessConfig(_Section):
    max_size: int = Field(2048, ge=64, le=8192, description="longest image edge in pixels")
    smart_crop: bool = False
    denoise: bool = False
    color_balance: bool = False
    brighten: bool = False
    brighten_below: float = Field(0.35, gt=0, lt=1, description="mean luminance (0-1)")


class OpenAIBackendConfig(_Section):
    base_url: str = "http://127.0.0.1:8000/v1"
    api_key: str = ""
    model: str = DEFAULT_MODEL
    timeout: float = Field(120.0, gt=0)
    max_retries: int = Field(2, ge=0, le=10)


class AnswerCacheConfig(_Section):
    """Reuse an answer for the same images, prompt, model and generation settings."""

    enabled: bool = True
    ttl: float = Field(300.0, ge=0, description="seconds an answer is reused")
    max_entries: int = Field(256, ge=1, le=100_000)


class VisionConfig(_Section):
    backend: str = "transformers"
    model: str = DEFAULT_MODEL
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    max_new_tokens: int = Field(256, ge=1, le=8192)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    engine: Literal["fast", "plain"] = "fast"
    encoder: Literal["torch", "openvino"] = Field(
        "torch", description="what runs the vision encoder with engine = fast (openvino: faster per tile, more memory)"
    )
    grouped_attention: bool = Field(
        False, description="decode attention with grouped query heads: ~1.3x faster decode steps, bf16 answers may differ"
    )
    decoder: Literal["torch", "llama.cpp"] = Field(
        "torch", description="what runs the text half with engine = fast (llama.cpp: faster decoding, needs "
        "llama-cpp-python; answers close to torch's, not bit for bit)"
    )
    reuse_prefix: bool = Field(
        True, description="reuse the earlier prompt's key/value cache where a prompt starts alike (exact: whole 512-position blocks)"
    )
    preprocess: PreprocessConfig = PreprocessConfig()
    openai: OpenAIBackendConfig = OpenAIBackendConfig()
    cache: AnswerCacheConfig = AnswerCacheConfig()
    # Backends tried in order when ``backend`` cannot answer, e.g. ["openai", "ocr"].
    fallback: list[str] = Field(default_factory=list)
    fallback_retry: float = Field(30.0, gt=0, description="seconds before a failed backend is tried again")

    _split_fallback = field_validator("fallback", mode="before")(_split_commas)


class PluginsConfig(_Section):
    autoload: bool = True
    enabled: list[str] = Field(default_factory=list)
    disabled: list[str] = Field(default_factory=list)
    timeout: float = Field(300.0, gt=0, description="seconds a skill may run")
    hook_timeout: float = Field(10.0, gt=0, description="seconds a registration hook may run")
    # Free-form settings for third-party plugins: ``[plugins.settings.NAME]``.
    settings: dict[str, dict[str, Any]] = Field(default_factory=dict)

    _split = field_validator("enabled", "disabled", mode="before")(_split_commas)


class RouterConfig(_Section):
    threshold: float = Field(80.0, ge=0, le=100, description="lowest score that picks a skill")


class ContextConfig(_Section):
    max_images: int = Field(4, ge=0, le=32)
    max_exchanges: int = Field(6, ge=0, le=100)


_RECT = r"^\s*-?\d+\s*,\s*-?\d+\s*,\s*[1-9]\d*\s*,\s*[1-9]\d*\s*$"


def _rects(value: Any) -> Any:
    """Accept "x,y,w,h" strings or [x, y, w, h] lists; keep them as "x,y,w,h" strings."""
    import re

    if isinstance(value, str):
        value = [part for part in value.split(";") if part.strip()]
    if not isinstance(value, list):
        return value
    out = []
    for item in value:
        if isinstance(item, (list, tuple)):
            item = ",".join(str(v) for v in item)
        if not isinstance(item, str) or not re.match(_RECT, item):
            raise ValueError(f"{item!r} is not a rectangle 'x,y,width,height' (width and height > 0)")
        out.append(",".join(part.strip() for part in item.split(",")))
    return out


class ScreenConfig(_Section):
    """Screen capture (the screen and visual feedback plugins, ``labeeb watch``)."""

    backend: Literal["auto", "mss", "grim", "portal"] = Field(
        "auto", description="how to capture: auto = grim on wlroots Wayland, else the portal on Wayland, else mss",
    )
    monitor: int = Field(0, ge=0, description="0 = every monitor (the whole virtual screen)")
    monitors: list[str] = Field(default_factory=list, description="monitor layout override")
    exclude_regions: list[str] = Field(default_factory=list)
    exclude_windows: list[str] = Field(default_factory=list)
    cursor_area: int = Field(480, ge=64, le=4096, description="side of the square around the pointer")
    watch_interval: float = Field(2.0, gt=0, le=3600)
    change_threshold: int = Field(32, ge=1, le=255, description="per-pixel difference that counts")
    change_min_pixels: int = Field(80, ge=1, description="smaller changes are noise")
    ignore_regions: list[str] = Field(default_factory=list)
    look_while_listening: bool = Field(
        True, description="encode the screen while a command is spoken (or typed in labeeb chat)")
    asked_change: float = Field(
        0.005, ge=0, le=1, description="a screen question is answered about the screen seen while it was asked "
        "when at most this share of it changed since; 0 = always a fresh capture")
    background_look: bool = Field(
        True, description="while waiting for a command (listen, chat; serve with allow_screen), encode what settled on screen")
    background_budget: float = Field(0.25, gt=0, le=64, description="the background look's CPU, in cores averaged over a minute")
    background_interval: float = Field(1.0, ge=0.1, le=60, description="seconds between the background look's glances")
    background_settle: float = Field(2.0, ge=0, le=600, description="seconds a change must stay still before it is encoded")

    _check_rects = field_validator("monitors", "exclude_regions", "ignore_regions", mode="before")(_rects)


class ServerConfig(_Section):
    """``labeeb serve``: the OpenAI-compatible API and the web page. Safe by default."""

    host: str = "127.0.0.1"
    port: int = Field(8765, ge=1, le=65535)
    api_key: str = ""
    max_body_mb: float = Field(20.0, gt=0, description="largest request body in MB")
    max_images: int = Field(8, ge=1, le=64, description="images per request")
    max_image_pixels: int = Field(16_000_000, ge=1, description="width x height per image")
    max_audio_seconds: float = Field(120.0, gt=0)
    queue_size: int = Field(16, ge=1, description="requests waiting for the model")
    max_connections: int = Field(256, ge=1, description="open client connections; more get 503")
    request_timeout: float = Field(
        10.0, gt=0, le=3600, description="seconds to send a request's headers, or to pause while sending its body",
    )
    allow_remote_images: bool = False
    remote_image_hosts: list[str] = Field(default_factory=list)
    allow_screen: bool = False
    cors_origins: list[str] = Field(default_factory=list)
    allowed_hosts: list[str] = Field(
        default_factory=list, description="Host header names served besides localhost, IP addresses and server.host",
    )

    _split = field_validator("remote_image_hosts", "cors_origins", "allowed_hosts", mode="before")(_split_commas)


class DocumentsConfig(_Section):
    max_pages: int = Field(20, ge=1, le=1000, description="pages read per document and request")
    dpi: int = Field(150, ge=36, le=600, description="PDF rendering resolution")
    ocr: bool = True


class VideoConfig(_Section):
    frames: int = Field(8, ge=1, le=64, description="frames sampled from a video")
    frame_size: int = Field(512, ge=64, le=4096, description="longest edge of a frame in pixels")
    detail: Literal["low", "high"] = Field(
        "low", description="low: each frame is one 512 px tile, labelled with its time (as SmolVLM2 reads video); "
        "high: each frame is split into tiles like a picture (several times slower)",
    )


class SttConfig(_Section):
    """Speech in: faster-whisper (``labeeb listen``, the server's transcriptions)."""

    model: str = Field("tiny.en", description="Whisper size name, hub id or local directory")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compute_type: str = Field("auto", description="auto = int8 on CPU, float16 on CUDA")
    language: str = Field("auto", description="a language code, or auto to detect")
    beam_size: int = Field(5, ge=1, le=20)
    cpu_threads: int = Field(0, ge=0, le=256, description="0 = CTranslate2's default")


class TtsConfig(_Section):
    """Speech out: pyttsx3 with the platform engine, or the espeak-ng program."""

    engine: Literal["pyttsx3", "espeak-ng"] = "pyttsx3"
    voice: str = Field("", description="voice id or name; empty = the engine's default")
    rate: int = Field(175, ge=50, le=500, description="words per minute")
    volume: float = Field(1.0, ge=0.0, le=1.0)
    output_device: int | str = Field("", description="sounddevice index or name; empty = default")
    first_fragment_words: int = Field(
        8, ge=0, le=100,
        description="start speaking an answer after this many words (or a comma) instead of its first full stop; 0 = whole sentences",
    )


class ListenConfig(_Section):
    """The listening loop: microphone, end of utterance, wake word, barge-in."""

    input_device: int | str = Field("", description="sounddevice index or name; empty = default")
    mode: Literal["vad", "push_to_talk"] = "vad"
    silence_ms: int = Field(700, ge=100, le=10000, description="silence that ends an utterance")
    min_speech_ms: int = Field(200, ge=0, le=5000, description="shorter sounds are ignored")
    vad_threshold: float = Field(0.5, gt=0.0, lt=1.0)
    max_utterance_s: float = Field(30.0, gt=0, le=600)
    wake_word: str = Field("", description="empty = every utterance is a command")
    follow_up_s: float = Field(8.0, ge=0, le=3600, description="no wake word needed this long after a reply")
    barge_in: bool = True
    prepare_while_idle: float = Field(
        0.0, ge=0, le=3600,
        description="seconds of quiet after which plugins prepare for a command (the screen is encoded); 0 = off")
    speak: bool = True
    not_heard: str = Field("I didn't catch that.", description="said for silence or noise; empty = say nothing")


class HistoryConfig(_Section):
    """The interaction history (``labeeb history``): every turn in SQLite, on this machine."""

    enabled: bool = True
    retention_days: int = Field(90, ge=0, description="turns older than this are deleted; 0 = keep all")
    store_images: bool = Field(False, description="keep attached images, not only their hashes")
    path: str = Field("", description="database file; empty = <user data dir>/history.sqlite3")


class Settings(_Section):
    vision: VisionConfig = VisionConfig()
    plugins: PluginsConfig = PluginsConfig()
    router: RouterConfig = RouterConfig()
    context: ContextConfig = ContextConfig()
    documents: DocumentsConfig = DocumentsConfig()
    video: VideoConfig = VideoConfig()
    screen: ScreenConfig = ScreenConfig()
    server: ServerConfig = ServerConfig()
    stt: SttConfig = SttConfig()
    tts: TtsConfig = TtsConfig()
    listen: ListenConfig = ListenConfig()
    history: HistoryConfig = HistoryConfig()
