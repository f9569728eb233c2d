"""``extract`` with a real language model (SmolLM2 inside SmolVLM, labeeb.real_lm): the fields
come back as the JSON the skill's schema enforces while the model writes it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from doc_pdfkit import build_pdf
from labeeb import real_lm
from labeeb.config import Settings
from labeeb.messages import Command
from labeeb.testing import make_assistant

pytestmark = pytest.mark.slow


def test_extract_answers_the_named_fields_as_enforced_json(smolvlm_files_dir, _converted_models, tmp_path: Path):
    pdf = tmp_path / "invoice.pdf"
    pdf.write_bytes(build_pdf([["Invoice number: 4711", "Total: 12.50 EUR"]]))
    settings = Settings()
    settings.vision.model = str(real_lm.smollm2_smolvlm_dir(_converted_models))
    settings.vision.max_new_tokens = 60
    settings.documents.dpi = 40  # the page's picture means nothing to the random vision encoder: keep it small
    assistant = make_assistant(settings=settings)
    reply = assistant.handle(Command("extract the invoice number and total as json", files=[pdf]))
    assert (reply.skill, reply.error) == ("extract", False), reply.text
    assert "Fields read by the vision model" in reply.text  # its JSON parsed: no fallback to the text
    assert set(reply.data["fields"]) == {"invoice_number", "total"}
    assert "4711" in str(reply.data["fields"]["invoice_number"]), reply.data
    assert json.loads(reply.text.split("\n(")[0]) == reply.data["fields"]
