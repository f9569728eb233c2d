"""The command line as a user meets it."""

import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

from cli_runner import run_labeeb


def test_help_lists_commands_and_imports_nothing_heavy():
    code = (
        "import sys\nfrom labeeb.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'transformers', 'cv2', 'faster_whisper', 'fastapi', 'mss') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    for command in ("ask", "chat", "plugins", "config", "doctor"):
        assert f"  {command}" in out
    assert "HEAVY []" in out


def test_ask_explain_shows_scores_without_running_the_command():
    result = run_labeeb("ask", "--explain", "what can you do")
    assert result.returncode == 0
    assert "general.help" in result.stdout and "-> general.help (best score)" in result.stdout
    assert "I can help with" not in result.stdout  # explained, not answered
    data = json.loads(run_labeeb("ask", "--explain", "--json", "what can you do").stdout)
    assert data["skill"] == "general.help" and data["scores"][0]["skill"] == "general.help"


def test_ask_bad_image_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    result = run_labeeb("ask", "--image", str(bad), "describe")
    assert result.returncode == 2
    assert "not an image Labeeb can read" in result.stderr and "Traceback" not in result.stderr


def test_chat_attaches_images_streams_answers_and_survives_errors(tiny_model_dir, tmp_path):
    image = tmp_path / "photo one.png"
    Image.new("RGB", (300, 200), "blue").save(image)
    script = "\n".join([
        "/help",
        "/image /definitely/missing.png",
        f"'{image}'",                 # a drag-and-dropped path (quoted, with a space)
        "what is in the picture?",
        "/explain start over",
        "/nonsense",
        "what can you do",
        "/quit",
    ]) + "\n"
    result = run_labeeb("chat", env={"LABEEB_VISION__MODEL": str(tiny_model_dir),
                                     "LABEEB_VISION__MAX_NEW_TOKENS": "4"}, input=script)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "/image PATH" in out                         # help
    assert "usage: /image PATH" in result.stderr         # missing file refused
    assert "(attached photo one.png" in out
    assert "labeeb> " in out
    assert "-> general.forget" in out
    assert "unknown command /nonsense" in result.stderr
    assert "I can help with" in out and out.rstrip().endswith("Bye.")


def test_chat_without_model_keeps_working():
    result = run_labeeb("chat", input="describe the moon\nwhat can you do\n")
    assert result.returncode == 0
    assert "not in the local cache" in result.stdout
    assert "I can help with" in result.stdout


def test_doctor_reports_each_part(tmp_path):
    result = run_labeeb("doctor", env={"DISPLAY": ""})
    lines = result.stdout
    for part in ("config", "plugins", "vision model", "GPU", "screen capture", "microphone", "speech output"):
        assert f" {part}:" in lines, part
    assert "FAIL vision model" in lines and result.returncode == 1
    assert "no display is set (DISPLAY is empty" in lines


def test_doctor_ok_with_a_local_model(tiny_model_dir):
    result = run_labeeb("doctor", env={"LABEEB_VISION__MODEL": str(tiny_model_dir)})
    assert "OK   vision model" in result.stdout
    assert "nothing leaves this machine" in result.stdout


def test_doctor_and_config_say_whether_the_background_look_is_on_and_what_it_costs():
    on = next(line for line in run_labeeb("doctor").stdout.splitlines() if " background look:" in line)
    assert "on while listen and chat wait" in on and "0.25 of one core" in on and "background_look = false" in on
    off = run_labeeb("doctor", env={"LABEEB_SCREEN__BACKGROUND_LOOK": "false"}).stdout
    assert "background look: off" in off
    config = run_labeeb("config").stdout
    assert "screen.background_look" in config and "screen.background_budget" in config


def test_doctor_and_config_say_whether_the_screen_is_looked_at_while_a_command_is_asked():
    on = next(line for line in run_labeeb("doctor").stdout.splitlines() if " look while you ask:" in line)
    assert "on while a command is spoken or typed in chat" in on and "at most 0.5% of it changed" in on
    fresh = run_labeeb("doctor", env={"LABEEB_SCREEN__ASKED_CHANGE": "0"}).stdout
    assert "answered about a fresh capture (screen.asked_change = 0)" in fresh
    off = run_labeeb("doctor", env={"LABEEB_SCREEN__LOOK_WHILE_LISTENING": "false"}).stdout
    assert "look while you ask: off" in off
    assert "screen.asked_change" in run_labeeb("config").stdout


def test_doctor_says_when_speech_has_no_output_device():
    result = run_labeeb("doctor", env={"LABEEB_TTS__OUTPUT_DEVICE": "no-such-speaker"})
    line = next(line for line in result.stdout.splitlines() if " speech output:" in line)
    assert line.startswith("WARN") and "no audio output device" in line, line


def test_doctor_only_looks_and_blames_no_setting_it_made(tmp_path):
    """Doctor never downloads, and says so without pretending the user set HF_HUB_OFFLINE."""
    result = run_labeeb("doctor", env={"HF_HUB_OFFLINE": "", "HF_HUB_CACHE": str(tmp_path / "empty")})
    line = next(line for line in result.stdout.splitlines() if " vision model:" in line)
    assert line.startswith("FAIL") and "is not downloaded" in line and "HF_HUB_OFFLINE is set" not in line, line
    assert "hf download HuggingFaceTB/SmolVLM-256M-Instruct" in line


def test_ask_continue_resumes_the_last_conversation_with_its_attachments(tiny_model_dir, tmp_path):
    import os
    import stat

    picture = tmp_path / "receipt.png"
    Image.new("RGB", (300, 200), "white").save(picture)
    env = {"LABEEB_VISION__MODEL": str(tiny_model_dir), "LABEEB_VISION__DTYPE": "float32"}
    nothing = run_labeeb("ask", "--continue", "and the date?", env=env)
    assert nothing.returncode == 2 and "no earlier `labeeb ask` to continue" in nothing.stderr
    first = json.loads(run_labeeb("ask", "--json", "--max-tokens", "2", "-i", str(picture), "what is the total?",
                                  env=env).stdout)
    fresh = json.loads(run_labeeb("ask", "--json", "--max-tokens", "2", "-i", str(picture), "and the date?",
                                  env=env).stdout)
    run_labeeb("ask", "--json", "--max-tokens", "2", "-i", str(picture), "what is the total?", env=env)
    follow = run_labeeb("ask", "--json", "--max-tokens", "2", "--continue", "and the date?", env=env)
    assert follow.returncode == 0, follow.stderr
    resumed = json.loads(follow.stdout)
    # The same picture, and the earlier question and answer, reached the model.
    assert resumed["usage"]["prompt_tokens"] > fresh["usage"]["prompt_tokens"] > 64
    assert first["usage"]["prompt_tokens"] > 64
    saved = next(Path(os.environ["XDG_STATE_HOME"]).rglob("last-ask.json"))
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert [pair[0] for pair in json.loads(saved.read_text())["exchanges"]] == ["what is the total?", "and the date?"]
    picture.unlink()
    gone = run_labeeb("ask", "--continue", "and the date?", env=env)
    assert gone.returncode == 2 and "attachment is gone" in gone.stderr
