"""What every answer carries and how requests are read: request ids, the Authorization
scheme in any case, and errors that name the field at fault."""

from __future__ import annotations

import httpx
import pytest
from server_kit import KEY

pytestmark = pytest.mark.slow


def test_every_response_carries_a_request_id_and_echoes_a_clients_own(server, secure):
    answers = [
        httpx.get(server.url + "/health"),
        httpx.get(server.api + "/models"),
        httpx.get(server.api + "/nothing-here"),  # 404
        httpx.post(server.api + "/chat/completions", json={"model": "labeeb"}),  # 400
        httpx.get(server.url + "/health", headers={"Host": "evil.example"}),  # 421
        httpx.get(secure.api + "/models"),  # 401
    ]
    ids = [answer.headers.get("x-request-id", "") for answer in answers]
    assert [answer.status_code for answer in answers] == [200, 200, 404, 400, 421, 401]
    assert all(i.startswith("req_") for i in ids) and len(set(ids)) == len(ids), ids
    mine = httpx.get(server.url + "/health", headers={"X-Request-Id": "trace-42"})
    assert mine.headers["x-request-id"] == "trace-42"
    odd = httpx.get(server.url + "/health", headers={"X-Request-Id": "x" * 200})
    assert odd.headers["x-request-id"].startswith("req_")


def test_cors_lets_a_page_read_the_request_id(secure):
    answer = httpx.get(secure.url + "/health", headers={"Origin": "http://allowed.example"})
    assert "x-request-id" in answer.headers.get("access-control-expose-headers", "").lower()


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "beaRer"])
def test_the_bearer_scheme_is_matched_in_any_case(secure, scheme):
    answer = httpx.get(secure.api + "/models", headers={"Authorization": f"{scheme} {KEY}"})
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("header", [f"Basic {KEY}", KEY, f"Bearer{KEY}", f"Bearer {KEY}x", "Bearer"])
def test_other_schemes_and_wrong_keys_are_refused(secure, header):
    assert httpx.get(secure.api + "/models", headers={"Authorization": header}).status_code == 401


@pytest.mark.parametrize(("content", "param"), [
    ([{"type": "text", "text": "a"}] * 9 + [{"type": "image_url"}], "messages[0].content[9].image_url"),
    ([{"type": "text", "text": "a"}] * 9 + [{"type": "video"}], "messages[0].content[9]"),
    ([{"type": "image_url", "image_url": {"url": ""}}], "messages[0].content[0].image_url.url"),
])
def test_a_bad_content_part_is_named_by_its_path(server, content, param):
    body = {"model": "labeeb", "messages": [{"role": "user", "content": content}]}
    error = httpx.post(server.api + "/chat/completions", json=body).json()["error"]
    assert error["param"] == param, error
    assert error["message"].startswith(param + ":") and "valid string" not in error["message"], error


def test_low_detail_is_one_tile_per_picture_and_every_detail_the_sdk_sends_is_taken(client, server, idle):
    from server_kit import png_url

    def ask(detail):
        part = {"type": "image_url", "image_url": {"url": png_url((1100, 900)), **({"detail": detail} if detail else {})}}
        return client.chat.completions.create(model=server.vision_model, max_tokens=1, messages=[
            {"role": "user", "content": [{"type": "text", "text": "What is this?"}, part]}]).usage.prompt_tokens

    tiles = ask(None)
    assert ask("auto") == ask("high") == ask("original") == tiles
    assert ask("low") < tiles - 64  # one 512 px tile instead of the split picture and its overview


def test_a_picture_in_an_assistant_turn_is_kept_for_the_follow_up(client, server, idle):
    from server_kit import png_url

    picture = {"type": "image_url", "image_url": {"url": png_url()}}
    with_picture = client.chat.completions.create(model=server.vision_model, max_tokens=1, messages=[
        {"role": "user", "content": "Draw me a square."},
        {"role": "assistant", "content": [{"type": "text", "text": "Here it is."}, picture]},
        {"role": "user", "content": "What colour is it?"}])
    without = client.chat.completions.create(model=server.vision_model, max_tokens=1, messages=[
        {"role": "user", "content": "Draw me a square."}, {"role": "assistant", "content": "Here it is."},
        {"role": "user", "content": "What colour is it?"}])
    assert with_picture.usage.prompt_tokens > without.usage.prompt_tokens + 64


@pytest.mark.parametrize(("loc", "param"), [
    (("body", "stream_options"), "stream_options"),  # a field whose name begins like a type's
    (("body", "stream"), "stream"),
    (("body", "text", "format", "strict"), "text.format.strict"),
    (("body", "stop", "str"), "stop"),
    (("body", "messages", 0, "content", "list[tagged-union[TextPart,ImagePart]]", 9, "image_url", "image_url"),
     "messages[0].content[9].image_url"),
])
def test_a_validation_errors_location_is_the_fields_path(loc, param):
    from labeeb.server.errors import _field_path

    assert _field_path(loc) == param
