"""The real ``labeeb`` command line, as a user runs it (subprocesses, no model hub)."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from doc_samples import SCAN_PAGES


def ask_json(labeeb_cli, *args: str, env: dict[str, str] | None = None) -> dict:
    result = labeeb_cli("ask", *args, "--json", env=env)
    assert result.stdout, result.stderr
    return json.loads(result.stdout)


def test_read_page_two_offline_answers_from_ocr(labeeb_cli, scan_pdf: Path) -> None:
    # HF_HUB_OFFLINE=1 and an empty cache: the default model cannot be loaded.
    out = ask_json(labeeb_cli, "--image", str(scan_pdf), "read page 2")
    assert (out["plugin"], out["skill"], out["error"]) == ("documents", "read", False)
    assert out["text"].startswith("Page 2 of 3:\n" + "\n".join(SCAN_PAGES[1]))
    assert "Read with OCR only" in out["text"] and out["data"]["ocr_only"] is True


def test_pages_option(labeeb_cli, scan_pdf: Path) -> None:
    result = labeeb_cli("ask", "--image", str(scan_pdf), "--pages", "3", "read me this document")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Page 3 of 3:\n" + "\n".join(SCAN_PAGES[2]))
    result = labeeb_cli("ask", "--image", str(scan_pdf), "--pages", "3-1", "read it")
    assert result.returncode == 2 and "--pages" in result.stderr and "backwards" in result.stderr


def test_encrypted_pdf_is_a_clear_error(labeeb_cli, encrypted_pdf: Path) -> None:
    result = labeeb_cli("ask", "--image", str(encrypted_pdf), "read this pdf")
    assert result.returncode == 1 and "password-protected" in result.stderr


def test_read_page_two_with_a_real_model(labeeb_cli, scan_pdf: Path, tiny_model_dir: Path) -> None:
    """The tiny random-weights SmolVLM: the real model path (its text is meaningless)."""
    out = ask_json(labeeb_cli, "--image", str(scan_pdf), "--max-tokens", "8", "read page 2",
                   env={"LABEEB_VISION__MODEL": str(tiny_model_dir)})
    assert (out["plugin"], out["skill"], out["error"]) == ("documents", "read", False)
    assert out["text"].startswith("Page 2 of 3:\n") and "OCR only" not in out["text"]
    # The page image and the OCR text both went in: many prompt tokens, some generated.
    assert out["usage"]["prompt_tokens"] > 500 and out["usage"]["completion_tokens"] >= 1


def test_note_image_routes_to_the_screen_plugin(labeeb_cli, tmp_path: Path, note_image: Image.Image) -> None:
    note = tmp_path / "note.png"
    note_image.save(note)
    out = ask_json(labeeb_cli, "--image", str(note), "do what the note says")
    assert (out["plugin"], out["skill"]) == ("image_commands", "follow")
    assert out["text"].startswith('Command from the image: "describe my screen" (read by OCR) -> screen.describe\n')
    assert out["data"]["interpreted_command"] == "describe my screen"
    assert out["data"]["result"]["plugin"] == "screen"
