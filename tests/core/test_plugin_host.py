"""The plugin host: built-ins load like third-party plugins, collisions and failures are named, env vars control loading."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import pytest

from evlf.core import hookspecs, plugins
from evlf.core.errors import PluginError
from evlf.core.hookspecs import hookimpl
from evlf.core.plugins import PluginHost, get_host, reset_host
from evlf.testing import evlf_host, register_plugin  # noqa: F401 - fixtures

SIX = {"dermatology", "hepatology", "ophthalmology", "pathology", "pulmonology", "radiology"}
DOCS = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


def hookspec_signatures() -> dict[str, str]:
    specs = {}
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction):
        if hasattr(fn, f"{hookspecs.PROJECT}_spec"):
            specs[name] = name + str(inspect.signature(fn)).replace("'", "")
    return specs


def test_every_hookspec_is_documented_under_its_exact_signature() -> None:
    specs = hookspec_signatures()
    assert len(specs) >= 8
    headings = re.findall(r"^### `(.+)`$", DOCS.read_text(), flags=re.M)
    missing = [sig for sig in specs.values() if sig not in headings]
    assert not missing, f"docs/plugins.md lacks a '### `signature`' heading for: {missing}"


def test_every_hookspec_says_who_calls_it() -> None:
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction):
        if hasattr(fn, f"{hookspecs.PROJECT}_spec"):
            assert fn.__doc__ and "Called" in fn.__doc__, name


def test_the_six_specialties_load_as_builtin_plugins(evlf_host: PluginHost) -> None:
    specialties = evlf_host.registries.specialties
    assert SIX <= set(specialties.names())
    assert specialties.plugin_of("pulmonology") == "evlf.plugins.pulmonology"
    infos = {i.name: i for i in evlf_host.plugin_infos()}
    derm = infos["evlf.plugins.dermatology"]
    assert derm.builtin and derm.registers == {"specialties": ["dermatology"]}
    assert derm.hooks == ["register_specialties", "report_checks"]


def test_a_name_collision_names_both_plugins(evlf_host: PluginHost, register_plugin) -> None:
    class Impostor:
        name = "radiology"

    class Plugin:
        @hookimpl
        def register_specialties(self, register):
            register(Impostor())

    register_plugin(Plugin(), name="impostor-plugin")
    with pytest.raises(PluginError, match=r"'evlf.plugins.radiology'.*'impostor-plugin'|'impostor-plugin'.*'evlf.plugins.radiology'"):
        evlf_host.registries  # noqa: B018 - collecting registrations raises


def test_registration_hooks_are_called_through_pluggy(evlf_host: PluginHost, register_plugin) -> None:
    """A wrapper sees the one hook call around every implementation, and each object keeps its own plugin's name."""
    seen: list[str] = []

    class Extra:
        name = "extra-backend"

    class Wrapper:
        @hookimpl(wrapper=True)
        def register_backends(self, register):
            seen.append("before")
            result = yield
            seen.append("after")
            return result

        @hookimpl
        def register_refiners(self, register):
            register(Extra())

    register_plugin(Wrapper(), name="wrapper-plugin")
    regs = evlf_host.registries
    assert seen == ["before", "after"]
    assert regs.backends.plugin_of("tiny") == "evlf.plugins.backends.tiny"
    assert regs.refiners.plugin_of("extra-backend") == "wrapper-plugin"


def test_built_in_graphs_register_lazily_with_their_modules_specs(evlf_host: PluginHost) -> None:
    import importlib

    for spec in evlf_host.registries.graphs:
        if evlf_host.registries.graphs.plugin_of(spec.name) != "evlf.agents.graphs":
            continue
        own = importlib.import_module(f"evlf.agents.graphs.{spec.name}").SPEC
        assert (spec.name, spec.version, spec.description) == (own.name, own.version, own.description)


def test_a_plugin_that_fails_to_import_is_reported_not_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plugins, "DEFAULT_PLUGINS", (*plugins.DEFAULT_PLUGINS, "evlf_no_such_plugin_module"))
    host = PluginHost(load_entry_points=False)
    assert "ModuleNotFoundError" in host.load_failures["evlf_no_such_plugin_module"]
    assert SIX <= set(host.registries.specialties.names())


def test_block_list_by_short_or_full_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVLF_BLOCK_PLUGINS", "dermatology, evlf.plugins.pathology")
    reset_host()
    try:
        names = set(get_host().registries.specialties.names())
        assert SIX - {"dermatology", "pathology"} <= names
        assert not names & {"dermatology", "pathology"}
        assert {"evlf.plugins.dermatology", "evlf.plugins.pathology"} <= set(get_host().skipped)
    finally:
        reset_host()


def test_allow_list_loads_only_the_named_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVLF_LOAD_PLUGINS", "pulmonology,radiology")
    reset_host()
    try:
        host = get_host()
        assert host.registries.specialties.names() == ["pulmonology", "radiology"]
        assert {name for name, _ in host.pm.list_name_plugin()} == {"evlf.plugins.pulmonology", "evlf.plugins.radiology"}
    finally:
        reset_host()


def test_report_checks_collect_from_every_plugin(evlf_host: PluginHost, register_plugin) -> None:
    from evlf.core.types import Box, CheckIssue, Finding, Provenance, Report
    from evlf.testing import make_image

    class Extra:
        @hookimpl
        def report_checks(self, report, images):
            return [CheckIssue(check="extra", message="always")]

    register_plugin(Extra(), name="extra")
    report = Report(
        study_id="s",
        specialties=["radiology"],
        findings=[Finding(label="fracture", confidence=0.9, boxes=[Box(x0=50, y0=50, x1=90, y1=90)])],
        provenance=Provenance(evlf_version="0", model_id="m", backend="b"),
    )
    results = evlf_host.hook.report_checks(report=report, images=[make_image(64, 64, modality="CR")])
    checks = sorted(issue.check for batch in results for issue in batch)
    assert checks == ["box_inside_image", "extra"]  # radiology's check fires; the other five stay quiet


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from evlf.cli import app
    from evlf.cli.common import run_app

    code = run_app(app, args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_plugins_list_json(evlf_host: PluginHost, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    monkeypatch.setattr(plugins, "DEFAULT_PLUGINS", (*plugins.DEFAULT_PLUGINS, "evlf_no_such_plugin_module"))
    reset_host()
    code, out, _ = run_cli(["plugins", "list", "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    by_name = {p["name"]: p for p in data["plugins"]}
    assert by_name["evlf.plugins.ophthalmology"]["registers"] == {"specialties": ["ophthalmology"]}
    assert "register_specialties" in by_name["evlf.plugins.ophthalmology"]["hooks"]
    assert by_name["evlf.plugins.ophthalmology"]["version"]
    assert "evlf_no_such_plugin_module" in {f["name"] for f in data["load_failures"]}
    reset_host()


def test_cli_specialties_list(evlf_host: PluginHost, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["specialties", "list", "--json"], capsys)
    assert code == 0
    data = {s["name"]: s for s in json.loads(out)}
    assert SIX <= set(data)
    pulm = data["pulmonology"]
    assert pulm["plugin"] == "evlf.plugins.pulmonology" and "CR" in pulm["modalities"]
    assert {"name": "pneumothorax", "code": "J93.9", "system": "ICD-10"} in pulm["labels"]
    code, out, _ = run_cli(["specialties", "list"], capsys)
    assert code == 0 and "pneumothorax" in out and "J93.9" in out


ENTRY_PLUGIN = '''
from evlf.core.hookspecs import hookimpl
from evlf.core.specialty import Label, Specialty


class Otology(Specialty):
    name = "otology"
    modalities = ("OT",)
    labels = (Label(name="otitis media"),)

    def score(self, study, images):
        return 0.0


@hookimpl
def register_specialties(register):
    register(Otology())
'''


@pytest.mark.parametrize(
    ("var", "value", "loaded"),
    [
        ("EVLF_BLOCK_PLUGINS", "otology", False),  # its entry-point name
        ("EVLF_BLOCK_PLUGINS", "acme_evlf_ears", False),  # its module name
        ("EVLF_LOAD_PLUGINS", "acme_evlf_ears,radiology", True),
        ("EVLF_LOAD_PLUGINS", "otology,radiology", True),
        ("EVLF_LOAD_PLUGINS", "radiology", False),
    ],
)
def test_an_entry_point_answers_to_its_name_and_its_module_name(
    var: str, value: str, loaded: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.metadata

    (tmp_path / "acme_evlf_ears.py").write_text(ENTRY_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    point = importlib.metadata.EntryPoint(name="otology", value="acme_evlf_ears", group="evlf")
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group=None: [point] if group == "evlf" else [])
    monkeypatch.setenv(var, value)
    host = PluginHost()
    assert ("otology" in host.registries.specialties) is loaded
    assert ("otology" in host.skipped) is not loaded
