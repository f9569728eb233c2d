"""Screenshots through the desktop's portal (``org.freedesktop.portal.Screenshot``).

The one way every Wayland desktop (GNOME, KDE, wlroots with xdg-desktop-portal-wlr) lets an
app capture the screen. The call returns a request handle at once; the answer comes later as
a ``Response`` signal on that handle, possibly after the desktop asked the user (GNOME asks
once per app). The wait is bounded; when it is not answered quickly, :func:`screenshot`
calls ``waiting`` so the user learns why nothing happens yet. Spoken over D-Bus with jeepney
(pure Python, no GLib).
"""

from __future__ import annotations

import secrets
import time
from typing import Any, Callable

from labeeb.screen.geometry import ScreenUnavailableError

DESKTOP = "org.freedesktop.portal.Desktop"
PATH = "/org/freedesktop/portal/desktop"
INTERFACE = "org.freedesktop.portal.Screenshot"
CALL_TIMEOUT = 10.0  # for the method calls themselves; the user's answer has its own limit
INSTALL = (
    "Fix: install xdg-desktop-portal and your desktop's backend (GNOME: xdg-desktop-portal-gnome, "
    "KDE: xdg-desktop-portal-kde, sway and other wlroots desktops: xdg-desktop-portal-wlr with "
    "xdg-desktop-portal-gtk), or on wlroots install grim (screen.backend = \"grim\")."
)


def _connect() -> Any:
    from jeepney.io.blocking import open_dbus_connection

    try:
        return open_dbus_connection(bus="SESSION")
    except (OSError, KeyError, ValueError) as exc:
        why = "DBUS_SESSION_BUS_ADDRESS is not set" if isinstance(exc, KeyError) else str(exc) or type(exc).__name__
        raise ScreenUnavailableError(
            f"I cannot reach this session's D-Bus ({why}), which the desktop's "
            "screenshot portal answers on. Fix: run Labeeb inside your desktop session "
            "(DBUS_SESSION_BUS_ADDRESS must be set)."
        ) from None


def _unwrap(reply: Any, what: str) -> Any:
    from jeepney.wrappers import DBusErrorResponse, unwrap_msg

    try:
        return unwrap_msg(reply)
    except DBusErrorResponse as exc:
        raise ScreenUnavailableError(
            f"the desktop's screenshot portal is not available ({what}: {exc.name}: {' '.join(map(str, exc.data))}). "
            + INSTALL
        ) from None


def version() -> int:
    """The portal's Screenshot interface version; asks nothing of the user (for ``doctor``)."""
    from jeepney import DBusAddress, Properties

    with _connect() as conn:
        address = DBusAddress(PATH, bus_name=DESKTOP, interface=INTERFACE)
        try:
            reply = conn.send_and_get_reply(Properties(address).get("version"), timeout=CALL_TIMEOUT)
        except TimeoutError:
            raise ScreenUnavailableError(f"the desktop's portal did not answer within {CALL_TIMEOUT:g} s. " + INSTALL) from None
        return int(_unwrap(reply, "version")[0][1])


def screenshot(timeout: float, waiting: Callable[[], None] | None = None, patience: float = 1.0) -> str:
    """Ask the portal for a screenshot of the whole screen; the ``file://`` URI of the image.

    :param timeout: seconds to wait for the answer (the user may be looking at a dialog).
    :param waiting: called once when no answer came within ``patience`` seconds.
    """
    from jeepney import DBusAddress, MatchRule, message_bus, new_method_call
    from jeepney.io.blocking import Proxy

    with _connect() as conn:
        token = "labeeb" + secrets.token_hex(8)
        sender = conn.unique_name.lstrip(":").replace(".", "_")
        handle = f"{PATH}/request/{sender}/{token}"
        # Subscribe before asking, so a fast answer cannot slip past.
        rule = MatchRule(type="signal", interface="org.freedesktop.portal.Request", member="Response")
        Proxy(message_bus, conn, timeout=CALL_TIMEOUT).AddMatch(rule)
        with conn.filter(rule) as responses:
            options = {"handle_token": ("s", token), "modal": ("b", False), "interactive": ("b", False)}
            call = new_method_call(DBusAddress(PATH, bus_name=DESKTOP, interface=INTERFACE), "Screenshot", "sa{sv}", ("", options))
            try:
                reply = conn.send_and_get_reply(call, timeout=CALL_TIMEOUT)
            except TimeoutError:
                raise ScreenUnavailableError(f"the desktop's portal did not answer within {CALL_TIMEOUT:g} s. " + INSTALL) from None
            handles = {handle, _unwrap(reply, "Screenshot")[0]}  # portals before 0.9 choose their own path
            started = time.monotonic()
            signal = _response(conn, responses, handles, started + min(patience, timeout)) if waiting else None
            if signal is None:
                if waiting is not None:
                    waiting()
                signal = _response(conn, responses, handles, started + timeout)
            if signal is None:
                _close(conn, handles)
                raise ScreenUnavailableError(
                    f"the desktop did not answer the screenshot request within {timeout:g} s (is a "
                    "permission dialog waiting for you?). Fix: allow Labeeb to take screenshots in the "
                    "dialog or in your desktop's privacy settings (GNOME: Settings > Apps > Screenshots)."
                )
        code, results = signal.body
    if code == 1:
        raise ScreenUnavailableError("the screenshot was declined (the desktop's dialog was cancelled or denied)")
    if code != 0 or "uri" not in results:
        raise ScreenUnavailableError(f"the desktop's screenshot portal failed (response {code}). " + INSTALL)
    return str(results["uri"][1])


def _response(conn: Any, responses: Any, handles: set[str], until: float) -> Any:
    """The ``Response`` signal for one of ``handles``, or None when ``until`` passes first."""
    from jeepney import HeaderFields

    while (left := until - time.monotonic()) > 0:
        try:
            signal = conn.recv_until_filtered(responses, timeout=left)
        except TimeoutError:
            return None
        if signal.header.fields.get(HeaderFields.path) in handles:
            return signal
    return None


def _close(conn: Any, handles: set[str]) -> None:
    """Withdraw a request nobody answered, so its dialog does not linger."""
    from jeepney import DBusAddress, new_method_call

    for handle in handles:
        try:
            conn.send(new_method_call(DBusAddress(handle, bus_name=DESKTOP, interface="org.freedesktop.portal.Request"), "Close"))
        except OSError:
            pass
