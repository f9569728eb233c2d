"""Labeeb's built-in plugins (installed as ``labeeb_plugins``).

Each module is a plugin registered through the ``labeeb`` entry-point group in
``pyproject.toml``, exactly like a third-party plugin; deleting one leaves the host working.
"""
