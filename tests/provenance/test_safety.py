"""The output safety filter: NudeNet, offline; ordinary images pass; flagged outputs are never written.

The blocking path is tested by injecting a detector result: no explicit image is, or will be, in the repo.
"""

from __future__ import annotations

from importlib import metadata

import numpy as np
import pytest

from pixforge.provenance import Finding, Provenance, SafetyFilter, UnsafeImageError, encode_generated, save_generated
from pixforge.provenance.safety import LABELS, NudeNetDetector, postprocess, preprocess


def _flag(label: str = "FEMALE_BREAST_EXPOSED", score: float = 0.91) -> SafetyFilter:
    return SafetyFilter(detector=lambda image: [Finding(label, score, (1, 2, 30, 40))])


def test_real_detector_runs_offline_and_lets_ordinary_images_through(facades_photos, procedural):
    detector = NudeNetDetector()
    safety = SafetyFilter(detector=detector)
    images = [*facades_photos[:6], procedural(5), procedural(6, 128), procedural(7)[..., 0]]
    for image in images:
        assert safety.findings(image) == []
    assert safety.findings(procedural(8).astype(np.uint16) * 257) == []  # 16-bit outputs are checked too


def test_detector_is_loaded_once_on_first_use(procedural):
    detector = NudeNetDetector()
    assert detector._session is None  # constructing the default filter costs nothing
    detector(procedural(9))
    session = detector._session
    detector(procedural(10))
    assert session is not None and detector._session is session


def test_preprocessing_feeds_rgb_as_nudenet_did_before_its_channel_swap_bug(procedural):
    nudenet = pytest.importorskip("nudenet.nudenet")
    assert tuple(vars(nudenet)["__labels"]) == LABELS
    for image in (procedural(11), procedural(12)[:200, :150]):
        # nudenet's _read_image swaps twice; handed an RGB array as its 'mat' it yields the RGB blob
        assert np.array_equal(preprocess(image), nudenet._read_image(image, 320)[0])


def test_postprocessing_matches_nudenets_boxes_on_a_synthetic_network_output():
    nudenet = pytest.importorskip("nudenet.nudenet")
    rng = np.random.default_rng(0)
    output = np.zeros((1, 4 + len(LABELS), 2100), np.float32)
    output[0, :4] = rng.uniform(20, 300, (4, 2100))
    output[0, 4:] = rng.uniform(0, 0.15, (len(LABELS), 2100))
    for i, label in ((5, 3), (6, 3), (700, 14), (1500, 1)):  # two overlapping boxes, two others
        output[0, 4 + label, i] = 0.8 - i / 10000
    output[0, :4, 6] = output[0, :4, 5] + 1
    ours = postprocess(output, 250, 180)
    theirs = nudenet._postprocess([output], 70, 0, 250 / 180, 1.0, 180, 250, 320, 320)
    assert [(f.label, round(f.score, 6), list(f.box)) for f in ours] == [
        (d["class"], round(d["score"], 6), d["box"]) for d in theirs]
    assert len(ours) == 3  # the overlapping pair was suppressed to one


def test_a_flagged_output_is_not_written_and_the_error_names_its_source(tmp_path, rendering, model_hash):
    target = tmp_path / "out" / "photo.png"
    with pytest.raises(UnsafeImageError, match=r"photo\.png: the safety filter flagged explicit content") as err:
        save_generated(rendering, target, Provenance(model_hash), safety=_flag())
    assert "female_breast_exposed" in err.value.reason
    assert not target.exists() and not (tmp_path / "out").exists()  # nothing at all, no temp file
    with pytest.raises(UnsafeImageError, match="request 7"):
        encode_generated(rendering, "png", Provenance(model_hash), safety=_flag(), source="request 7")


def test_a_flagged_output_never_replaces_an_existing_file(tmp_path, rendering, model_hash):
    target = tmp_path / "photo.png"
    target.write_bytes(b"earlier output")
    with pytest.raises(UnsafeImageError):
        save_generated(rendering, target, Provenance(model_hash), safety=_flag())
    assert target.read_bytes() == b"earlier output" and sorted(tmp_path.iterdir()) == [target]


@pytest.mark.parametrize(("label", "score"), [("FACE_FEMALE", 0.99), ("BELLY_EXPOSED", 0.9),
                                              ("FEMALE_BREAST_COVERED", 0.9), ("BUTTOCKS_EXPOSED", 0.3)])
def test_faces_covered_bodies_and_weak_detections_do_not_block(label, score, rendering, model_hash, tmp_path):
    assert save_generated(rendering, tmp_path / "x.png", Provenance(model_hash), safety=_flag(label, score)).is_file()


def test_only_the_headless_opencv_is_installed():
    installed = {d.metadata["Name"].lower() for d in metadata.distributions()}
    assert "opencv-python-headless" in installed
    assert "opencv-python" not in installed and "opencv-contrib-python" not in installed
