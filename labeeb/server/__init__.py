"""``labeeb serve``: an OpenAI-compatible API and a web page over one shared assistant.

``create_app(assistant, settings.server)`` builds the FastAPI app; ``plugins/server.py``
adds the ``labeeb serve`` command that runs it with uvicorn.
"""
