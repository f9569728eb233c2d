"""Routing: typed, misspelled and spoken-style phrasings reach the right document skills,
and screen questions do not (they belong to the screen plugin)."""

from __future__ import annotations

import pytest

from PIL import Image

from labeeb.messages import Command
from labeeb.testing import FakeVision, make_assistant

ROUTES = {
    "documents.read": [
        "read page 2", "read me this page", "Read this page please", "reed this page", "read the document",
        "read this pdf", "read it aloud", "read it out loud", "transcribe this document", "transcibe this",
        "read me the letter", "hey labeeb, read page two", "could you read me page 3", "read pages 1 to 3",
        "read the last page", "what is written in this document", "read the text in this image",
        "read this note", "page 2", "read all pages", "read the second page", "can you read this for me",
        "okay read me what this letter says",
    ],
    "documents.summarise": [
        "summarise this document", "summarize this pdf", "summerize this documnet", "give me a summary",
        "what is this document about", "whats this pdf about", "sum up page 2", "tldr",
        "key points of this letter", "please give me the gist of this file",
    ],
    "documents.extract": [
        "extract the invoice number, date and total as JSON", "extract all fields as json",
        "pull out the total from this receipt", "get the name and email from this form as json",
        "extract the fields",
    ],
    "documents.question": [
        "what is the total on this invoice", "who signed this contract", "what does page 2 say about the budget",
        "when is the meeting according to this document", "is this letter signed",
        "how much is due on the invoice", "which date is on the receipt",
    ],
    "image_commands.follow": [
        "do what the note says", "follow the note", "do what this says", "do what it says",
        "follow the instructions in this image", "do what the sticky note says", "read the note and do it",
        "do whats written here", "carry out the instruction in the screenshot",
        "follow the instructions on the whiteboard", "do what the message says", "hey labeeb do what it says",
    ],
    "image_commands.confirm": ["yes", "Yes.", "yes please", "ok", "go ahead"],
    "image_commands.cancel": ["no", "cancel", "nope", "never mind"],
}

NOT_OURS = [
    "what's on my screen", "whats on my screen", "read the error message", "what does this dialog say",
    "describe the window on the left", "what's under my cursor", "read my screen", "describe my screen",
    "what changed on my screen", "what can you do", "forget that", "what colour is the car", "hello",
]


@pytest.fixture(scope="module")
def assistant():
    return make_assistant(vision=FakeVision())


@pytest.fixture(scope="module")
def pdf(tmp_path_factory):
    path = tmp_path_factory.mktemp("doc") / "scan.pdf"
    Image.new("RGB", (600, 800), "white").save(path)
    return path


@pytest.mark.parametrize(("skill", "text"), [(skill, text) for skill, texts in ROUTES.items() for text in texts])
def test_phrasings_reach_the_skill(assistant, pdf, skill: str, text: str) -> None:
    route = assistant.route(text, Command(text, files=[pdf]))
    assert route.skill.qualified_name == skill, route.explain()


def test_questions_about_a_document_need_a_document(assistant, pdf) -> None:
    picture = Image.new("RGB", (300, 200), "white")
    for text in ("what is in this picture", "what is this", "what is the total on this invoice"):
        route = assistant.route(text, Command(text, images=[picture]))
        assert route.skill.qualified_name != "documents.question", route.explain()
    for text in ("what is this", "what does it say"):
        route = assistant.route(text, Command(text, files=[pdf]))
        assert route.skill.plugin == "documents", route.explain()


@pytest.mark.parametrize("text", NOT_OURS)
def test_other_questions_are_left_alone(assistant, text: str) -> None:
    route = assistant.route(text)
    assert route.skill.plugin not in ("documents", "image_commands"), route.explain()
