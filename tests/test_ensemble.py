"""Ensembles: the fusion rule on hand-worked boxes, channel routing, and the registry's ensemble entries."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from detector.ensemble import EnsembleDetector, fuse_boxes
from detector.errors import WeightsError
from detector.models import Member, models_dir, registry, resolve_weights
from detector.records import Detections


def boxes(*rows: tuple[float, float, float, float], cls: int = 0) -> Detections:
    """(x, y, length, score) boxes 4 px wide along x."""
    obb = np.array([[x, y, length, 4.0, 0.0] for x, y, length, _ in rows]).reshape(-1, 5)
    return Detections(obb, [s for *_, s in rows], np.full(len(rows), cls, np.int64))


def test_overlapping_boxes_are_one_ship_scored_by_the_mean() -> None:
    a = boxes((50, 50, 20, 0.8), (200, 200, 20, 0.6))
    b = boxes((51, 50, 20, 0.4), (120, 120, 20, 0.9))
    fused = fuse_boxes([a, b], conf=0.0)
    # (50, 50) seen by both: (0.8 + 0.4) / 2; the others seen once: half their score
    assert fused.score.tolist() == pytest.approx([0.6, 0.45, 0.3])
    assert fused.obb[:, 0].tolist() == [50, 120, 200]  # by descending fused score
    assert fused.obb[0, 0] == 50  # the higher-scoring member's box stands for the ship


def test_the_box_comes_from_the_best_member_and_the_threshold_applies_to_the_mean() -> None:
    a = boxes((50, 50, 20, 0.25))
    b = boxes((52, 50, 24, 0.75))
    fused = fuse_boxes([a, b], conf=0.5)
    assert len(fused) == 1 and fused.obb[0, :3].tolist() == [52, 50, 24] and fused.score[0] == pytest.approx(0.5)
    assert len(fuse_boxes([a, b], conf=0.51)) == 0
    assert len(fuse_boxes([a, boxes()], conf=0.2)) == 0  # 0.25 alone is 0.125 over two members


def test_boxes_match_only_when_they_overlap_enough_and_share_a_class() -> None:
    a = boxes((50, 50, 20, 0.8))
    far = boxes((60, 50, 20, 0.8))  # IoU 10/30 = 0.33: the same ship
    farther = boxes((64, 50, 20, 0.8))  # IoU 6/34 = 0.18: another one
    other_class = boxes((50, 50, 20, 0.8), cls=1)
    assert len(fuse_boxes([a, far], 0.0)) == 1
    assert len(fuse_boxes([a, farther], 0.0)) == 2
    assert len(fuse_boxes([a, other_class], 0.0)) == 2


def test_three_members_and_one_to_one_matching() -> None:
    a = boxes((50, 50, 20, 0.9))
    b = boxes((50, 50, 20, 0.6), (51, 50, 20, 0.3))  # two boxes on one ship: only one pairs with a's
    c = boxes((49, 50, 20, 0.3))
    fused = fuse_boxes([a, b, c], conf=0.0)
    assert fused.score.tolist() == pytest.approx([0.6, 0.1])


class Recorder:
    """A member that records the channels it was given and answers one box."""

    input_size = 8
    class_names = ("ship",)

    def __init__(self, score: float) -> None:
        self.score, self.seen = score, []

    def __call__(self, batch: np.ndarray) -> list[Detections]:
        self.seen.append(batch[0, 0, 0].tolist())
        return [boxes((4, 4, 6, self.score)) for _ in batch]


def test_each_member_reads_its_own_channels() -> None:
    nir, tc = Recorder(0.9), Recorder(0.5)
    ensemble = EnsembleDetector([nir, tc], [(0, 1, 2), (1, 2, 3)], conf=0.1)
    window = np.zeros((2, 8, 8, 4), np.uint8)
    window[..., :] = [8, 4, 3, 2]  # B08, B04, B03, B02
    out = ensemble(window)
    assert nir.seen == [[8, 4, 3]] and tc.seen == [[4, 3, 2]]
    assert len(out) == 2 and out[0].score.tolist() == pytest.approx([0.7])
    with pytest.raises(ValueError, match="4"):
        ensemble(np.zeros((1, 8, 8, 3), np.uint8))


def test_registry_ensemble_is_pinned_through_its_members(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = registry()["s2-ensemble"]
    assert spec.members == (
        Member("yolo26n-obb-s2-nir-sgd", ("B08", "B04", "B03")),
        Member("yolov8n-obb-s2-nir-sgd", ("B08", "B04", "B03")),
    )
    assert [spec.member_channels(m) for m in spec.members] == [(0, 1, 2), (0, 1, 2)]
    assert (spec.input_size, spec.scale, spec.classes) == (640, 3.0, ("ship",))
    assert resolve_weights(spec.name)[2] == spec.sha256
    # The fallback for near infrared alone, in all three channels, is another entry with another digest
    # (its members are the AdamW-trained pair, whose threshold was measured fed B08 alone).
    nir = registry()["s2-ensemble-b08"]
    assert [m.model for m in nir.members] == ["yolo26n-obb-s2-nir", "yolov8n-obb-s2-nir"] and nir.bands == ("B08",)
    assert [nir.member_channels(m) for m in nir.members] == [(0, 0, 0), (0, 0, 0)] and nir.sha256 != spec.sha256
    # A member file that differs from its entry is refused, naming the member.
    copy = tmp_path / "models"
    copy.mkdir()
    for name in ("registry.json", "yolo26n-obb-s2-nir-sgd.pt"):  # the registry and the one good member
        shutil.copy(models_dir() / name, copy / name)
    (copy / "yolov8n-obb-s2-nir-sgd.pt").write_bytes(b"not the weights")
    monkeypatch.setenv("SHIPWATCH_MODELS_DIR", str(copy))
    with pytest.raises(WeightsError, match="yolov8n-obb-s2-nir-sgd"):
        resolve_weights(spec.name)
    assert resolve_weights(spec.name, trust=True)[0] == spec
    # A changed member digest changes the ensemble's.
    raw = json.loads((copy / "registry.json").read_text())
    next(m for m in raw["models"] if m["name"] == "yolo26n-obb-s2-nir-sgd")["sha256"] = "0" * 64
    (tmp_path / "registry.json").write_text(json.dumps(raw))
    monkeypatch.setenv("SHIPWATCH_MODELS_DIR", str(tmp_path))
    assert registry()["s2-ensemble"].sha256 != spec.sha256


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"members": [{"model": "yolo26n-obb-s2", "bands": ["B04", "B03", "B02"]}]}, "two or more"),
        ({"members": [{"model": "nope", "bands": ["B08", "B04", "B03"]}, {"model": "yolo26n-obb-s2", "bands": ["B04", "B03", "B02"]}]}, "nope"),
        ({"bands": ["B04", "B03", "B02"]}, "3 of the ensemble's bands"),
    ],
)  # fmt: skip
def test_a_bad_ensemble_entry_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: dict, problem: str) -> None:  # type: ignore[type-arg]
    raw = json.loads((models_dir() / "registry.json").read_text())
    entry = next(m for m in raw["models"] if "members" in m)
    entry.update(change)
    (tmp_path / "registry.json").write_text(json.dumps(raw))
    monkeypatch.setenv("SHIPWATCH_MODELS_DIR", str(tmp_path))
    with pytest.raises(WeightsError, match=problem):
        registry()


@pytest.mark.real_model
def test_an_option_a_member_cannot_take_names_the_ensemble_and_the_way_out() -> None:
    from detector.errors import UsageError
    from detector.job import DetectOptions, _yolo
    from detector.yolo import Head

    spec = registry()["s2-ensemble"]
    with pytest.raises(UsageError, match="NMS-free head") as caught:
        _yolo(Path("unused"), spec, DetectOptions(head=Head.END2END))
    members = "yolo26n-obb-s2-nir-sgd, yolov8n-obb-s2-nir-sgd"
    assert f"member of s2-ensemble: {members}; --weights runs one of them alone" in str(caught.value)
