"""One variant (reference or labeeb) of one scenario, in its own process; prints JSON.

Run by ``python -m benchmarks``; each worker is a fresh process so its peak resident memory
belongs to that variant alone.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from typing import Any, Callable

from benchmarks import scenes

QUESTION = "What is on my screen?"
FOLLOW_UP = "Read the error message in the terminal."


class Asker:
    """ask(images, question) -> (ttft, total, token_ids)."""

    def __init__(self, model_dir: str, tokens: int) -> None:
        self.model_dir, self.tokens = model_dir, tokens

    def ask(self, images: list, question: str) -> tuple[float, float, list[int]]:  # pragma: no cover
        raise NotImplementedError

    def forget(self) -> None:
        """Start a run with nothing cached from earlier runs (the reference caches nothing)."""


class Reference(Asker):
    """The straightforward code: default AutoProcessor, bf16 model, generate() per question."""

    def __init__(self, model_dir: str, tokens: int) -> None:
        super().__init__(model_dir, tokens)
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.torch = torch
        self.processor = AutoProcessor.from_pretrained(model_dir)
        self.model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.bfloat16).eval()

    def ask(self, images, question):
        from transformers.generation.streamers import BaseStreamer

        start = time.perf_counter()
        first: list[float] = []

        class FirstToken(BaseStreamer):
            calls = 0

            def put(self, value):  # the first put is the prompt, the second the first new token
                FirstToken.calls += 1
                if FirstToken.calls == 2:
                    first.append(time.perf_counter() - start)

            def end(self):
                pass

        content = [{"type": "image"} for _ in images] + [{"type": "text", "text": question}]
        prompt = self.processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)
        inputs = self.processor(text=prompt, images=[images], return_tensors="pt")
        inputs["pixel_values"] = inputs["pixel_values"].to(self.torch.bfloat16)
        with self.torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=self.tokens, min_new_tokens=self.tokens,
                                      do_sample=False, streamer=FirstToken())
        total = time.perf_counter() - start
        return first[0], total, out[0, inputs["input_ids"].shape[1]:].tolist()


class Labeeb(Asker):
    """Labeeb's own path: the shared vision processor with the transformers backend."""

    def __init__(self, model_dir: str, tokens: int) -> None:
        super().__init__(model_dir, tokens)
        from labeeb.config import VisionConfig
        from labeeb.vision.processor import VisionProcessor
        from labeeb.vision.backends.transformers import TransformersBackend

        # The answer cache stays on (it is part of Labeeb) but no scenario asks the same
        # question about the same picture twice, so it never answers here.
        encoder = os.environ.get("LABEEB_BENCH_ENCODER", "torch")  # python -m benchmarks --encoder
        grouped = os.environ.get("LABEEB_BENCH_GROUPED") == "1"  # --grouped-attention
        decoder = os.environ.get("LABEEB_BENCH_DECODER", "torch")  # --decoder
        config = VisionConfig(model=model_dir, max_new_tokens=tokens, encoder=encoder, grouped_attention=grouped,
                              decoder=decoder)
        self.vision = VisionProcessor(config, {"transformers": TransformersBackend})
        self.backend = self.vision.backend()

    def forget(self) -> None:
        self.vision.forget()  # the engine's caches and the answer cache

    def ask(self, images, question):
        start = time.perf_counter()
        stream = self.vision.stream(question, images, min_new_tokens=self.tokens)
        ttft = None
        for _ in stream:
            if ttft is None:
                ttft = time.perf_counter() - start
        total = time.perf_counter() - start
        return ttft or total, total, list(self.backend.engine.last.generated)


def fresh(asker: Asker, run: int) -> tuple[float, float, list[int], float]:
    """(time to first token, total, token ids, seconds spent decoding)."""
    ttft, total, ids = asker.ask([scenes.screenshot(seed=run)], QUESTION)
    return ttft, total, ids, total - ttft


def follow_up(asker: Asker, run: int):
    screen = scenes.screenshot(seed=run)
    asker.ask([screen], QUESTION)
    ttft, total, ids = asker.ask([screen], FOLLOW_UP)
    return ttft, total, ids, total - ttft


def changed_window(asker: Asker, run: int):
    screen = scenes.screenshot(seed=run)
    asker.ask([screen], QUESTION)
    ttft, total, ids = asker.ask([scenes.with_changed_window(screen, seed=run)], QUESTION)
    return ttft, total, ids, total - ttft


class _Discard:
    """An audio sink that plays nothing: the benchmark only needs when sound would start."""

    def write(self, samples, rate) -> None:
        pass

    def abort(self) -> None:
        pass

    def close(self) -> None:
        pass


class Voice:
    """The speech ends of a voice turn, loaded and warmed before timing (a running assistant
    has them loaded): Labeeb's transcriber and endpoint detector, or plain faster-whisper for
    the reference."""

    def __init__(self, labeeb: bool) -> None:
        from labeeb.config import SttConfig, TtsConfig
        from labeeb.voice.stt import Transcriber, resolve_model
        from labeeb.voice.tts import make_synthesizer
        from labeeb.voice.vad import EndpointDetector

        self.question = scenes.spoken_question()
        self.tts = TtsConfig()
        self.synthesizer = make_synthesizer(self.tts)
        self.detector = EndpointDetector()
        if labeeb:
            transcriber = Transcriber(SttConfig())
            self.transcribe = lambda samples: transcriber.transcribe(samples).text
        else:
            from faster_whisper import WhisperModel  # the straightforward way: default settings

            whisper = WhisperModel(str(resolve_model("tiny.en")))
            self.transcribe = lambda samples: " ".join(s.text.strip() for s in whisper.transcribe(samples)[0])
        self.transcribe(self.question)
        self.synthesizer.synthesize("Warm up.")

    def listen(self, on_speech_start: Callable[[], None]) -> Any:
        """The question as a microphone delivers it (block by block, in real time) through
        Labeeb's endpoint detector, which calls ``on_speech_start``; returns the utterance the
        moment the detector ends it (after its trailing silence)."""
        import numpy as np

        from labeeb.voice.audio import BLOCK, SAMPLE_RATE, blocks

        self.detector.reset()
        self.detector.on_speech_start = on_speech_start
        pause = np.zeros(SAMPLE_RATE // 2, np.float32)
        audio = np.concatenate([pause, self.question, pause, pause, pause, pause])
        started = time.perf_counter()
        for k, block in enumerate(blocks(audio)):
            wait = started + (k + 1) * BLOCK / SAMPLE_RATE - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            for utterance in self.detector.feed(block):
                return utterance
        raise RuntimeError("the endpoint detector never ended the spoken question")


_voice: Voice | None = None
_looked: list[int] = []  # tiles Labeeb encoded while the question was spoken, per run


def voice_turn(asker: Asker, run: int):
    """A spoken screen question, from the end of speech to the first sound of the answer
    (reported as its time to first token; "total" is when the answer's text is complete).

    Reference: transcribe, then generate the whole answer, then synthesise it; it has nothing
    to do while the question is spoken. Labeeb: the question arrives in real time; when its
    endpoint detector hears speech start, the vision model looks at the screen
    (``VisionProcessor.look``, as the screen plugin's ``command_coming`` hook does) until the
    utterance ends. Then its transcriber, and the answer streamed into its speaker, which
    starts on the first fragment. Both are timed from the end of the utterance.

    With ``--idle-look SECONDS`` the screen is on display that long before the question is
    spoken, and Labeeb looks at it meanwhile, as ``listen.prepare_while_idle`` has it do
    (the reference has nothing to do then).
    """
    global _voice
    labeeb = isinstance(asker, Labeeb)
    _voice = _voice or Voice(labeeb)
    screen = scenes.screenshot(seed=run)
    if not labeeb:
        start = time.perf_counter()
        question = _voice.transcribe(_voice.question)
        ttft, total, ids = asker.ask([screen], question)
        answered = time.perf_counter() - start
        _voice.synthesizer.synthesize(asker.processor.tokenizer.decode(ids, skip_special_tokens=True))
        return time.perf_counter() - start, answered, ids, total - ttft
    import threading

    from labeeb.voice.speaker import Speaker

    arrived, idle, looked = threading.Event(), threading.Event(), []

    def look(until: threading.Event) -> None:
        looked.append(asker.vision.look([screen], until))

    looking = os.environ.get("LABEEB_BENCH_LOOK", "1") == "1"  # python -m benchmarks --no-look
    shown = float(os.environ.get("LABEEB_BENCH_IDLE", "0"))  # python -m benchmarks --idle-look
    if shown > 0:
        if looking:
            threading.Thread(target=look, args=(idle,), daemon=True).start()
        time.sleep(shown)

    def speech_started() -> None:
        idle.set()
        if looking:
            threading.Thread(target=look, args=(arrived,), daemon=True).start()

    utterance = _voice.listen(speech_started)
    arrived.set()
    start = time.perf_counter()
    question = _voice.transcribe(utterance.samples)
    speaker = Speaker(_voice.synthesizer, _Discard(), first_words=_voice.tts.first_fragment_words)
    first_token = None
    for chunk in asker.vision.stream(question, [screen], min_new_tokens=asker.tokens):
        first_token = first_token or time.perf_counter()
        speaker.feed(chunk)
    done = time.perf_counter()
    speaker.finish()
    speaker.close()  # waits until the whole answer was synthesised and "played"
    _looked.append(sum(looked))
    return speaker.first_audio_at - start, done - start, list(asker.backend.engine.last.generated), done - first_token


def document(asker: Asker, run: int):
    """Three pages, answered page by page: TTFT of page 1, total for all three."""
    start = time.perf_counter()
    ttft, ids, decoding = None, [], 0.0
    for page in (1, 2, 3):
        first, total, page_ids = asker.ask([scenes.document_page(page, seed=run)], "Summarise this page.")
        ttft = first if ttft is None else ttft
        ids += page_ids
        decoding += total - first
    return ttft, time.perf_counter() - start, ids, decoding / 3


SCENARIOS: dict[str, Callable[[Asker, int], Any]] = {
    "fresh_screenshot": fresh,
    "follow_up": follow_up,
    "changed_window": changed_window,
    "document_3_pages": document,
    "voice_turn": voice_turn,
}


def main() -> None:
    variant, scenario, model_dir, runs, tokens = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    first = int(sys.argv[6]) if len(sys.argv) > 6 else 0  # the first run's number (its pictures' seed)
    started = time.perf_counter()
    if variant == "llama.cpp":  # the peer (benchmarks.llamacpp_peer)
        from benchmarks.llamacpp_peer import LlamaCppPeer

        asker: Any = LlamaCppPeer(model_dir, tokens)
    elif variant == "api":  # Labeeb over its API (benchmarks.api_asker)
        from benchmarks.api_asker import ApiAsker

        asker = ApiAsker(model_dir, tokens)
    else:
        asker = (Reference if variant == "reference" else Labeeb)(model_dir, tokens)
    load = time.perf_counter() - started
    if scenario == "prepare":  # one-time work (the OpenVINO encoder's conversion) done before timing
        print(json.dumps({"variant": variant, "scenario": scenario, "load": load}))
        return
    # One untimed warm-up on other pictures: first-call costs (allocator, kernels) are not the scenario.
    asker.ask([scenes.screenshot(seed=10_000)], "Warm up.")
    rows = []
    for run in range(first, first + runs):
        asker.forget()
        ttft, total, ids, decode = SCENARIOS[scenario](asker, run)
        rows.append({"ttft": ttft, "total": total, "tokens": ids,
                     "decode_tps": (tokens - 1) / decode if decode > 0 and len(ids) % tokens == 0 else None})
        if _looked:
            rows[-1]["looked_tiles"] = _looked.pop()
    if hasattr(asker, "peak_rss_mb"):  # the API's server process
        peak_mb = asker.peak_rss_mb()
        asker.close()
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"variant": variant, "scenario": scenario, "load": load, "runs": rows,
                      "peak_rss_mb": peak_mb}))


if __name__ == "__main__":
    main()
