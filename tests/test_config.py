import sys
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from labeeb.config import ConfigError, Settings
from labeeb.config_sources import load_config

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]


def test_config_toml_documents_exactly_the_defaults():
    documented = tomllib.loads((REPO / "config.toml").read_text())
    assert Settings.model_validate(documented) == Settings()
    # and every default key appears in the file (nothing undocumented)
    def keys(d, prefix=""):
        for k, v in d.items():
            if isinstance(v, dict) and k != "settings":
                yield from keys(v, f"{prefix}{k}.")
            else:
                yield f"{prefix}{k}"
    assert set(keys(Settings().model_dump())) == set(keys(documented))


def test_defaults_when_no_file(tmp_path):
    loaded = load_config(environ={"XDG_CONFIG_HOME": str(tmp_path)})
    assert loaded.settings == Settings()
    assert loaded.sources["vision.model"] == "default"


def test_file_then_env_precedence_and_sources(tmp_path):
    file = tmp_path / "c.toml"
    file.write_text('[vision]\nmodel = "/models/a"\nmax_new_tokens = 12\n')
    loaded = load_config(file, environ={"LABEEB_VISION__MAX_NEW_TOKENS": "34", "LABEEB_PLUGINS__DISABLED": "a, b"})
    assert loaded.settings.vision.model == "/models/a"
    assert loaded.settings.vision.max_new_tokens == 34
    assert loaded.settings.plugins.disabled == ["a", "b"]
    assert loaded.sources["vision.model"] == str(file)
    assert loaded.sources["vision.max_new_tokens"] == "env LABEEB_VISION__MAX_NEW_TOKENS"


def test_labeeb_config_env_var_names_the_file(tmp_path):
    file = tmp_path / "c.toml"
    file.write_text("[router]\nthreshold = 90\n")
    assert load_config(environ={"LABEEB_CONFIG": str(file)}).settings.router.threshold == 90


@pytest.mark.parametrize(
    "text, expected",
    [
        ('[vision]\nmodle = "x"\n', "vision.modle: unknown key (allowed here: backend,"),
        ('[vision]\ndtype = "int3"\n', "vision.dtype: Input should be 'auto', 'float32', 'bfloat16' or 'float16'"),
        ("[router]\nthreshold = 'high'\n", "router.threshold"),
        ("[nonsense]\na = 1\n", "nonsense: unknown key (allowed here: "),
        ("[vision\n", "is not valid TOML"),
    ],
)
def test_bad_config_names_key_and_file(tmp_path, text, expected):
    file = tmp_path / "bad.toml"
    file.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(file, environ={})
    assert expected in str(err.value)
    if "allowed here" in expected:
        assert "vision" in str(err.value) or "device" in str(err.value)
    if "TOML" not in expected:
        assert str(file) in str(err.value)


def test_unreadable_and_missing_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml", environ={})
    with pytest.raises(ConfigError, match="directory"):
        load_config(tmp_path, environ={})
    (tmp_path / "binary.toml").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(tmp_path / "binary.toml", environ={})


def test_bad_env_value_names_the_variable():
    with pytest.raises(ConfigError, match=r"vision.max_new_tokens: .*\[from env LABEEB_VISION__MAX_NEW_TOKENS\]"):
        load_config(environ={"LABEEB_VISION__MAX_NEW_TOKENS": "lots", "XDG_CONFIG_HOME": "/nonexistent"})


toml_scalars = st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False),
                         st.text(max_size=20), st.booleans(), st.lists(st.text(max_size=5), max_size=3))
keys = st.sampled_from(["vision", "plugins", "router", "context", "model", "timeout", "threshold", "x", "max_images"])
config_dicts = st.recursive(st.dictionaries(keys, toml_scalars, max_size=4),
                            lambda children: st.dictionaries(keys, children, max_size=3), max_leaves=8)


@settings(max_examples=150, deadline=None)
@given(config_dicts)
def test_any_config_is_loaded_or_explained(tmp_path_factory, data):
    import tomli_w

    file = tmp_path_factory.mktemp("h") / "c.toml"
    file.write_bytes(tomli_w.dumps(data).encode())
    try:
        load_config(file, environ={})
    except ConfigError as exc:
        assert str(exc)


def test_labeeb_config_command_shows_values_and_sources(labeeb_cli, tmp_path):
    file = tmp_path / "c.toml"
    file.write_text('[vision.openai]\napi_key = "sk-secret"\n[router]\nthreshold = 85\n')
    result = labeeb_cli("--config", str(file), "config", env={"LABEEB_VISION__MAX_NEW_TOKENS": "99"})
    assert result.returncode == 0, result.stderr
    assert "router.threshold" in result.stdout and f"85.0   # {file}" in result.stdout
    assert "vision.max_new_tokens" in result.stdout and "# env LABEEB_VISION__MAX_NEW_TOKENS" in result.stdout
    assert "sk-secret" not in result.stdout


def test_cli_reports_bad_config_and_exits_2(labeeb_cli, tmp_path):
    file = tmp_path / "c.toml"
    file.write_text("[vision]\ndevice = 'quantum'\n")
    result = labeeb_cli("--config", str(file), "ask", "hello")
    assert result.returncode == 2
    assert "vision.device" in result.stderr and "Traceback" not in result.stderr
