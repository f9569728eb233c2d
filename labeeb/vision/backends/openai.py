"""Vision backend for any OpenAI-compatible server (vLLM, llama.cpp server, Ollama, Labeeb).

Images travel as base64 PNG ``data:`` URLs; answers stream as server-sent events.
``response_format`` and ``tools`` go to the upstream as they came, and its tool calls come back
written as Labeeb's own (labeeb.structured).
Connection failures, 429 and 5xx before the first token are retried with backoff.
"""

from __future__ import annotations

import base64
import io
import json
import time
from typing import TYPE_CHECKING, Any, Iterator

from labeeb.structured import CALL_END, call_prefix
from labeeb.vision.backend import (GenerationStats, ModelUnavailableError, UnsupportedRequestError, VisionError,
                                   VisionRequest)
from labeeb.vision.backends.token_count import TokenCounter
from labeeb.vision.logprobs import TokenLogprob

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image

    from labeeb.config import VisionConfig

RETRY_STATUS = {429, 502, 503, 504}


def image_data_url(image: Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def build_messages(request: VisionRequest) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    for user, assistant in request.history:
        messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    from labeeb.vision.backends.transformers import image_parts

    # The same layout as in process (a video's frames each introduced by its time).
    pictures = iter(request.images)
    content: list[dict[str, Any]] = [
        {"type": "image_url", "image_url": {"url": image_data_url(next(pictures)),
                                            **({"detail": request.detail} if request.detail else {})}}
        if part["type"] == "image" else part
        for part in image_parts(request)
    ]
    content.append({"type": "text", "text": request.prompt})
    messages.append({"role": "user", "content": content})
    return messages


def answer_shape(request: VisionRequest) -> dict[str, Any]:
    """``response_format`` and ``tools`` as the upstream takes them: it enforces them itself."""
    shape: dict[str, Any] = {}
    if request.response_format is not None:
        shape["response_format"] = request.response_format
    tools = request.tools
    if tools is not None:
        shape["tools"] = [{"type": "function", "function": function} for function in tools.functions]
        shape["tool_choice"] = ({"type": "function", "function": {"name": tools.function}}
                                if tools.choice == "function" else tools.choice)
        if tools.choice != "none":
            shape["parallel_tool_calls"] = tools.parallel
    return shape


class CallText:
    """The upstream's streamed ``tool_calls`` written as Labeeb's calls (labeeb.structured), so
    they are read back as the in-process model's are."""

    def __init__(self) -> None:
        self.index: int | None = None
        self.arguments = False

    def feed(self, deltas: list[dict[str, Any]]) -> str:
        out = ""
        for delta in deltas:
            function = delta.get("function") or {}
            if delta.get("index", 0) != self.index:
                out += self.end() + ("\n" if self.index is not None else "")
                self.index, self.arguments = delta.get("index", 0), False
                out += call_prefix(function.get("name") or "")
            if function.get("arguments"):
                out += function["arguments"]
                self.arguments = True
        return out

    def end(self) -> str:
        """What closes the call being written (empty when none is)."""
        if self.index is None:
            return ""
        return ("" if self.arguments else "{}") + "}" + CALL_END


def _error_text(response: Any) -> str:
    try:
        body = response.json()
        return str(body.get("error", {}).get("message") or body)
    except Exception:
        return response.text[:300]


class OpenAIBackend:
    name = "openai"
    concurrent = True

    def __init__(self, config: VisionConfig) -> None:
        self.settings = config.openai
        self.model_id = self.settings.model
        self.base_url = self.settings.base_url.rstrip("/")
        self._client: Any = None
        self.counter = TokenCounter(self.model_id)  # for an upstream that does not count

    def _headers(self) -> dict[str, str]:
        key = self.settings.api_key
        return {"Authorization": f"Bearer {key}"} if key else {}

    def load(self) -> None:
        import httpx

        self._client = httpx.Client(timeout=self.settings.timeout, headers=self._headers())
        try:
            response = self._client.get(f"{self.base_url}/models", timeout=min(10.0, self.settings.timeout))
        except httpx.HTTPError as exc:
            raise ModelUnavailableError(
                f"the OpenAI-compatible server at {self.base_url} is unreachable "
                f"({exc.__class__.__name__}: {exc}). Start it (e.g. `labeeb serve` or "
                "`vllm serve HuggingFaceTB/SmolVLM-256M-Instruct`) or fix vision.openai.base_url."
            ) from None
        if response.status_code in (401, 403):
            raise ModelUnavailableError(
                f"the server at {self.base_url} refused the API key ({response.status_code}); "
                "set vision.openai.api_key (or LABEEB_VISION__OPENAI__API_KEY)."
            )
        if response.status_code == 404:
            raise ModelUnavailableError(
                f"no OpenAI-compatible API at {self.base_url} (GET /models answered 404); "
                "vision.openai.base_url usually ends with /v1, e.g. http://127.0.0.1:8000/v1."
            )

    def _post(self, payload: dict[str, Any]) -> Any:
        import httpx

        delay = 0.5
        for attempt in range(self.settings.max_retries + 1):
            last = attempt == self.settings.max_retries
            try:
                request = self._client.build_request("POST", f"{self.base_url}/chat/completions", json=payload)
                response = self._client.send(request, stream=True)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if last:
                    raise VisionError(f"cannot reach {self.base_url}: {exc}") from None
            except httpx.TimeoutException:
                raise VisionError(
                    f"{self.base_url} did not answer within {self.settings.timeout:g} s "
                    "(vision.openai.timeout)"
                ) from None
            except httpx.TransportError as exc:  # dropped connection: the request can be sent again
                if last:
                    raise VisionError(f"the connection to {self.base_url} failed: {exc.__class__.__name__}: {exc}") from None
            else:
                if response.status_code < 400:
                    return response
                response.read()
                if response.status_code not in RETRY_STATUS or last:
                    raise VisionError(
                        f"{self.base_url} answered {response.status_code}: {_error_text(response)}"
                    )
                retry_after = response.headers.get("retry-after", "")
                if retry_after.replace(".", "", 1).isdigit():
                    delay = max(delay, min(float(retry_after), 30.0))
                response.close()
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    def stream(self, request: VisionRequest, stats: GenerationStats) -> Iterator[str]:
        started = time.perf_counter()
        payload = {
            "model": self.model_id,
            "messages": build_messages(request),
            "max_tokens": request.max_new_tokens,
            "temperature": request.temperature,
            **({"top_p": request.top_p} if request.top_p < 1.0 else {}),
            **({"seed": request.seed} if request.seed is not None else {}),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.stop:
            payload["stop"] = request.stop
        if request.logprobs is not None:  # the upstream's own numbers, passed on as they come
            payload["logprobs"] = True
            if request.logprobs:
                payload["top_logprobs"] = request.logprobs
        payload.update(answer_shape(request))
        stats.preprocess = time.perf_counter() - started
        answer: list[str] = []
        usage_seen = failed = False
        try:
            for event in self._events(self._post(payload), request):
                usage_seen = self._read_usage(event, stats) or usage_seen
                for text in self._read_choices(event, request, stats):
                    answer.append(text)
                    yield text
        except Exception:
            failed = True
            raise
        finally:  # also when the reader stopped early (a stop sequence, a cancel): before the usage came
            if not usage_seen and not failed:
                self.counter.count(request, "".join(answer), stats)

    def _events(self, response: Any, request: VisionRequest) -> Iterator[dict[str, Any]]:
        """The upstream's server-sent events, as JSON, until ``[DONE]`` or a cancel."""
        import httpx

        calls = CallText()
        try:
            for line in response.iter_lines():
                if request.cancel.is_set():
                    break
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                try:
                    event = json.loads(data)
                except ValueError:
                    raise VisionError(f"{self.base_url} sent a malformed event: {data[:200]!r}") from None
                if "error" in event:
                    error = event["error"]
                    raise VisionError(f"{self.base_url}: {error.get('message', error) if isinstance(error, dict) else error}")
                for choice in event.get("choices", []):  # tool calls written as Labeeb's own
                    delta = choice.get("delta") or {}
                    delta["content"] = (delta.get("content") or "") + calls.feed(delta.get("tool_calls") or [])
                yield event
            if calls.end():
                yield {"choices": [{"delta": {"content": calls.end()}}]}
        except httpx.HTTPError as exc:
            raise VisionError(f"the stream from {self.base_url} broke off: {exc}") from None
        finally:
            response.close()

    @staticmethod
    def _read_usage(event: dict[str, Any], stats: GenerationStats) -> bool:
        """Take the upstream's token counts from ``event``; whether it had them."""
        usage = event.get("usage")
        if not usage:
            return False
        stats.prompt_tokens = int(usage.get("prompt_tokens") or 0)
        stats.completion_tokens = int(usage.get("completion_tokens") or 0)
        details = usage.get("prompt_tokens_details") or {}  # what the upstream did not compute again
        stats.cached_tokens = int(details.get("cached_tokens") or 0)
        return True

    def _read_choices(self, event: dict[str, Any], request: VisionRequest, stats: GenerationStats) -> Iterator[str]:
        """The answer's text in ``event``; its finish reason and token log probabilities go to ``stats``."""
        for choice in event.get("choices", []):
            if choice.get("finish_reason"):
                stats.finish_reason = choice["finish_reason"]
            text = (choice.get("delta") or {}).get("content") or ""
            if request.logprobs is not None and text:
                entries = (choice.get("logprobs") or {}).get("content")
                if entries is None:
                    raise UnsupportedRequestError(f"{self.base_url} gave no token log probabilities (logprobs) "
                                                  f"for {self.model_id!r}", "logprobs")
                stats.logprobs.extend(TokenLogprob.from_openai(entry) for entry in entries)
            if text:
                yield text


def factory(config: VisionConfig) -> OpenAIBackend:
    return OpenAIBackend(config)
