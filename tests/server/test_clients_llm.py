"""Simon Willison's ``llm`` (CLI and library) against a real ``labeeb serve``, set up as its
users do: the server's models registered in ``extra-openai-models.yaml`` (one through chat
completions, one through the Responses API) in a fresh ``LLM_USER_PATH``. The model is a real
language model (SmolLM2-135M-Instruct inside SmolVLM, labeeb.real_lm), so answers are judged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from server_kit import CITY, LabeebServer, image_bytes

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def llm_home(real_lm_server: LabeebServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An LLM_USER_PATH whose extra-openai-models.yaml names the server's model twice."""
    home = tmp_path_factory.mktemp("llm-home")
    common = {"model_name": real_lm_server.vision_model, "api_base": real_lm_server.api,
              "supports_schema": True, "supports_tools": True, "vision": True}
    models = [{"model_id": "labeeb-chat", **common}, {"model_id": "labeeb-responses", "responses": True, **common}]
    (home / "extra-openai-models.yaml").write_text(json.dumps(models, indent=2))  # JSON is YAML
    return home


@pytest.fixture
def llm_env(llm_home: Path, real_lm_server: LabeebServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment ``llm`` runs in: our user path, no third-party llm plugins."""
    real_lm_server.wait_idle()
    monkeypatch.setenv("LLM_USER_PATH", str(llm_home))
    monkeypatch.setenv("LLM_LOAD_PLUGINS", "")
    return dict(os.environ)


def run_llm(env: dict[str, str], *args: str) -> str:
    """``llm ARGS`` as a user types it; the answer it prints."""
    done = subprocess.run([sys.executable, "-m", "llm", *args], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, f"llm {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout.strip()


def last_logged(env: dict[str, str]) -> dict[str, Any]:
    """The newest response in llm's own log (``llm logs``): what llm read from the server."""
    return json.loads(run_llm(env, "logs", "-n", "1", "--json"))[0]


def test_a_plain_answer_is_real_english_plain_and_streamed(llm_env):
    question = "What is the capital of France?"
    plain = run_llm(llm_env, "-m", "labeeb-chat", "--no-stream", "-o", "max_tokens", "12", question)
    assert "Paris" in plain
    logged = last_logged(llm_env)
    assert logged["input_tokens"] > 5 and logged["output_tokens"] == 12  # the server's usage
    assert run_llm(llm_env, "-m", "labeeb-chat", "-o", "max_tokens", "12", question) == plain  # greedy


def test_the_library_streams_in_pieces(llm_env):
    import llm

    model = llm.get_model("labeeb-chat")
    response = model.prompt("What is the capital of France?", stream=True, max_tokens=12)
    pieces = list(response)
    assert len(pieces) > 3 and "Paris" in "".join(pieces)
    assert response.usage().output == 12


def test_schema_returns_json_that_validates(llm_env):
    answer = run_llm(llm_env, "-m", "labeeb-chat", "--schema", json.dumps(CITY), "-o", "max_tokens", "60",
                     "Tell me about Paris.")
    city = json.loads(answer)
    jsonschema.validate(city, CITY)
    assert city["country"] == "France"
    concise = json.loads(run_llm(llm_env, "-m", "labeeb-chat", "--schema", "name, country", "-o", "max_tokens", "60",
                                 "Tell me about Paris."))  # llm's own concise schema syntax
    assert set(concise) == {"name", "country"} and all(isinstance(v, str) for v in concise.values())


def test_seed_and_temperature_reach_the_sampler(llm_env):
    def story(seed: int) -> str:
        return run_llm(llm_env, "-m", "labeeb-chat", "-o", "seed", str(seed), "-o", "temperature", "1",
                       "-o", "max_tokens", "16", "Tell me a story.")

    first = story(1)
    assert story(1) == first
    assert story(2) != first


def test_an_image_attachment_reaches_the_vision_model(llm_env, tmp_path):
    picture = tmp_path / "red.png"
    picture.write_bytes(image_bytes((64, 48)))
    run_llm(llm_env, "-m", "labeeb-chat", "--no-stream", "-o", "max_tokens", "4", "What is it?")
    text_only = last_logged(llm_env)["input_tokens"]
    run_llm(llm_env, "-m", "labeeb-chat", "--no-stream", "-o", "max_tokens", "4", "-a", str(picture), "What is it?")
    # The picture was read and counted: its tiles are image tokens of the prompt (pictures are
    # not understood by this model's random vision encoder, so the words are not judged).
    assert last_logged(llm_env)["input_tokens"] > text_only + 50


def test_the_responses_api_plain_streamed_and_with_a_schema(llm_env):
    question = "What is the capital of France?"
    plain = run_llm(llm_env, "-m", "labeeb-responses", "--no-stream", "-o", "max_tokens", "12", question)
    assert "Paris" in plain
    assert run_llm(llm_env, "-m", "labeeb-responses", "-o", "max_tokens", "12", question) == plain
    city = json.loads(run_llm(llm_env, "-m", "labeeb-responses", "--schema", json.dumps(CITY),
                              "-o", "max_tokens", "60", "Tell me about Paris."))
    jsonschema.validate(city, CITY)


def test_llms_tools_are_taken_with_tool_choice_auto(llm_env):
    """llm always sends ``tool_choice: "auto"`` (it has no option for "required"; the openai SDK
    and litellm tests cover that). The request is honoured, not refused: the grammar lets the
    model answer in text or with a well-formed call. This small model answers in text here; a
    call, had it made one, would be checked and run by llm with its arguments."""
    weather = 'def get_weather(city: str) -> str:\n    """The weather in a city."""\n    return f"Sunny in {city}"\n'
    answer = run_llm(llm_env, "-m", "labeeb-chat", "--functions", weather, "-o", "max_tokens", "40",
                     "What is the weather in Paris? Use the get_weather tool.")
    newest = last_logged(llm_env)
    logged = [response for response in json.loads(run_llm(llm_env, "logs", "-n", "3", "--json"))
              if response["conversation_id"] == newest["conversation_id"]]  # this question's chain only
    calls = [call for response in logged for call in response.get("tool_calls") or []]
    for call in calls:
        assert call["name"] == "get_weather" and isinstance(call["arguments"], dict), call
    if not calls:
        assert "Paris" in answer and "<tool_call>" not in answer, answer
    assert [tool["name"] for tool in logged[0]["tools"]] == ["get_weather"], logged[0]  # llm sent it
