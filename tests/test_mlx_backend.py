"""The MLX backend (mlx-vlm) on SmolVLM's processor and a tiny random-weights model.

On Linux MLX runs on the CPU (the ``mlx[cpu]`` wheel that ``[dev]`` installs): slow, but the
same code path as on Apple Silicon, so prompts, streaming, cancel and usage are tested here.
"""

import json
import platform
import subprocess
import sys

import pytest
from PIL import Image, ImageDraw

from cli_runner import REPO, run_labeeb
from labeeb.config import Settings, VisionConfig
from labeeb.vision.backend import ContextLengthError, GenerationStats, ModelUnavailableError, VisionRequest
from labeeb.vision.processor import VisionProcessor

pytestmark = pytest.mark.skipif(
    not (sys.platform == "linux" or (sys.platform == "darwin" and platform.machine() == "arm64")),
    reason="MLX has wheels for Linux and Apple Silicon only",
)


def photo(size=(640, 480)):
    image = Image.new("RGB", size, "white")
    ImageDraw.Draw(image).text((40, 40), "Hello Labeeb", fill="black")
    return image


@pytest.fixture(scope="module")
def mlx_backend(tiny_model_dir):
    from labeeb.vision.backends.mlx import MlxBackend

    backend = MlxBackend(VisionConfig(backend="mlx", model=str(tiny_model_dir)))
    backend.load()
    return backend


def test_importing_the_backend_imports_no_mlx():
    code = "import sys, labeeb.vision.backends.mlx, labeeb_plugins.backends; print(sorted(m for m in sys.modules if m.startswith('mlx')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_mlx_is_a_built_in_backend():
    from labeeb.config import PluginsConfig
    from labeeb.host import PluginHost

    host = PluginHost(PluginsConfig(), environ={"LABEEB_DISABLE_PLUGIN_AUTOLOAD": "1"})
    host.load_entrypoints()
    assert {"transformers", "mlx", "openai"} <= set(host.vision_backends())


def test_streams_an_answer_about_an_image_with_real_token_counts(tiny_model_dir):
    vision = VisionProcessor(VisionConfig(backend="mlx", model=str(tiny_model_dir), max_new_tokens=12),
                             {"mlx": _factory()})
    stream = vision.stream("describe this", [photo()])
    chunks = list(stream)
    assert len(chunks) > 1 and "".join(chunks) == stream.text
    # random weights rarely say "end" this soon; when they do, fewer tokens came out
    assert 1 <= stream.usage.completion_tokens <= 12
    assert stream.usage.prompt_tokens > 64  # 64 tokens per 512 px tile, plus the text
    assert stream.timings.load is not None and stream.timings.preprocess is not None
    assert stream.timings.total >= stream.timings.ttft > 0
    assert vision.backend().name == "mlx"


def test_prompt_is_what_transformers_builds_images_first(mlx_backend, tiny_model_dir):
    from transformers import AutoProcessor

    from labeeb.vision.backends.transformers import build_messages

    request = VisionRequest("and the colour?", [photo()], history=[("describe this", "a white page")])
    inputs = mlx_backend.prepare(request)
    reference = AutoProcessor.from_pretrained(tiny_model_dir)
    prompt = reference.apply_chat_template(build_messages(request), add_generation_prompt=True)
    assert prompt.index("<image>") < prompt.index("describe this") < prompt.index("and the colour?")
    expected = reference(text=[prompt], images=[[photo()]], return_tensors="np")
    assert inputs["input_ids"].tolist() == expected["input_ids"].tolist()


def test_loading_leaves_transformers_own_processors_in_place(mlx_backend, tiny_model_dir):
    """mlx-vlm patches AutoProcessor process-wide; the backend keeps that to its own loading."""
    import os

    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    assert type(processor).__module__.startswith("transformers.") and processor.chat_template
    assert "TRANSFORMERS_VERBOSITY" not in os.environ  # mlx-vlm sets it on import


def test_cancel_stops_between_tokens(mlx_backend):
    request = VisionRequest("describe this", [], max_new_tokens=200)
    stats = GenerationStats()
    chunks = []
    for chunk in mlx_backend.stream(request, stats):
        chunks.append(chunk)
        request.cancel.set()
    assert len(chunks) == 1 and stats.completion_tokens < 10


def test_max_new_tokens_temperature_and_text_only(mlx_backend):
    stats = GenerationStats()
    text = "".join(mlx_backend.stream(VisionRequest("hello", [], max_new_tokens=5, temperature=0.9), stats))
    assert stats.completion_tokens <= 5 and isinstance(text, str)
    assert 0 < stats.prompt_tokens < 64  # no image tokens


def test_a_prompt_longer_than_the_context_is_refused_before_generating(mlx_backend, monkeypatch):
    monkeypatch.setattr(mlx_backend.model.config.text_config, "max_position_embeddings", 100)
    with pytest.raises(ContextLengthError, match="maximum context length is 100"):
        next(mlx_backend.stream(VisionRequest("describe this", [photo()]), GenerationStats()))


def test_missing_mlx_is_a_clear_error_with_the_fix(monkeypatch, tiny_model_dir):
    from labeeb.cli.doctor import check_model
    from labeeb.vision.backends.mlx import MlxBackend

    monkeypatch.setitem(sys.modules, "mlx_vlm", None)  # as if not installed
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None if name == "mlx_vlm" else object())
    with pytest.raises(ModelUnavailableError, match=r"pip install 'labeeb\[mlx\]'"):
        MlxBackend(VisionConfig(backend="mlx", model=str(tiny_model_dir))).load()
    settings = Settings()
    settings.vision.backend, settings.vision.model = "mlx", str(tiny_model_dir)
    check = check_model(settings)
    assert check.status == "FAIL" and "labeeb[mlx]" in check.detail


def test_a_model_mlx_vlm_cannot_load_is_a_clear_error(tiny_model_dir, tmp_path):
    from labeeb.vision.backends.mlx import MlxBackend

    broken = tmp_path / "broken"
    broken.mkdir()
    for item in tiny_model_dir.iterdir():
        (broken / item.name).write_bytes(item.read_bytes())
    (broken / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ModelUnavailableError, match="could not be loaded with mlx-vlm") as caught:
        MlxBackend(VisionConfig(backend="mlx", model=str(broken))).load()
    assert "vision.model" in str(caught.value)


def test_cli_ask_with_image_streams_an_mlx_answer(tiny_model_dir, tmp_path):
    path = tmp_path / "photo.png"
    photo().save(path)
    env = {"LABEEB_VISION__BACKEND": "mlx", "LABEEB_VISION__MODEL": str(tiny_model_dir)}
    result = run_labeeb("ask", "--image", str(path), "describe this", "--json", "--max-tokens", "6", env=env)
    assert result.returncode == 0, result.stderr
    reply = json.loads(result.stdout)
    assert (reply["plugin"], reply["skill"], reply["error"]) == ("general", "ask", False)
    assert 1 <= reply["usage"]["completion_tokens"] <= 6 and reply["usage"]["prompt_tokens"] > 64
    assert reply["text"].strip() and reply["timings"]["total"] >= reply["timings"]["ttft"] > 0
    streamed = run_labeeb("ask", "--image", str(path), "describe this", "--max-tokens", "6", env=env)
    assert streamed.returncode == 0 and streamed.stdout.strip(), streamed.stderr


def test_doctor_reports_the_mlx_backend(tiny_model_dir):
    env = {"LABEEB_VISION__BACKEND": "mlx", "LABEEB_VISION__MODEL": str(tiny_model_dir)}
    result = run_labeeb("doctor", env=env)
    line = next(line for line in result.stdout.splitlines() if "vision model:" in line)
    assert line.startswith("OK") and "with MLX on the" in line, result.stdout
    privacy = next(line for line in result.stdout.splitlines() if "privacy:" in line)
    assert "stay on this machine" in privacy


def _factory():
    from labeeb.vision.backends.mlx import MlxBackend

    return MlxBackend


@pytest.mark.parametrize("sizes", [[], [(640, 480)], [(300, 200), (1920, 1080)], [(4000, 900)]])
def test_counting_a_prompt_from_image_sizes_matches_the_processor(mlx_backend, sizes):
    images = [photo(size) for size in sizes]
    request = VisionRequest("what changed?", images, history=[("describe this", "a page")])
    assert mlx_backend.count_prompt_tokens(request) == mlx_backend.prepare(request)["input_ids"].shape[1]
    request.images = []
    assert mlx_backend.count_prompt_tokens(request, sizes) == mlx_backend.prepare(
        VisionRequest(request.prompt, images, request.history))["input_ids"].shape[1]


def test_other_processors_are_counted_on_blank_images_of_those_sizes(mlx_backend, monkeypatch):
    monkeypatch.setattr("labeeb.vision.fast_images.supported", lambda image_processor: False)
    request = VisionRequest("what is this?", [photo((800, 600))])
    assert mlx_backend.count_prompt_tokens(request) == mlx_backend.prepare(request)["input_ids"].shape[1]


@pytest.mark.slow
def test_real_smolvlm_256m_architecture_loads_and_answers(smolvlm_dir):
    """The full-size architecture (bf16 weights) loads with mlx-vlm and answers. Text only: on a
    CPU, MLX takes about a minute per 512 px tile, and an image is up to 17 tiles."""
    from mlx.utils import tree_flatten

    from labeeb.vision.backends.mlx import MlxBackend

    backend = MlxBackend(VisionConfig(backend="mlx", model=str(smolvlm_dir)))
    backend.load()
    assert sum(value.size for _, value in tree_flatten(backend.model.parameters())) == 256_484_928
    stats = GenerationStats()
    chunks = list(backend.stream(VisionRequest("What is on the screen?", [], max_new_tokens=4), stats))
    assert chunks and 1 <= stats.completion_tokens <= 4 and stats.prompt_tokens > 5


def test_structured_answers_and_tool_calls_are_enforced(tiny_model_dir):
    """The same grammar as in process (labeeb.vision.grammar), as mlx-vlm's logits processor."""
    import jsonschema
    from test_structured import BOUNDED, EMAIL, SCHEMA_FORMAT, WEATHER

    from labeeb.messages import Tools
    from labeeb.tool_calls import CallReader

    vision = VisionProcessor(VisionConfig(backend="mlx", model=str(tiny_model_dir), max_new_tokens=60,
                                          cache={"enabled": False}), {"mlx": _factory()})
    for seed in range(2):
        answer = vision.generate("Describe it.", [], response_format=SCHEMA_FORMAT, temperature=1.0, seed=seed)
        jsonschema.validate(json.loads(answer.text), BOUNDED)
    answer = vision.generate("Weather?", [], tools=Tools((WEATHER, EMAIL), "function", "get_weather", parallel=False))
    reader = CallReader()
    reader.feed(answer.text)
    reader.flush()
    assert [call.name for call in reader.calls] == ["get_weather"], answer.text
    jsonschema.validate(json.loads(reader.calls[0].arguments), WEATHER["parameters"])
