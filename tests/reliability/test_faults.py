"""Faults: plugins that print or leave threads running, and stopping ``labeeb serve``."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import httpx
import pytest
from PIL import Image

from cli_runner import REPO, run_labeeb
from labeeb import guard
from labeeb.hookspecs import hookimpl
from labeeb.messages import Command
from labeeb.skills import Skill
from labeeb.testing import FakeVision, make_assistant
from reliability_kit import Served, chat_body, data_url, encode, log_text

def test_a_plugin_that_prints_cannot_corrupt_json_answers(faulty):
    result = run_labeeb("ask", "tell me something chatty", "--json", env=faulty, timeout=120)
    assert result.returncode == 0, result.stderr
    reply = json.loads(result.stdout)  # nothing but the JSON object on stdout
    assert reply["text"] == "the chatty answer" and reply["plugin"] == "chatty"
    assert "DEBUG chatty was here" not in result.stdout
    log = log_text()
    assert "plugin 'chatty' printed to standard output" in log and "DEBUG chatty was here" in log


def test_labeeb_plugins_reports_printing_and_leaking_plugins_and_what_each_reaches(faulty):
    started = time.monotonic()
    result = run_labeeb("plugins", "--json", env=faulty, timeout=120)
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert any("printed to standard output" in p for p in rows["chatty"]["problems"])
    assert any("'leaky-register-worker'" in p and "register_skills" in p for p in rows["leaky"]["problems"])
    assert rows["chatty"]["reaches"] == ["network"] and rows["leaky"]["reaches"] is None
    assert rows["screen"]["reaches"] == ["screen"] and rows["documents"]["reaches"] == ["files"]
    assert rows["backends"]["reaches"] == ["network"] and rows["general"]["reaches"] == []
    assert rows["general"]["problems"] == []
    assert time.monotonic() - started < 60  # the leaked thread did not keep it running
    table = run_labeeb("plugins", env=faulty, timeout=120).stdout
    assert "undeclared" in table and "warning" in table


def test_a_thread_a_plugin_leaves_running_does_not_keep_labeeb_alive(faulty):
    result = run_labeeb("ask", "start the leaky worker", env=faulty, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "started a worker" in result.stdout
    log = log_text()
    assert "left thread 'leaky-skill-worker' running after skill leaky.leaky" in log
    assert "exiting although" in log and "leaky-skill-worker" in log


def test_in_process_prints_go_to_the_log_and_the_answer_is_intact(capsys):
    def talk(request):
        print("noise from a skill")
        return "clean answer"

    plugin = types.SimpleNamespace(register_skills=hookimpl(
        lambda register: register(Skill("talk", talk, examples=["talk to the noisy one"]))
    ))
    with make_assistant(plugins={"noisy": plugin}, vision=FakeVision()) as assistant:
        reply = assistant.handle(Command("talk to the noisy one"))
        print("the front end's own output")
    assert reply.text == "clean answer"
    out = capsys.readouterr().out
    assert "noise from a skill" not in out and "the front end's own output" in out
    assert guard.problems("noisy") and "printed" in guard.problems("noisy")[0]


def test_daemon_threads_and_finished_threads_are_not_reported():
    def tidy(request):
        worker = threading.Thread(target=lambda: None)
        worker.start()
        worker.join()
        threading.Thread(target=threading.Event().wait, args=(0.5,), daemon=True).start()
        return "tidy"

    plugin = types.SimpleNamespace(register_skills=hookimpl(
        lambda register: register(Skill("tidy", tidy, examples=["run the tidy skill"]))
    ))
    with make_assistant(plugins={"tidy": plugin}, vision=FakeVision()) as assistant:
        assert assistant.handle(Command("run the tidy skill")).text == "tidy"
    assert guard.problems("tidy") == []


# -- stopping the server ---------------------------------------------------------------------

PNG = data_url(encode(Image.new("RGB", (64, 48), (200, 30, 30))))


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stopping_the_server_answers_everyone_flushes_the_history_and_exits(tiny_model_dir, tmp_path, sig):
    srv = Served(tmp_path, tiny_model_dir, config="[vision.cache]\nenabled = false\n").start()
    try:
        done = httpx.post(srv.url + "/v1/chat/completions", json=chat_body("what can you do"), timeout=120)
        assert done.status_code == 200
        results: dict[str, object] = {}
        streaming = threading.Event()

        def long_stream() -> None:
            body = chat_body("describe it", PNG, model=str(tiny_model_dir), max_tokens=7000, stream=True)
            with httpx.stream("POST", srv.url + "/v1/chat/completions", json=body, timeout=120) as response:
                lines = []
                for line in response.iter_lines():
                    if line:
                        lines.append(line)
                        if '"content":"' in line and '"content":""' not in line:
                            streaming.set()
                results["stream"] = (response.status_code, lines)

        def queued() -> None:
            response = httpx.post(srv.url + "/v1/chat/completions", json=chat_body("and now?", PNG, max_tokens=4), timeout=120)
            results["queued"] = (response.status_code, response.json())

        threads = [threading.Thread(target=long_stream)]
        threads[0].start()
        assert streaming.wait(120), srv.log()
        threads.append(threading.Thread(target=queued))
        threads[1].start()
        deadline = time.monotonic() + 30
        while httpx.get(srv.url + "/health", timeout=10).json()["queue"]["waiting"] < 1:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        srv.process.send_signal(sig)
        code = srv.process.wait(timeout=30)  # no thread keeps it alive
        for thread in threads:
            thread.join(timeout=30)
    finally:
        srv.stop()
    assert code in (0, -signal.SIGTERM), srv.log()
    status, lines = results["stream"]
    assert status == 200 and lines[-1] == "data: [DONE]"  # the stream ended properly ...
    error = json.loads(lines[-2][len("data: "):])["error"]  # ... saying why it stopped
    assert error["code"] == "server_shutting_down"
    status, body = results["queued"]
    assert status == 503 and body["error"]["code"] == "server_shutting_down"
    log = srv.log()
    assert "Traceback" not in log and "Cancel" not in log  # nobody was cut off by uvicorn
    from labeeb.history import default_path

    with sqlite3.connect(default_path()) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        turns = db.execute("SELECT source, text, plugin, answer FROM turns ORDER BY id").fetchall()
    assert [t[:3] for t in turns] == [("api", "what can you do", "general"), ("api", "describe it", "vision")]
    assert turns[1][3]  # the part of the answer that was streamed is kept
    wal = default_path().with_name(default_path().name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0  # flushed into the database at shutdown


# -- the screen going away mid-session -------------------------------------------------------


def start_xvfb(display: int) -> subprocess.Popen[bytes]:
    socket_path = Path(f"/tmp/.X11-unix/X{display}")
    process = subprocess.Popen(["Xvfb", f":{display}", "-screen", "0", "800x600x24", "-nolisten", "tcp"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not socket_path.exists():
        assert process.poll() is None and time.monotonic() < deadline, "Xvfb did not start"
        time.sleep(0.05)
    return process


def free_display() -> int:
    return next(n for n in range(140, 400) if not Path(f"/tmp/.X11-unix/X{n}").exists()
                and not Path(f"/tmp/.X{n}-lock").exists())


class Lines:
    """Lines of a pipe, read in a thread, waited for with a timeout."""

    def __init__(self, pipe) -> None:
        import queue

        self.queue: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=lambda: [self.queue.put(line) for line in pipe], daemon=True).start()

    def wait_for(self, text: str, timeout: float = 60) -> str:
        while True:
            line = self.queue.get(timeout=timeout)
            self.seen.append(line)
            if text in line:
                return line


def test_watch_reports_a_lost_screen_and_goes_on_when_it_is_back(tmp_path):
    display = free_display()
    processes = [start_xvfb(display)]
    env = {**os.environ, "DISPLAY": f":{display}"}
    watch = subprocess.Popen([sys.executable, "-m", "labeeb", "watch", "--interval", "0.2", "--no-describe"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    try:
        out, err = Lines(watch.stdout), Lines(watch.stderr)
        err.wait_for("Watching the whole screen")
        processes[0].terminate()  # the X server goes away mid-session
        processes[0].wait(timeout=30)
        assert "still watching" in err.wait_for("screen capture failed")
        assert watch.poll() is None
        processes.append(start_xvfb(display))  # ... and comes back
        err.wait_for("screen capture works again")
        processes.append(subprocess.Popen(["xmessage", "-geometry", "+200+150", "back again"], env=env))
        assert "changed" in out.wait_for("changed")
        watch.send_signal(signal.SIGINT)
        assert watch.wait(timeout=30) == 0
    finally:
        for process in [watch, *processes]:
            if process.poll() is None:
                process.kill()
                process.wait()
