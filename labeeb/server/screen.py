"""The web page's screenshot button: this machine's screen as PNG, only with server.allow_screen.

The capture goes through ``labeeb.screen`` (the screen plugin's capture), so the private
areas and windows in ``[screen]`` are blacked out before the picture leaves the machine.
"""

from __future__ import annotations

import io
from typing import Any

from labeeb.server.errors import ApiError


def capture_png(settings: Any) -> bytes:
    """The configured monitor (default: every monitor), redacted, as PNG bytes."""
    from labeeb.screen import ScreenTargetError, ScreenUnavailableError, grab_for_options

    try:
        shot = grab_for_options(settings.screen, {"screen": True})
    except (ScreenUnavailableError, ScreenTargetError) as exc:
        raise ApiError(503, f"cannot capture the screen on this server: {exc}", "screen_unavailable") from None
    except Exception as exc:  # mss errors: no display, missing permissions
        raise ApiError(
            503, f"cannot capture the screen on this server ({exc.__class__.__name__}: {exc})",
            "screen_unavailable",
        ) from None
    buffer = io.BytesIO()
    shot.image.save(buffer, format="PNG")
    return buffer.getvalue()
