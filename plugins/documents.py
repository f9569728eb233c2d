"""Document understanding: read, summarise, question and extract fields from PDFs and images.

Every page is grounded: its PDF text layer, or else what OCR read, goes to the vision model
with the page image, because small vision models misread dense text. Without a model,
"read" is answered from that text alone and the reply says so. Multi-page documents are
answered page by page, each part headed by its page number.

Documents come from ``Command.files`` (PDFs are never decoded into ``Command.images``),
else the command's images, else the document read last in this conversation (so "now
read page 3" works), else the conversation's latest images.
"""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING, Callable, Iterator

from labeeb.document_fields import field_names, fields_format, fields_from_text, json_object, key_of
from labeeb.hookspecs import hookimpl
from labeeb.messages import Reply, UserError
from labeeb.skills import HandlerResult, Request, Skill
from labeeb.vision.backend import ModelUnavailableError

if TYPE_CHECKING:  # pragma: no cover
    from pathlib import Path

    from labeeb.documents import Document, Page
    from labeeb.messages import Command
    from labeeb.session import Session

#: What this plugin can reach (`labeeb plugins`): the documents and pictures you attach.
REACHES: list[str] = ["files"]


#: OCR text given to the model per page; longer pages are cut (the image is still there).
MAX_GROUNDING_CHARS = 6000
NOT_HERE = "NOT ON THIS PAGE"

#: Where this plugin keeps, in each session, the document read last and the images it left
#: there: the document counts as "still attached" while those images are the session's latest.
STATE = "documents"


class NoDocumentError(UserError):
    pass


def _user_errors(handler: Callable[[Request], HandlerResult]) -> Callable[[Request], HandlerResult]:
    """Bad input (no document, encrypted PDF, page 9 of 3) is an answer, not a crash."""

    @functools.wraps(handler)
    def wrapped(request: Request) -> HandlerResult:
        from labeeb.documents import DocumentError

        try:
            return handler(request)
        except DocumentError as exc:
            raise UserError(str(exc)) from None

    return wrapped


# -- which pages -------------------------------------------------------------------------


def _still_read(session: Session) -> list[Path]:
    """The files of the document read last, while the session is still on its pages."""
    remembered = session.state(STATE).get("last_read")
    if remembered and remembered[1] == [id(image) for image in session.latest_images()]:
        return list(remembered[0])
    return []


def document_in_play(command: Command, session: Session) -> bool:
    """A PDF is attached, or the conversation is still on the document read last."""
    from labeeb.images import is_document

    if any(path.is_file() and is_document(path) for path in command.files):
        return True
    return not command.images and bool(_still_read(session))


def load_documents(request: Request) -> list[Document]:
    from labeeb.documents import from_images, is_supported, open_document, pages_from_text, parse_pages

    config = request.assistant.settings.documents
    command = request.command
    pages = command.options.get("pages") or pages_from_text(request.text)
    pages = str(pages) if pages else None
    files = [path for path in command.files if is_supported(path)]
    if not files and not command.images:
        files = _still_read(request.session)
    if files:
        documents = [open_document(path, pages, config.max_pages, config.dpi) for path in files]
        session = request.session
        session.set_images([page.image for doc in documents for page in doc.pages])
        session.state(STATE)["last_read"] = (list(files), [id(image) for image in session.latest_images()])
        return documents
    images = request.images()
    if not images:
        raise NoDocumentError(
            "Attach a document or image first, e.g. `labeeb ask --image scan.pdf \"read page 2\"` "
            "(or /image scan.pdf in `labeeb chat`)."
        )
    documents = from_images(images)
    if pages:
        for doc in documents:
            doc.pages = [doc.pages[n - 1] for n in parse_pages(pages, 1)]
    return documents


def _parts(documents: list[Document]) -> Iterator[tuple[str, Page]]:
    """(heading, page) for every page; the heading is empty for a lone one-page document."""
    lone = len(documents) == 1 and documents[0].page_count == 1
    for doc in documents:
        for page in doc.pages:
            if lone:
                yield "", page
                continue
            where = f"Page {page.number} of {doc.page_count}" if doc.page_count > 1 else ""
            if len(documents) > 1:
                where = f"{doc.name}, {where[0].lower()}{where[1:]}" if where else doc.name
            yield where, page


def _footer(documents: list[Document]) -> str:
    notes = [
        f"({doc.name}: read {doc.describe_pages()}; the limit is documents.max_pages, "
        "choose others with --pages, e.g. --pages 21-40.)"
        for doc in documents
        if doc.truncated
    ]
    return "\n".join(notes)


def grounding(request: Request, page: Page) -> tuple[str, str]:
    """The page's own text layer, else OCR text (if documents.ocr is on), and which it was."""
    if page.text_layer.strip():
        return page.text_layer.strip(), "the PDF's text layer"
    if not request.assistant.settings.documents.ocr:
        return "", ""
    from labeeb.ocr import image_text

    return image_text(page.image), "OCR"


def _model_error(request: Request) -> ModelUnavailableError | None:
    try:
        request.vision.backend()
    except ModelUnavailableError as exc:
        return exc
    return None


# -- prompts ------------------------------------------------------------------------------


def _with_text(prompt: str, text: str, source: str) -> str:
    if not text:
        return prompt
    return (
        f"{prompt}\n\nText found on the page by {source} (it may contain mistakes; trust the image):\n"
        f"<<<\n{text[:MAX_GROUNDING_CHARS]}\n>>>"
    )


PROMPTS: dict[str, Callable[[str], str]] = {
    "read": lambda q: "Transcribe all the text on this page exactly, in reading order. Reply with the text only.",
    "summarise": lambda q: "Summarise this page in two or three sentences: what it is and its key points.",
    "question": lambda q: f"Answer this question about the page: {q}\nIf the page does not hold the answer, "
    f"reply exactly: {NOT_HERE}",
}


def _stream(request: Request, task: str, documents: list[Document]) -> Iterator[str]:
    parts = list(_parts(documents))
    buffered = task == "question" and len(parts) > 1  # pages without the answer are skipped
    shown = 0
    for heading, page in parts:
        if request.cancel.is_set():
            return
        text, source = grounding(request, page)
        prompt = _with_text(PROMPTS[task](request.text), text, source)
        stream = request.ask_vision(prompt, images=[page.image])
        if buffered:
            answer = stream.result().text.strip()
            if not answer or NOT_HERE.lower() in answer.lower():
                continue
        separator = "\n\n" if shown else ""
        shown += 1
        if buffered:
            yield f"{separator}{heading}:\n{answer}"
            continue
        yield f"{separator}{heading}:\n" if heading else separator
        yield from stream
        if stream.usage.completion_tokens >= stream.request.max_new_tokens:
            yield f" [cut off at {stream.request.max_new_tokens} tokens: raise --max-tokens or vision.max_new_tokens]"
    if buffered and not shown:
        yield f"I could not find the answer on {_where(documents)}."
    footer = _footer(documents)
    if footer:
        yield f"\n\n{footer}"


def _where(documents: list[Document]) -> str:
    return "; ".join(f"{doc.name} {doc.describe_pages()}".strip() for doc in documents)


# -- skills ----------------------------------------------------------------------------------


@_user_errors
def read(request: Request) -> HandlerResult:
    documents = load_documents(request)
    error = _model_error(request)
    if error is None:
        return _stream(request, "read", documents)
    return _read_without_model(request, documents, error)


def _read_without_model(request: Request, documents: list[Document], error: ModelUnavailableError) -> Reply:
    chunks, pages, sources = [], [], set()
    for heading, page in _parts(documents):
        text, source = grounding(request, page)
        if not source:  # OCR is off and the page has no text layer
            raise ModelUnavailableError(f"{error} (OCR is off too: set documents.ocr = true to read without the model)")
        sources.add(source)
        body = text or "(no text found on this page)"
        chunks.append(f"{heading}:\n{body}" if heading else body)
        pages.append({"document": _name(documents, page), "page": page.number, "text": text})
    how = " and ".join(sorted(sources))
    reason = str(error).split(". ")[0].rstrip(".")
    note = f"(Read with {how} only: the vision model is unavailable: {reason}.)"
    if _footer(documents):
        note += "\n" + _footer(documents)
    return Reply(
        "\n\n".join(chunks) + "\n\n" + note,
        data={"ocr_only": True, "text_source": how, "pages": pages, "model_error": str(error)},
    )


def _name(documents: list[Document], page: Page) -> str:
    return next(doc.name for doc in documents if any(p is page for p in doc.pages))


@_user_errors
def summarise(request: Request) -> HandlerResult:
    return _needs_model(request, "summarise")


@_user_errors
def question(request: Request) -> HandlerResult:
    return _needs_model(request, "question")


def _needs_model(request: Request, task: str) -> HandlerResult:
    documents = load_documents(request)
    error = _model_error(request)
    if error is not None:
        raise ModelUnavailableError(
            f"{error} Without the model I can still read the text: say \"read this document\"."
        )
    return _stream(request, task, documents)


# -- extracting fields (the parsing is in labeeb.document_fields) ----------------------------

@_user_errors
def extract(request: Request) -> HandlerResult:
    documents = load_documents(request)
    names = field_names(request.text, request.command.options.get("fields"))
    error = _model_error(request)
    fields: dict[str, object] = {key_of(n): None for n in names}
    found_on: dict[str, int] = {}
    sources = set()
    for _heading, page in _parts(documents):
        if request.cancel.is_set():
            break
        text, source = grounding(request, page)
        page_fields: dict[str, object] | None = None
        if error is None:
            keys = ", ".join(json.dumps(key_of(n)) for n in names) or "every labelled field on the page"
            prompt = _with_text(
                f"Extract these fields from the page: {keys}. Reply with one JSON object only; "
                "use null for a field that is not on the page.", text, source)
            shape = fields_format([key_of(n) for n in names])  # the JSON is enforced while the model writes it
            answer = request.ask_vision(prompt, images=[page.image], response_format=shape).result().text
            page_fields = json_object(answer)
            if page_fields is not None:
                sources.add("the vision model")
        if page_fields is None:
            page_fields = dict(fields_from_text(text, names))
            sources.add(source or "OCR")
        for key, value in page_fields.items():
            key = key_of(str(key))
            if (names and key not in fields) or value in (None, "") or fields.get(key) not in (None, ""):
                continue
            fields[key], found_on[key] = value, page.number
    note = f"(Fields read by {' and '.join(sorted(sources))}"
    note += f"; the vision model is unavailable: {str(error).split('. ')[0].rstrip('.')})" if error else ")"
    return Reply(
        json.dumps(fields, indent=2, ensure_ascii=False) + "\n" + note,
        data={"fields": fields, "pages": found_on, "ocr_only": error is not None},
    )


# -- routing -----------------------------------------------------------------------------

# Screen words belong to the screen plugin; "do what the note says" to image_commands.
_NOT_SCREEN = r"^(?!.*\b(?:screen|monitor|window|dialog|desktop|cursor|pointer)\b)"
_NOT_ACTION = r"(?!.*\b(?:do|follow|carry out|execute|obey|perform)\b)"
_DOC = (
    r"(?:page|pages|document|doc|pdf|scan|scanned|file|letter|note|receipt|invoice|form|contract|text"
    r"|it|this|aloud|out loud)"
)


@hookimpl
def register_skills(register: Callable[[Skill], None]) -> None:
    register(Skill(
        "read", read, "Read or transcribe a document or image, page by page",
        examples=[
            "read this page", "read me this page", "read page 2", "read the document", "read this pdf",
            "read it aloud", "read it out loud", "read the text", "transcribe this", "transcribe this document",
            "transcribe the text in this image", "what is written in this document", "read this to me",
            "read me the letter", "read the scanned page", "read all pages",
        ],
        patterns=[
            _NOT_SCREEN + _NOT_ACTION + rf".*\b(?:read|transcribe|recite)\b.*\b{_DOC}\b",
            _NOT_SCREEN + r"^\W*(?:the\s+)?(?:next|last|first|\w+)?\s*page\s+\w+\W*$",
        ],
    ))
    register(Skill(
        "summarise", summarise, "Summarise a document, page by page",
        examples=[
            "summarise this document", "summarize this pdf", "give me a summary of this page",
            "what is this document about", "sum up this page", "main points of this document",
            "tldr of this pdf", "key points of this letter", "summarise page 2",
        ],
        patterns=[
            _NOT_SCREEN + r".*\b(?:summari[sz]e|summary|sum up|tl;?dr|gist|main points|key points)\b",
            _NOT_SCREEN + r".*\bwhat(?:'?s| is)\s+(?:this|the)\s+(?:document|pdf|page|letter|file)\s+about\b",
        ],
    ))
    register(Skill(
        "extract", extract, "Extract named fields from a document as JSON",
        examples=[
            "extract the fields as json", "extract the invoice number and total as json",
            "get the name and date from this form as json", "pull out the values from this document",
            "extract the fields from this receipt", "give me the fields of this form in json",
        ],
        patterns=[
            _NOT_SCREEN + r".*\b(?:extract|pull out)\b",
            _NOT_SCREEN + r".*\b(?:as|in|into|to)\s+(?:a\s+)?json\b",
        ],
    ))
    register(Skill(
        "question", question, "Answer a question about a document",
        examples=[
            "what does the document say about", "according to this document", "what is the total on this invoice",
            "what is the date on this letter", "who signed this contract", "find in the document",
            "what does page 2 say about", "in this pdf what is", "what is this", "what does it say",
            "what is in it", "what is it about",
        ],
        # Plain questions about a picture belong to general.ask; these need a real document.
        applies=document_in_play,
        patterns=[
            _NOT_SCREEN + r"\W*(?:what|what's|whats|who|whom|when|where|which|how|is|are|does|do|did|why|find"
            r"|according)\b.*\b(?:document|pdf|page \w+|this page|the page|invoice|receipt|letter|form"
            r"|contract|scan)\b",
        ],
    ))
