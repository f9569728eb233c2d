"""The documents plugin end to end: real PDFs, real OCR, the real router and assistant.

The vision model is FakeVision (it records what reached it) or, for the offline path, the
real transformers backend pointed at a model that does not exist.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from doc_samples import SCAN_PAGES, draw_text, write_scan
from doc_pdfkit import build_pdf
from labeeb.config import Settings
from labeeb.messages import Command
from labeeb.testing import FakeVision, make_assistant

PAGE_TEXT = ["\n".join(lines) for lines in SCAN_PAGES]


def ask(assistant, text: str, files: list[Path] = (), images=(), **options):
    return assistant.handle(Command(text=text, files=list(files), images=list(images), options=options))


def offline_assistant(tmp_path: Path, **documents: object):
    """The real transformers backend, with a model that cannot be loaded."""
    settings = Settings()
    settings.vision.model = str(tmp_path / "no-such-model")
    for key, value in documents.items():
        setattr(settings.documents, key, value)
    return make_assistant(settings=settings)


def page_of(prompt: str) -> int:
    return next(i + 1 for i, text in enumerate(PAGE_TEXT) if text in prompt)


def test_read_page_two_grounds_the_model_with_ocr(scan_pdf: Path) -> None:
    fake = FakeVision("transcribed")
    reply = ask(make_assistant(vision=fake), "read page 2", [scan_pdf])
    assert (reply.plugin, reply.skill, reply.error) == ("documents", "read", False)
    assert reply.text == "Page 2 of 3:\ntranscribed"
    [request] = fake.requests
    assert "Transcribe" in request.prompt and PAGE_TEXT[1] in request.prompt
    [page] = request.images  # page 2 rendered at 150 dpi (A4: about 1240 x 1754)
    assert abs(page.width - 1240) <= 2 and abs(page.height - 1754) <= 2


def test_multi_page_documents_are_answered_page_by_page(scan_pdf: Path) -> None:
    fake = FakeVision(lambda r: f"answer for page {page_of(r.prompt)}")
    reply = ask(make_assistant(vision=fake), "read me this document", [scan_pdf])
    assert reply.text == (
        "Page 1 of 3:\nanswer for page 1\n\nPage 2 of 3:\nanswer for page 2\n\nPage 3 of 3:\nanswer for page 3"
    )
    assert [page_of(p) for p in fake.prompts] == [1, 2, 3]


def test_pages_option_wins_over_the_sentence(scan_pdf: Path) -> None:
    fake = FakeVision("ok")
    reply = ask(make_assistant(vision=fake), "read page 1", [scan_pdf], pages="3")
    assert reply.text.startswith("Page 3 of 3:") and [page_of(p) for p in fake.prompts] == [3]


def test_without_a_model_read_answers_from_ocr_and_says_so(scan_pdf: Path, tmp_path: Path) -> None:
    reply = ask(offline_assistant(tmp_path), "read page 2", [scan_pdf])
    assert (reply.plugin, reply.skill, reply.error) == ("documents", "read", False)
    assert reply.text.startswith(f"Page 2 of 3:\n{PAGE_TEXT[1]}\n\n(Read with OCR only: the vision model is unavailable")
    assert "no-such-model" in reply.text
    assert reply.data["ocr_only"] is True
    assert reply.data["pages"] == [{"document": "scan.pdf", "page": 2, "text": PAGE_TEXT[1]}]


def test_without_a_model_a_text_pdf_is_read_from_its_text_layer(text_pdf: Path, tmp_path: Path) -> None:
    reply = ask(offline_assistant(tmp_path, ocr=False), "read this pdf", [text_pdf])
    assert reply.text.startswith("Page 1 of 2:\nAnnual letter\nDear reader\n\nPage 2 of 2:\nSecond page body")
    assert "Read with the PDF's text layer only" in reply.text


def test_without_a_model_or_ocr_a_scan_cannot_be_read(scan_pdf: Path, tmp_path: Path) -> None:
    reply = ask(offline_assistant(tmp_path, ocr=False), "read page 1", [scan_pdf])
    assert reply.error and "documents.ocr" in reply.text


def test_summarise_and_question_need_the_model(scan_pdf: Path, tmp_path: Path) -> None:
    assistant = offline_assistant(tmp_path)
    for text in ("summarise this document", "what is the total on this invoice"):
        reply = ask(assistant, text, [scan_pdf])
        assert reply.error and reply.data.get("model_unavailable")
        assert "read this document" in reply.text  # says what still works


def test_summarise_page_by_page(scan_pdf: Path) -> None:
    fake = FakeVision(lambda r: f"summary {page_of(r.prompt)}")
    reply = ask(make_assistant(vision=fake), "summarise pages 1 and 3", [scan_pdf])
    assert reply.skill == "summarise"
    assert reply.text == "Page 1 of 3:\nsummary 1\n\nPage 3 of 3:\nsummary 3"
    assert all("Summarise this page" in p for p in fake.prompts)


def test_question_skips_pages_without_the_answer(scan_pdf: Path) -> None:
    def answer(request) -> str:
        return "12.50 EUR" if "Total: 12.50" in request.prompt else "NOT ON THIS PAGE"

    fake = FakeVision(answer)
    reply = ask(make_assistant(vision=fake), "what is the total on this invoice", [scan_pdf])
    assert reply.skill == "question" and reply.text == "Page 2 of 3:\n12.50 EUR"
    assert all("what is the total on this invoice" in p for p in fake.prompts) and len(fake.prompts) == 3

    fake.reply = "NOT ON THIS PAGE"
    reply = ask(make_assistant(vision=fake), "who signed this contract", [scan_pdf])
    assert reply.text == "I could not find the answer on scan.pdf pages 1-3 of 3."


def test_extract_fields_with_the_model(scan_pdf: Path) -> None:
    def answer(request) -> str:
        if "4711" in request.prompt:
            return 'Here you go:\n```json\n{"invoice_number": "4711", "total": "12.50 EUR"}\n```'
        return '{"invoice_number": null, "total": null}'

    fake = FakeVision(answer)
    reply = ask(make_assistant(vision=fake), "extract the invoice number and total as JSON", [scan_pdf])
    assert reply.skill == "extract" and not reply.error
    assert reply.data["fields"] == {"invoice_number": "4711", "total": "12.50 EUR"}
    assert reply.data["pages"] == {"invoice_number": 2, "total": 2}
    assert json.loads(reply.text.split("\n(")[0]) == reply.data["fields"]
    assert '"invoice_number", "total"' in fake.prompts[0]
    # The model is held to exactly these fields while it writes (labeeb.vision.grammar)
    shape = fake.requests[0].response_format
    assert shape["type"] == "json_schema" and shape["json_schema"]["strict"] is True
    schema = shape["json_schema"]["schema"]
    assert schema["required"] == ["invoice_number", "total"] and schema["additionalProperties"] is False


def test_extract_falls_back_to_ocr_when_the_model_answers_no_json(scan_pdf: Path) -> None:
    reply = ask(make_assistant(vision=FakeVision("I am not sure.")), "extract the total and the iban", [scan_pdf])
    assert reply.data["fields"] == {"total": "12.50 EUR", "iban": None}


def test_extract_without_a_model_uses_ocr(scan_pdf: Path, tmp_path: Path) -> None:
    reply = ask(offline_assistant(tmp_path), "extract all fields as json", [scan_pdf], pages="2")
    assert reply.data["fields"] == {"invoice_number": "4711", "total": "12.50 EUR"}
    assert reply.data["ocr_only"] is True and "Fields read by OCR" in reply.text


def test_an_attached_picture_is_a_one_page_document(tmp_path: Path) -> None:
    fake = FakeVision("Hello there")
    image = draw_text(["Hello there"])
    reply = ask(make_assistant(vision=fake), "read this", images=[image])
    assert reply.text == "Hello there"  # no page heading for a single picture
    assert "Hello there" in fake.prompts[0] and fake.requests[0].images[0].size == image.size


def test_raster_files_and_pdfs_together(scan_pdf: Path, tmp_path: Path) -> None:
    photo = tmp_path / "photo.png"
    draw_text(["Hello there"]).save(photo)
    fake = FakeVision("x")
    reply = ask(make_assistant(vision=fake), "read page 1", [photo, scan_pdf])
    assert reply.text == "photo.png:\nx\n\nscan.pdf, page 1 of 3:\nx"


def test_follow_up_reads_another_page_of_the_same_document(scan_pdf: Path) -> None:
    fake = FakeVision(lambda r: f"page {page_of(r.prompt)}")
    assistant = make_assistant(vision=fake)
    assert ask(assistant, "read page 1", [scan_pdf]).text == "Page 1 of 3:\npage 1"
    assert ask(assistant, "now read page 3").text == "Page 3 of 3:\npage 3"
    ask(assistant, "forget that")
    reply = ask(assistant, "read page 2")
    assert reply.error and "Attach a document" in reply.text


def test_a_new_picture_replaces_the_remembered_document(scan_pdf: Path) -> None:
    fake = FakeVision("x")
    assistant = make_assistant(vision=fake)
    ask(assistant, "read page 1", [scan_pdf])
    ask(assistant, "describe this picture", images=[draw_text(["Hello there"])])
    ask(assistant, "read it")
    assert "Hello there" in fake.prompts[-1]


@pytest.mark.parametrize(
    ("text", "options", "message"),
    [
        ("read page 7", {}, "page 7 does not exist: the document has 3 pages"),
        ("read this", {"pages": "2-1"}, "backwards"),
    ],
)
def test_bad_page_requests(scan_pdf: Path, text: str, options: dict, message: str) -> None:
    reply = ask(make_assistant(vision=FakeVision()), text, [scan_pdf], **options)
    assert reply.error and message in reply.text and reply.plugin == "documents"


def test_encrypted_and_missing_documents(encrypted_pdf: Path) -> None:
    assistant = make_assistant(vision=FakeVision())
    reply = ask(assistant, "read this pdf", [encrypted_pdf])
    assert reply.error and "password-protected" in reply.text
    reply = ask(make_assistant(vision=FakeVision()), "read this document")
    assert reply.error and "Attach a document" in reply.text


def test_long_documents_are_cut_at_max_pages(tmp_path: Path) -> None:
    path = tmp_path / "long.pdf"
    path.write_bytes(build_pdf([[f"Section {i}"] for i in range(1, 31)]))
    settings = Settings()
    settings.documents.max_pages = 2
    fake = FakeVision("x")
    reply = ask(make_assistant(vision=fake, settings=settings), "read this document", [path])
    assert len(fake.requests) == 2
    assert "read pages 1-2 of 30" in reply.text and "--pages" in reply.text
    assert "Section 2" in fake.prompts[1]  # the text layer grounds the model


def test_ocr_can_be_switched_off(tmp_path: Path) -> None:
    scan = write_scan(tmp_path / "one.pdf", [["Only words"]])
    settings = Settings()
    settings.documents.ocr = False
    fake = FakeVision("x")
    ask(make_assistant(vision=fake, settings=settings), "read this pdf", [scan])
    assert "Only words" not in fake.prompts[0] and "OCR" not in fake.prompts[0]


def test_an_answer_cut_by_the_token_limit_says_so(tmp_path: Path) -> None:
    settings = Settings()
    settings.vision.max_new_tokens = 3
    fake = FakeVision("one two three")  # one token per word: exactly the limit
    reply = ask(make_assistant(vision=fake, settings=settings), "read this", images=[draw_text(["Hello there"])])
    assert reply.text == "one two three [cut off at 3 tokens: raise --max-tokens or vision.max_new_tokens]"
    reply = ask(make_assistant(vision=FakeVision("one two"), settings=settings), "read this",
                images=[draw_text(["Hello there"])])
    assert reply.text == "one two"
