"""Third-party plugins installed for real with pip, found through the entry-point group."""

import json
import subprocess
import sys

import pytest

from cli_runner import REPO, run_labeeb


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """pip-install the example plugin and the misbehaving plugins into a fresh directory."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(REPO / "examples" / "labeeb-hello"),
         str(REPO / "tests" / "plugins" / "labeeb-misbehaving")],
        check=True, capture_output=True, text=True,
    )
    return target


def env_for(site, **extra):
    return {"PYTHONPATH": str(site), "LABEEB_PLUGINS__HOOK_TIMEOUT": "1", **extra}


@pytest.fixture
def autoload(monkeypatch):
    monkeypatch.delenv("LABEEB_DISABLE_PLUGIN_AUTOLOAD", raising=False)


def plugins_json(site, **extra):
    result = run_labeeb("plugins", "--json", env=env_for(site, **extra))
    assert result.returncode == 0, result.stderr
    return {row["name"]: row for row in json.loads(result.stdout)}


def test_example_plugin_is_listed_and_broken_ones_failed(site, autoload):
    rows = plugins_json(site)
    hello = rows["hello"]
    assert hello["status"] == "loaded" and hello["version"] == "1.0.0"
    assert hello["source"] == "distribution labeeb-hello"
    assert hello["hooks"] == ["register_commands", "register_skills"]
    assert hello["skills"] == ["greet", "colour"]
    assert rows["general"]["source"] == "built-in" and rows["general"]["status"] == "loaded"
    assert rows["broken_import"]["status"] == "failed"
    assert "ModuleNotFoundError" in rows["broken_import"]["error"]
    assert "RuntimeError: boom while registering" in rows["raises_on_register"]["error"]
    assert "did not finish within 1 s" in rows["hangs_on_register"]["error"]
    assert "takes one Skill" in rows["wrong_type"]["error"]


def test_command_in_its_phrases_reaches_it_while_broken_plugins_are_reported(site, autoload):
    result = run_labeeb("ask", "say hello", "--json", env=env_for(site))
    assert result.returncode == 0, result.stderr
    reply = json.loads(result.stdout)
    assert (reply["plugin"], reply["skill"]) == ("hello", "greet")
    assert reply["text"].startswith("Hello!")
    assert "plugin 'broken_import' failed to load" in result.stderr
    assert "Traceback" not in result.stderr


def test_plugin_settings_and_cli_subcommand(site, autoload, tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('[plugins.settings.hello]\ngreeting = "Salam"\n')
    result = run_labeeb("--config", str(config), "ask", "greet me", "--json", env=env_for(site))
    assert json.loads(result.stdout)["text"].startswith("Salam!")
    result = run_labeeb("hello", "Amina", env=env_for(site))
    assert result.returncode == 0 and result.stdout.strip() == "Hello, Amina!"


def test_misbehaving_skills_get_error_replies_and_chat_continues(site, autoload):
    script = "make the skill explode\nreturn garbage please\nmake the skill hang forever\nsay hello\n/quit\n"
    result = run_labeeb("chat", env=env_for(site, LABEEB_PLUGINS__TIMEOUT="1"), input=script)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "bad_skills.explode skill failed: ValueError: skill exploded" in out
    assert "returned int" in out
    assert "no answer within 1 s" in out
    assert "Hello! I am Labeeb" in out and out.rstrip().endswith("Bye.")


def test_autoload_off_and_disable_list(site, autoload):
    rows = plugins_json(site, LABEEB_DISABLE_PLUGIN_AUTOLOAD="1")
    assert "hello" not in rows and rows["general"]["status"] == "loaded"
    rows = plugins_json(site, LABEEB_PLUGINS__DISABLED="hello,broken_import,hangs_on_register")
    assert rows["hello"]["status"] == "disabled" and rows["broken_import"]["status"] == "disabled"
    rows = plugins_json(site, LABEEB_PLUGINS__AUTOLOAD="false")
    assert "hello" not in rows


def test_plugins_table_for_people(site, autoload):
    result = run_labeeb("plugins", env=env_for(site))
    assert result.returncode == 0
    assert "labeeb-hello" in result.stdout and "failed" in result.stdout
