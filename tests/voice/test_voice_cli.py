"""The command line as a user runs it: ``labeeb listen --from-file``, ``--speak`` for ask/chat."""

from __future__ import annotations

import json

import pytest

from labeeb.voice.audio import read_audio
from voice_kit import rms

TINY = {"LABEEB_STT__MODEL": "tiny.en"}


def test_listen_from_file_routes_to_the_screen_and_speaks_the_answer(labeeb_cli, espeak, xvfb, tiny_model_dir, tmp_path, whisper):
    """The issue's "done when": espeak-ng audio in, screen plugin on Xvfb, answer spoken to a WAV."""
    out = tmp_path / "answer.wav"
    env = {**TINY, "DISPLAY": xvfb, "LABEEB_VISION__MODEL": str(tiny_model_dir), "LABEEB_VISION__MAX_NEW_TOKENS": "8"}
    done = labeeb_cli("listen", "--from-file", str(espeak("what is on my screen")), "--json", "--speak-to", str(out), env=env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert "screen" in result["transcript"].lower()
    assert (result["plugin"], result["skill"], result["error"]) == ("screen", "describe", False)
    assert result["text"] and result["heard"] and result["data"]["screenshot"]["rect"]["width"] == 1024
    assert set(result["timings"]) >= {"transcribe", "route", "ttft", "first_audio", "total"}
    assert all(result["timings"][k] is not None for k in ("transcribe", "route", "ttft", "total"))
    # the tiny model's answer is random words; whatever it said was spoken into the file
    assert result["spoken_to"] == str(out)
    assert rms(read_audio(out)) > 0.02


def test_listen_from_file_speaks_a_known_answer_that_whisper_hears_back(labeeb_cli, espeak, tmp_path, whisper):
    out = tmp_path / "help.wav"
    done = labeeb_cli("listen", "--from-file", str(espeak("what can you do")), "--json", "--speak-to", str(out), env=TINY)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["plugin"], result["skill"]) == ("general", "help")
    assert result["text"].startswith("I can help with:")
    audio = read_audio(out)
    assert rms(audio) > 0.02 and len(audio) / 16000 > 5  # the whole help text, sentence by sentence
    assert "help" in whisper.transcribe(audio[: 16000 * 6]).text.lower()


def test_listen_plain_output_shows_transcript_answer_and_timings(labeeb_cli, espeak):
    done = labeeb_cli("listen", "--from-file", str(espeak("what can you do")), "--no-speak", env=TINY)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("you> What can you do?\nlabeeb> I can help with:")
    assert "transcribe" in done.stderr and "route" in done.stderr


@pytest.mark.parametrize("kind", ["silence", "noise"])
def test_silence_or_noise_file_is_not_caught_and_does_not_crash(labeeb_cli, tmp_path, kind):
    import soundfile

    from voice_kit import noise, silence

    path = tmp_path / f"{kind}.wav"
    soundfile.write(path, silence(2.0) if kind == "silence" else noise(2.0, 0.3), 16000)
    done = labeeb_cli("listen", "--from-file", str(path), "--json", "--speak-to", str(tmp_path / "o.wav"), env=TINY)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["heard"] is False and result["transcript"] == "" and result["text"] == "I didn't catch that."
    assert rms(read_audio(tmp_path / "o.wav")) > 0.02
    plain = labeeb_cli("listen", "--from-file", str(path), "--no-speak", env={**TINY, "LABEEB_LISTEN__NOT_HEARD": '""'})
    assert plain.returncode == 0 and plain.stdout == ""


@pytest.mark.parametrize(
    "args, message",
    [
        (["--from-file", "{tmp}/missing.wav"], "audio file not found"),
        (["--from-file", "{tmp}/bad.wav"], "cannot read"),
        (["--from-file", "{speech}", "--speak-to", "{tmp}/no/such/dir/o.wav"], "does not exist"),
    ],
)
def test_bad_input_is_a_clear_error(labeeb_cli, tmp_path, espeak, args, message):
    (tmp_path / "bad.wav").write_text("this is not audio")
    args = [a.format(tmp=tmp_path, speech=espeak("help")) for a in args]
    done = labeeb_cli("listen", *args, env=TINY)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_missing_speech_model_is_a_clear_error(labeeb_cli, espeak, tmp_path):
    done = labeeb_cli("listen", "--from-file", str(espeak("help")), "--model", str(tmp_path / "nowhere"))
    assert done.returncode == 1 and "directory" in done.stderr and "not found" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_microphone_that_does_not_exist(labeeb_cli):
    done = labeeb_cli("listen", "--device", "no such microphone", env=TINY)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "no input device matches 'no such microphone'" in done.stderr


def test_list_devices_and_help(labeeb_cli):
    assert labeeb_cli("listen", "--list-devices").returncode == 0
    helped = labeeb_cli("listen", "--help")
    assert helped.returncode == 0 and "--from-file" in helped.stdout and "--speak-to" in helped.stdout
    assert "listen" in labeeb_cli("--help").stdout


def _only_the_speech_warning(stderr: str) -> bool:
    lines = [line for line in stderr.splitlines() if line.strip()]
    return not lines or (len(lines) == 1 and "answers are shown as text only" in lines[0])


def test_ask_and_chat_speak_flags(labeeb_cli):
    asked = labeeb_cli("ask", "--speak", "what can you do")
    assert asked.returncode == 0 and asked.stdout.startswith("I can help with:")
    assert _only_the_speech_warning(asked.stderr), asked.stderr
    chatted = labeeb_cli("chat", "--speak", input="help\n/quit\n")
    assert chatted.returncode == 0 and "I can help with:" in chatted.stdout and "Bye." in chatted.stdout
    assert _only_the_speech_warning(chatted.stderr), chatted.stderr
    quiet = labeeb_cli("ask", "--no-speak", "what can you do")
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_doctor_checks_the_speech_model(labeeb_cli):
    ok = labeeb_cli("doctor", env=TINY)
    assert "OK   speech recognition: Whisper tiny.en at" in ok.stdout
    missing = labeeb_cli("doctor", env={"LABEEB_STT__MODEL": "/nowhere/whisper"})
    assert "WARN speech recognition: stt.model: directory /nowhere/whisper not found" in missing.stdout


def test_listen_loop_wiring_with_the_microphone_replaced(monkeypatch, speech):
    """`labeeb listen` end to end in-process, the microphone swapped for recorded speech."""
    import numpy as np
    from click.testing import CliRunner

    import labeeb.voice.audio
    from labeeb.cli import App, create_cli
    from labeeb.voice.audio import blocks
    from voice_kit import silence

    recorded = np.concatenate([silence(0.5), speech("what can you do"), silence(1.0), speech("help"), silence(1.0)])

    class RecordedMicrophone:
        name = "recorded microphone"

        def __init__(self, device=None):
            assert device == "2"

        def frames(self):
            yield from blocks(recorded, 480)

        def close(self):
            pass

    monkeypatch.setattr(labeeb.voice.audio, "MicrophoneSource", RecordedMicrophone)
    monkeypatch.setenv("LABEEB_STT__MODEL", "tiny.en")
    app = App(None)
    cli = create_cli()
    app.host.add_commands(cli)
    result = CliRunner().invoke(cli, ["listen", "--no-speak", "--device", "2"], obj=app)
    assert result.exit_code == 0, result.output
    assert "Listening on recorded microphone" in result.stderr
    assert result.stdout.count("labeeb> I can help with:") == 2
    assert "you> What can you do?" in result.stdout
    assert result.stderr.count("[transcribe") == 2
    # Listening loads the vision model in the background (to look while listening): here
    # there is none to load, which is kept for the first question to report.
    assert "Loading the vision model in the background" in result.stderr
    assert app.assistant.vision.status().startswith("failed:")
    as_json = CliRunner().invoke(cli, ["listen", "--no-speak", "--json", "--device", "2"], obj=app)
    turns = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [(t["plugin"], t["skill"]) for t in turns] == [("general", "help")] * 2


def test_listen_with_a_document_attached_reads_it(labeeb_cli, espeak, tiny_model_dir, tmp_path):
    """Issue 16: `labeeb listen --from-file q.wav --image scan.pdf`, "read the first page"."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "documents"))
    from doc_samples import write_scan

    scan = write_scan(tmp_path / "scan.pdf", [["INVOICE 4471", "Total due: 93.50"], ["Page two"]])
    env = {**TINY, "LABEEB_VISION__MODEL": str(tiny_model_dir), "LABEEB_VISION__MAX_NEW_TOKENS": "4",
           "LABEEB_VISION__DTYPE": "float32"}
    done = labeeb_cli("listen", "--from-file", str(espeak("read the first page")), "--image", str(scan), "--json",
                      env=env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert "first page" in result["transcript"].lower()
    assert (result["plugin"], result["skill"], result["error"]) == ("documents", "read", False), result["text"]
    bad = labeeb_cli("listen", "--from-file", str(espeak("read it")), "--image", str(tmp_path / "missing.pdf"), env=TINY)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
