"""The example plugin's own tests, written with evlf.testing's fixtures."""

import evlf_plugin_example as plugin
from evlf.core.routing import route
from evlf.core.types import Box, Finding, Provenance, Report


def test_routes_panoramic_radiographs_to_dentistry(register_plugin, fake_image, fake_study, evlf_host):
    if "dentistry" not in evlf_host.registries.specialties:  # not installed: register for this test
        register_plugin(plugin, name="dentistry-under-test")
    decision = route(fake_study(), [fake_image(modality="PX")], host=evlf_host)
    assert decision.chosen == ["dentistry"]


def test_dental_hint_routes_a_plain_png(fake_image, fake_study):
    assert plugin.SPECIALTY.score(fake_study(metadata={"modality": "OPG"}), [fake_image()]) > 0.5
    assert plugin.SPECIALTY.score(fake_study(), [fake_image(modality="CT")]) == 0.0


def test_flags_a_tooth_number_outside_fdi(fake_image):
    img = fake_image(100, 50, modality="PX")
    report = Report(
        study_id="s",
        specialties=["dentistry"],
        findings=[Finding(label="dental caries", note="tooth 39", boxes=[Box(x0=1, y0=1, x1=10, y1=10)])],
        provenance=Provenance(evlf_version="0", model_id="none", backend="none"),
    )
    issues = plugin.report_checks(report=report, images=[img])
    assert [i.check for i in issues] == ["fdi_tooth_number"]
    report.findings[0].note = "tooth 36"
    assert plugin.report_checks(report=report, images=[img]) == []


def test_dental_chart_lists_findings_with_their_teeth():
    report = Report(
        study_id="s",
        specialties=["dentistry"],
        findings=[Finding(label="dental caries", note="tooth 36", boxes=[Box(x0=1, y0=1, x1=10, y1=10)])],
        provenance=Provenance(evlf_version="0", model_id="none", backend="none"),
    )
    text = plugin.CHART.render(report, [])
    assert "1. dental caries" in text and "teeth: 36" in text and "Not for clinical use." in text
