"""``labeeb serve``: the OpenAI-compatible API and the web page, run with uvicorn.

FastAPI, uvicorn and the model load inside the command, so ``labeeb --help`` stays fast.
"""

from __future__ import annotations

import ipaddress
import socket

import click

from labeeb.hookspecs import hookimpl


#: What this plugin can reach (`labeeb plugins`): it listens on server.host:server.port.
REACHES: list[str] = ["network"]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@hookimpl
def register_commands(cli: click.Group) -> None:
    @cli.command("serve")
    @click.option("--host", help="Address to listen on (server.host; default 127.0.0.1, this machine only).")
    @click.option("--port", type=click.IntRange(1, 65535), help="Port to listen on (server.port; default 8765).")
    @click.pass_context
    def serve(ctx: click.Context, host: str | None, port: int | None) -> None:
        """Serve Labeeb over HTTP: an OpenAI-compatible API and a web page.

        \b
        Endpoints: /  (web page), /health, /v1/models, /v1/chat/completions,
                   /v1/audio/transcriptions, /v1/audio/speech
        Example client:
          openai.OpenAI(base_url="http://127.0.0.1:8765/v1", api_key="x")
        """
        from labeeb.cli.app import get_app
        from labeeb.router import Router
        from labeeb.server.app import create_app
        from labeeb.server.chat import SCREEN_PLUGINS

        app = get_app(ctx)
        settings = app.loaded.settings
        server = settings.server
        if host:
            server.host = host
        if port:
            server.port = port
        # Routes with every plugin first, so screen questions get a clear refusal; then the
        # screen plugins leave this server's host unless clients may see the screen.
        screen_router = Router(app.host.skills(), settings.router.threshold)
        if not server.allow_screen:
            for name in SCREEN_PLUGINS:
                app.host.unregister(name)
        assistant = app.assistant
        sock = listen(server.host, server.port)
        if not is_loopback(server.host) and not server.api_key:
            click.echo(
                f"labeeb: WARNING: listening on {server.host} without an API key: anyone who can reach "
                "this port can use the model. Set server.api_key (LABEEB_SERVER__API_KEY).",
                err=True,
            )
        api = create_app(assistant, server, screen_router=screen_router)
        shown = f"[{server.host}]" if ":" in server.host else server.host
        click.echo(f"Labeeb serving on http://{shown}:{server.port}/  (OpenAI API at /v1, Ctrl-C to stop)", err=True)

        import uvicorn

        class Server(uvicorn.Server):
            def handle_exit(self, sig: int, frame: object) -> None:
                if not self.should_exit:  # the first SIGTERM/Ctrl-C: finish answers, then stop
                    api.state.labeeb.drain()
                super().handle_exit(sig, frame)  # type: ignore[arg-type]

        from labeeb.server.connections import uvicorn_config

        config = uvicorn_config(api, server, timeout_graceful_shutdown=5)
        try:
            Server(config).run(sockets=[sock])
        except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it handled: a clean stop
            pass
        click.echo("Labeeb stopped.", err=True)


def listen(host: str, port: int) -> socket.socket:
    """Bind the port before anything else, so a taken port is one clear sentence."""
    from labeeb.cli.app import fail

    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another with --port "
             "or --host (server.port, server.host)")
    sock.set_inheritable(True)
    return sock
