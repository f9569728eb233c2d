"""A real headless Wayland desktop for the screen tests: sway, foot windows, and the portal.

``Sway`` starts sway with its headless backend (no GPU, no input devices, the pixman
renderer) in a private runtime directory. sway will not run as root, so under root (CI) it
runs as an unprivileged user made for the purpose; root can still reach its sockets. Windows
are ``foot`` terminals printing known text, started by sway itself (``swaymsg exec``). With
``portal=True`` a private D-Bus session runs PipeWire (xdg-desktop-portal-wlr needs it) and
the real xdg-desktop-portal, which D-Bus starts with its wlr and gtk backends on first use.
Every wait is bounded; ``stop`` ends each process group this kit started.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import screen_kit

from labeeb.screen.geometry import Rect

USER = "labeebtest"
TOOLS = ("sway", "swaymsg", "grim", "foot")
PORTAL_TOOLS = ("dbus-daemon", "dbus-send", "pipewire")
PORTAL_PROGRAMS = ("/usr/libexec/xdg-desktop-portal", "/usr/libexec/xdg-desktop-portal-wlr", "/usr/libexec/xdg-desktop-portal-gtk")
BACKGROUND = (40, 90, 140)
APT = "apt install sway grim foot xdg-desktop-portal xdg-desktop-portal-wlr xdg-desktop-portal-gtk pipewire dbus"


def need(tools: tuple[str, ...]) -> None:
    missing = [t for t in tools if (shutil.which(t) if "/" not in t else (t if os.path.exists(t) else None)) is None]
    if missing:  # a broken test machine, not a feature gap: fail loudly
        pytest.fail(f"Wayland screen tests need {', '.join(missing)} ({APT})")


def wait_for(check, timeout: float = 20.0, what: str = "condition"):
    """screen_kit's wait, with the longer default a compositor's start needs."""
    return screen_kit.wait_for(check, timeout, what)


def _as_user() -> tuple[list[str], int | None]:
    """The command prefix that runs the compositor unprivileged, and that user's uid."""
    if os.geteuid() != 0:
        return [], None  # already unprivileged: run as ourselves
    import pwd

    try:
        uid = pwd.getpwnam(USER).pw_uid
    except KeyError:
        done = subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER],
                              capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            pytest.fail(f"cannot create the user {USER} to run sway as (sway refuses root): {done.stderr.strip()}")
        uid = pwd.getpwnam(USER).pw_uid
    return ["runuser", "-u", USER, "--"], uid


def _stop_group(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """End a process and the group it leads (it was started in a session of its own)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=timeout)
    try:  # children left in the group (D-Bus-activated portals) go too
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class Sway:
    def __init__(self, width: int = 1280, height: int = 800, portal: bool = False) -> None:
        need(TOOLS + ((*PORTAL_TOOLS, *PORTAL_PROGRAMS) if portal else ()))
        self.size = (width, height)
        self.procs: list[subprocess.Popen] = []
        self.dir = Path(tempfile.mkdtemp(prefix="labeeb-sway-"))
        prefix, uid = _as_user()
        runtime = self.dir / "run"
        runtime.mkdir(mode=0o700)
        (self.dir / "config").write_text(
            f"output HEADLESS-1 resolution {width}x{height} bg #{'%02x%02x%02x' % BACKGROUND} solid_color\n"
            "default_border pixel 2\nfont monospace 12\n"
        )
        if uid is not None:
            os.chown(self.dir, uid, -1)
            os.chown(runtime, uid, -1)
        self.log = self.dir / "sway.log"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.dir), "XDG_RUNTIME_DIR": str(runtime),
            "WLR_BACKENDS": "headless", "WLR_LIBINPUT_NO_DEVICES": "1", "WLR_RENDERER": "pixman", "LANG": "C.UTF-8",
        }
        with open(self.log, "wb") as log:
            self.sway = subprocess.Popen(
                [*prefix, "env", "-i", *(f"{k}={v}" for k, v in env.items()), "sway", "-c", str(self.dir / "config")],
                stdout=log, stderr=log, start_new_session=True,
            )
        try:
            wayland = wait_for(lambda: self._socket(runtime, "wayland-*"), what=f"sway's Wayland socket ({self._log_tail()})")
            ipc = wait_for(lambda: self._socket(runtime, "sway-ipc.*.sock"), what="sway's IPC socket")
            self.env = {
                "WAYLAND_DISPLAY": str(wayland), "SWAYSOCK": str(ipc),
                "XDG_SESSION_TYPE": "wayland", "XDG_CURRENT_DESKTOP": "sway",
            }
            wait_for(lambda: self.outputs(), what="sway's output")
            # swaybg, a client sway starts, paints the background a while after the output
            # exists; until then the screen is sway's grey (63, 63, 63)
            wait_for(lambda: self.grab().getpixel((5, 5)) == BACKGROUND, what=f"sway's background ({self._log_tail()})")
            if portal:
                self._start_portal()
        except BaseException:
            self.stop()
            raise

    def _socket(self, runtime: Path, pattern: str) -> Path | None:
        if self.sway.poll() is not None:
            raise AssertionError(f"sway exited ({self.sway.returncode}): {self._log_tail()}")
        found = [p for p in runtime.glob(pattern) if not p.name.endswith(".lock")]
        return found[0] if found else None

    def _log_tail(self) -> str:
        try:
            return " | ".join(self.log.read_text(errors="replace").strip().splitlines()[-5:])
        except OSError:
            return "no log"

    # -- what the tests use --------------------------------------------------------------------

    def swaymsg(self, *args: str) -> object:
        done = subprocess.run(["swaymsg", "-s", self.env["SWAYSOCK"], "-r", *args], capture_output=True, text=True, timeout=10)
        if done.returncode != 0:
            raise RuntimeError(f"swaymsg {' '.join(args)} failed: {done.stderr.strip() or done.stdout.strip()}")
        return json.loads(done.stdout)

    def outputs(self) -> list[Rect]:
        return [Rect(o["rect"]["x"], o["rect"]["y"], o["rect"]["width"], o["rect"]["height"])
                for o in self.swaymsg("-t", "get_outputs") if o.get("active")]

    def windows(self) -> dict[str, Rect]:
        """Titles and places of the application windows, straight from sway."""
        found: dict[str, Rect] = {}

        def walk(node: dict) -> None:
            if "app_id" in node and not node.get("nodes"):
                r = node["rect"]
                found[node.get("name") or ""] = Rect(r["x"], r["y"], r["width"], r["height"])
            for child in [*node.get("nodes", ()), *node.get("floating_nodes", ())]:
                walk(child)

        walk(self.swaymsg("-t", "get_tree"))  # type: ignore[arg-type]
        return found

    def grab(self):
        """The raw screen through grim (no Labeeb code involved)."""
        import io

        from PIL import Image

        done = subprocess.run(["grim", "-t", "ppm", "-"], capture_output=True, timeout=10,
                              env={**os.environ, **self.env})
        assert done.returncode == 0, done.stderr
        return Image.open(io.BytesIO(done.stdout)).convert("RGB")

    def show(self, text: str, title: str) -> Rect:
        """A foot window titled ``title`` printing ``text``; waits until sway placed it and
        every window has finished drawing. Returns where it is."""
        self.swaymsg("exec", f"foot -T {title} -o font=monospace:size=20 sh -c 'echo {text}; exec sleep 600'")
        wait_for(lambda: title in self.windows(), what=f"window {title!r}")
        last: list[bytes] = []

        def settled() -> bool:  # mapped is not drawn, and the other windows re-tile: two equal grabs
            image = self.grab().tobytes()
            same = bool(last) and last[-1] == image
            last.append(image)
            return same

        wait_for(settled, what="the screen to settle")
        time.sleep(0.2)
        wait_for(settled, what="the screen to settle")
        return self.windows()[title]

    # -- the portal ------------------------------------------------------------------------------

    def _start_portal(self) -> None:
        runtime = Path(tempfile.mkdtemp(prefix="labeeb-portal-"))
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.dir), "XDG_RUNTIME_DIR": str(runtime),
            "WAYLAND_DISPLAY": self.env["WAYLAND_DISPLAY"], "XDG_CURRENT_DESKTOP": "sway", "XDG_SESSION_TYPE": "wayland",
            "NO_AT_BRIDGE": "1", "GTK_A11Y": "none", "LANG": "C.UTF-8",
        }
        self.portal_runtime = runtime
        # xdg-desktop-portal-wlr only needs PipeWire's socket; PipeWire needs no D-Bus here.
        with open(self.dir / "pipewire.log", "wb") as log:
            self.procs.append(subprocess.Popen(["pipewire"], env=env, stdout=log, stderr=log, start_new_session=True))
        wait_for(lambda: (runtime / "pipewire-0").exists(), what="PipeWire")
        bus = start_bus(env, self.dir / "dbus.log")
        self.procs.append(bus.proc)
        env["DBUS_SESSION_BUS_ADDRESS"] = bus.address
        self.env["DBUS_SESSION_BUS_ADDRESS"] = bus.address
        # xdg-desktop-portal-wlr 0.7 misses a call that arrives while it starts (it answers
        # 25 s later), so it is started, and its name owned, before anything calls it.
        with open(self.dir / "portal-wlr.log", "wb") as log:
            self.procs.append(subprocess.Popen([PORTAL_PROGRAMS[1]], env=env, stdout=log, stderr=log, start_new_session=True))

        def owned(name: str) -> bool:
            done = subprocess.run(
                ["dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus",
                 "org.freedesktop.DBus.NameHasOwner", f"string:{name}"], capture_output=True, text=True, timeout=10, env=env,
            )
            return "boolean true" in done.stdout

        wait_for(lambda: owned("org.freedesktop.impl.portal.desktop.wlr"), what="xdg-desktop-portal-wlr")
        time.sleep(0.2)  # ... and has entered its main loop

        def answers() -> bool:  # D-Bus starts xdg-desktop-portal, which starts its backends
            done = subprocess.run(
                ["dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.portal.Desktop",
                 "/org/freedesktop/portal/desktop", "org.freedesktop.DBus.Properties.Get",
                 "string:org.freedesktop.portal.Screenshot", "string:version"],
                capture_output=True, text=True, timeout=30, env=env,
            )
            return done.returncode == 0

        wait_for(answers, timeout=40, what=f"the screenshot portal ({(self.dir / 'dbus.log').read_text(errors='replace')[-400:]})")

    def stop(self) -> None:
        for proc in reversed(self.procs):
            _stop_group(proc)
        try:  # sway's own way out is quicker than a signal through runuser
            self.swaymsg("exit")
            self.sway.wait(timeout=5)
        except (RuntimeError, ValueError, AttributeError, subprocess.SubprocessError):
            pass
        _stop_group(self.sway)
        shutil.rmtree(self.dir, ignore_errors=True)
        if getattr(self, "portal_runtime", None):
            shutil.rmtree(self.portal_runtime, ignore_errors=True)


class Bus:
    def __init__(self, proc: subprocess.Popen, address: str) -> None:
        self.proc, self.address = proc, address

    def stop(self) -> None:
        _stop_group(self.proc)


def start_bus(env: dict[str, str], log: Path) -> Bus:
    """A private D-Bus session daemon (and whatever it activates) in a process group of its own."""
    need(("dbus-daemon",))
    with open(log, "wb") as err:
        proc = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--print-address=1"], env=env,
                                stdout=subprocess.PIPE, stderr=err, start_new_session=True)
    ready, _, _ = select.select([proc.stdout], [], [], 20)
    address = proc.stdout.readline().decode().strip() if ready else ""  # type: ignore[union-attr]
    if not address:
        _stop_group(proc)
        raise AssertionError("dbus-daemon did not start")
    return Bus(proc, address)
