"""The plugin host with in-process plugins: isolation, order, enable/disable."""

import threading
import types

from labeeb.config import PluginsConfig
from labeeb.guard import problems
from labeeb.hookspecs import hookimpl
from labeeb.host import PluginHost
from labeeb.messages import Reply
from labeeb.skills import Skill
from labeeb.testing import FakeVision, make_assistant, run_command


def plugin(**hooks):
    """A plugin object from hook functions."""
    return types.SimpleNamespace(**{name: hookimpl(fn) for name, fn in hooks.items()})


def good_skills(register):
    register(Skill("ping", lambda r: "pong", examples=["ping the assistant"]))


def test_builtins_load_through_entry_points():
    host = PluginHost(PluginsConfig(), environ={"LABEEB_DISABLE_PLUGIN_AUTOLOAD": "1"})
    host.load_entrypoints()
    assert host.infos["general"].source == "built-in"
    assert host.infos["general"].status == "loaded"
    assert "register_skills" in host.infos["general"].hooks
    assert {"transformers", "openai"} <= set(host.vision_backends())


def test_raising_and_wrong_type_plugins_are_failed_and_others_keep_working():
    host = PluginHost(PluginsConfig())
    host.register(plugin(register_skills=good_skills), "good")

    def boom(register):
        raise RuntimeError("kaboom")

    host.register(plugin(register_skills=boom), "raiser")
    host.register(plugin(register_skills=lambda register: register("not a skill")), "wrong")
    skills = host.skills()
    assert [s.qualified_name for s in skills] == ["good.ping"]
    assert host.infos["raiser"].status == "failed" and "RuntimeError: kaboom" in host.infos["raiser"].error
    assert host.infos["wrong"].status == "failed" and "takes one Skill" in host.infos["wrong"].error
    # a failed plugin leaves every hook, not just the one that failed
    assert host.pm.get_plugin("raiser") is None


def test_hanging_hook_is_cut_off():
    host = PluginHost(PluginsConfig(hook_timeout=0.2))
    host.register(plugin(register_skills=lambda register: threading.Event().wait()), "hang")
    host.register(plugin(register_skills=good_skills), "good")
    assert [s.name for s in host.skills()] == ["ping"]
    assert "did not finish within 0.2 s" in host.infos["hang"].error


def test_disabled_and_enabled_lists():
    host = PluginHost(PluginsConfig(disabled=["general"]), environ={"LABEEB_DISABLE_PLUGIN_AUTOLOAD": "1"})
    host.load_entrypoints()
    assert host.infos["general"].status == "disabled"
    assert all(s.plugin != "general" for s in host.skills())
    host = PluginHost(PluginsConfig(enabled=["backends"]), environ={"LABEEB_DISABLE_PLUGIN_AUTOLOAD": "1"})
    host.load_entrypoints()
    assert host.infos["backends"].status == "loaded" and host.infos["general"].status == "disabled"


def test_process_reply_chain_in_registration_order_and_garbage_ignored():
    calls = []

    def first(reply, command):
        calls.append("first")
        return Reply(text=reply.text.upper(), plugin=reply.plugin, skill=reply.skill)

    def garbage(reply, command):
        calls.append("garbage")
        return 42

    def second(reply, command):
        calls.append("second")
        return None

    assistant = make_assistant(plugins={
        "first": plugin(process_reply=first), "garbage": plugin(process_reply=garbage),
        "second": plugin(process_reply=second), "ping": plugin(register_skills=good_skills),
    })
    reply = run_command(assistant, "ping the assistant")
    assert reply.text == "PONG" and reply.plugin == "ping"
    assert calls == ["first", "garbage", "second"]


def test_startup_and_shutdown_hooks_run_once():
    events = []
    assistant = make_assistant(plugins={"life": plugin(
        labeeb_startup=lambda assistant: events.append(("start", assistant)),
        labeeb_shutdown=lambda assistant: events.append(("stop", assistant)),
    )})
    with assistant:
        run_command(assistant, "help")
        run_command(assistant, "help")
    assert events == [("start", assistant), ("stop", assistant)]


def test_command_coming_starts_background_work_and_a_failure_keeps_the_plugin():
    seen, done = [], threading.Event()

    def command_coming(assistant, arrived):  # the hook's own name: its daemon thread may run on
        def work():
            arrived.wait(5)
            seen.append(arrived.is_set())
            done.set()

        threading.Thread(target=work, daemon=True).start()

    def broken(assistant, arrived):
        raise RuntimeError("cannot look")

    assistant = make_assistant(plugins={"ahead": plugin(command_coming=command_coming),
                                        "broken": plugin(command_coming=broken)})
    arrived = threading.Event()
    assistant.command_coming(arrived)
    arrived.set()
    assert done.wait(5) and seen == [True]
    infos = assistant.host.infos
    assert infos["broken"].status == "loaded" and infos["ahead"].status == "loaded"
    assert problems("ahead") == []  # its background thread is not reported as a leak
    assert run_command(assistant, "help").plugin == "general"


def test_duplicate_backend_name_keeps_first():
    fake = FakeVision()
    assistant = make_assistant(vision=fake, plugins={"dup": plugin(
        register_vision_backends=lambda register: register("fake", lambda config: None))})
    assert assistant.host.vision_backends()["fake"] is fake
