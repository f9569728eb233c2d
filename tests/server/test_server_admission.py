"""What a request may hold before and while it waits for the model (issue 15, items 2, 5, 6, 8).

- a prompt past the model's context is refused before it can wait (400 in well under 2 s,
  even while the model is busy);
- a waiting client that leaves gives up its queue place at once;
- images stay compressed while requests wait: ten concurrent requests of large images keep
  the server's peak memory bounded;
- user mistakes and odd values are 4xx or answered, never 500; /health names no local path
  to callers without the key.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from server_kit import KEY, LabeebServer, assert_error, data_url, image_bytes, png_url, user_message

pytestmark = pytest.mark.slow


def chat(server: LabeebServer, body: dict, timeout: float = 120) -> httpx.Response:
    return httpx.post(server.api + "/chat/completions", json=body, timeout=timeout)


def peak_rss_mb(server: LabeebServer) -> float:
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


LONG = "word " * 30_000  # ~30,000 tokens, 150 KB: within the body limit, far past the context


@pytest.mark.parametrize("model", ["vision", "labeeb"])
def test_a_prompt_past_the_context_is_refused_at_once_while_the_model_is_busy(idle, model):
    server = idle
    name = server.vision_model if model == "vision" else "labeeb"
    with server.busy():
        started = time.monotonic()
        response = chat(server, {"model": name, "messages": [{"role": "user", "content": LONG}]})
        elapsed = time.monotonic() - started
        error = assert_error(response, 400, "context_length_exceeded", "8,192 tokens")
        assert error["param"] == "messages"
        assert elapsed < 2.0, f"took {elapsed:.2f} s"
        assert server.health()["queue"]["waiting"] == 0  # it never took a place


def test_max_tokens_past_what_the_context_leaves_is_refused_naming_it(idle):
    body = {"model": idle.vision_model, "max_tokens": 8192, "messages": [user_message("What is it?", png_url())]}
    error = assert_error(chat(idle, body), 400, "context_length_exceeded", "for the answer")
    assert error["param"] == "max_tokens"
    body["max_tokens"] = 2
    assert chat(idle, body).status_code == 200


def test_a_waiting_client_that_leaves_frees_its_place_at_once(idle):
    server = idle
    body = {"model": server.vision_model, "max_tokens": 1, "messages": [user_message("What is it?", png_url())]}
    answers: list[int] = []
    with server.busy():  # the model is generating; the queue has one place (queue_size = 1)
        def leaver() -> None:
            try:
                chat(server, body, timeout=3)
            except httpx.TimeoutException:
                pass  # the client gives up and closes its connection

        gone = threading.Thread(target=leaver)
        gone.start()
        server.wait_for(lambda h: h["queue"]["waiting"] == 1, timeout=10, what="the first client waiting")
        gone.join()
        # Its place is free within a second, while the long answer still runs.
        server.wait_for(lambda h: h["queue"]["waiting"] == 0, timeout=2, what="the departed client's place freed")
        assert server.health()["queue"]["running"] == 1
        staying = threading.Thread(target=lambda: answers.append(chat(server, body).status_code))
        staying.start()
        server.wait_for(lambda h: h["queue"]["waiting"] == 1, timeout=10, what="the next client admitted")
    staying.join(timeout=120)
    assert answers == [200]


def test_temperatures_that_underflow_are_answered(idle):
    for temperature in (1e-300, 5e-324, 1e-10):
        body = {"model": idle.vision_model, "max_tokens": 2, "temperature": temperature,
                "messages": [user_message("What is it?", png_url())]}
        response = chat(idle, body)
        assert response.status_code == 200, response.text


def test_reading_a_page_with_nothing_attached_is_the_users_mistake_not_a_server_error(idle):
    response = chat(idle, {"model": "labeeb", "messages": [{"role": "user", "content": "read this page"}]})
    assert_error(response, 400, "invalid_request", "Attach a document or image")
    assert chat(idle, {"model": idle.vision_model, "max_tokens": 2,
                       "messages": [user_message("What is it?", png_url())]}).status_code == 200


def test_health_names_the_model_path_only_to_callers_with_the_key(secure):
    public = httpx.get(secure.url + "/health", timeout=10).json()
    assert public["status"] and "model" not in public and "models" not in public
    assert str(secure.model_dir) not in str(public)
    private = httpx.get(secure.url + "/health", headers={"Authorization": f"Bearer {KEY}"}, timeout=10).json()
    assert private["model"] == str(secure.model_dir)


# -- memory under concurrent large images (default limits) -------------------------------------

DEFAULTS_CONFIG = """
[vision.cache]
enabled = false
"""


@pytest.fixture(scope="module")
def roomy(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """A server with the default server limits: 8 images of 16,000,000 pixels, 16 waiting."""
    with LabeebServer(tmp_path_factory.mktemp("roomy"), tiny_model_dir, config=DEFAULTS_CONFIG).running() as srv:
        yield srv


def big_pngs(count: int, seed: int) -> list[str]:
    return [data_url(image_bytes((4000, 3999), color=(seed * 20 % 255, 30 + i * 20, 90))) for i in range(count)]


def test_ten_concurrent_requests_of_large_images_keep_memory_bounded(roomy):
    """80 (then 70) images of 4000x3999 sent at once: 3.8 GB if decoded while waiting."""
    baseline = peak_rss_mb(roomy)

    def ask(seed: int, count: int) -> httpx.Response:
        body = {"model": roomy.vision_model, "max_tokens": 1,
                "messages": [user_message("What is it?", *big_pngs(count, seed))]}
        return chat(roomy, body, timeout=600)

    with ThreadPoolExecutor(10) as pool:
        # Eight such images are 8 x 1,088 image tokens: past the 8,192-token context, refused
        # from their headers alone.
        eights = list(pool.map(lambda seed: ask(seed, 8), range(10)))
        for response in eights:
            assert_error(response, 400, "context_length_exceeded")
        sevens = list(pool.map(lambda seed: ask(seed, 7), range(10, 20)))
    assert [r.status_code for r in sevens] == [200] * 10, [r.text[:200] for r in sevens if r.status_code != 200]
    peak = peak_rss_mb(roomy)
    # One request's 7 decoded images (7 x 48 MB) are held at a time, never all 70 (3.4 GB);
    # the engine keeps the pixels of the last two pictures for follow-ups. docs/reliability.md
    # states the cap: 3 GiB. (Measured: 2,050 MB peak, 514 MB before the requests.)
    assert peak < 3072, f"peak {peak:.0f} MB, {baseline:.0f} MB before"
    started = time.monotonic()
    assert httpx.get(roomy.url + "/health", timeout=5).status_code == 200
    assert time.monotonic() - started < 1.0


def test_a_screen_worded_question_about_an_attached_image_is_answered_not_refused(idle):
    """Issue 16: the question comes with a picture, so it is about the picture; the server's
    screen stays off limits (server.allow_screen is off here)."""
    body = {"model": "labeeb", "max_tokens": 2,
            "messages": [user_message("What does the error message say?", png_url())]}
    response = chat(idle, body)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"]
    without = {"model": "labeeb", "messages": [{"role": "user", "content": "What does the error message say?"}]}
    assert_error(chat(idle, without), 403, "screen_access_disabled")


def test_a_confirmation_asked_in_one_request_is_given_in_the_next_of_the_same_conversation(idle):
    """Issue 16: with X-Labeeb-Session, an image command's "shall I run it?" carries over to
    the conversation's next request; another conversation (or none) has nothing pending."""
    import io
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "documents"))
    from doc_samples import draw_text

    buffer = io.BytesIO()
    draw_text(["turn on dark mode"]).save(buffer, format="PNG")
    note = data_url(buffer.getvalue())

    def ask(messages, session=None):
        headers = {"X-Labeeb-Session": session} if session else {}
        response = httpx.post(idle.api + "/chat/completions", timeout=120, headers=headers,
                              json={"model": "labeeb", "max_tokens": 2, "messages": messages})
        assert response.status_code == 200, response.text
        return response.json()["choices"][0]["message"]["content"]

    first = [user_message("do what the note says", note)]
    asked = ask(first, "conversation-1")
    assert 'say "yes"' in asked and "turn on dark mode" in asked
    follow = [*first, {"role": "assistant", "content": asked}, {"role": "user", "content": "yes"}]
    assert "no command" in ask(follow, "conversation-2")  # another conversation: nothing pending
    assert "no command" in ask(follow)  # no conversation named: each request stands alone
    ran = ask(follow, "conversation-1")
    assert ran.startswith('Running the command from the image: "turn on dark mode"'), ran
    bad = httpx.post(idle.api + "/chat/completions", timeout=30, headers={"X-Labeeb-Session": "x" * 200},
                     json={"model": "labeeb", "messages": [{"role": "user", "content": "hi"}]})
    assert_error(bad, 400, "invalid_request", "X-Labeeb-Session")
