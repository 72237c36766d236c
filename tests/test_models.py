import json
from pathlib import Path

import pytest

from detector.errors import UsageError, WeightsError
from detector.models import RGB, choose_model, models_dir, registry, ship_class_ids

S2_FOLDER = frozenset({"B02", "B03", "B04", "B08", "B11"}) | frozenset(RGB)


def test_registry_pins_every_model() -> None:
    specs = registry()
    assert {"yolo26n-obb-dota", "s2-ensemble", "yolo26n-obb-s2-nir", "yolov8n-obb-s2-nir", "yolo26n-obb-s2"} <= set(specs)
    assert {"yolo26n-obb-s2-nir-sgd", "yolov8n-obb-s2-nir-sgd"} <= set(specs)
    for spec in specs.values():
        assert len(spec.sha256) == 64 and spec.ship_classes


@pytest.mark.parametrize(
    ("gsd", "bands", "expected"),
    [
        (0.3, frozenset(RGB), "yolo26n-obb-dota"),
        (1.9, frozenset(RGB), "yolo26n-obb-dota"),
        (8.2, S2_FOLDER, "s2-ensemble"),  # a band folder with B08: the two near-infrared 10 m models
        (8.2, frozenset({"B03", "B04", "B08"}), "s2-ensemble"),  # B02 is not needed
        (10.0, frozenset(RGB), "yolo26n-obb-s2"),  # a plain RGB file: the true-colour one
        (10.0, frozenset({"B02", "B03", "B04"}) | frozenset(RGB), "yolo26n-obb-s2"),  # a folder without B08
        # folders lacking red and green: the near-infrared pair fed what the folder has
        (8.2, frozenset({"B08", "B11"}), "s2-ensemble-b08"),
        (8.2, frozenset({"B02", "B08", "B11"}), "s2-ensemble-b08"),
        (8.2, frozenset({"B02", "B03", "B11"}), "s2-ensemble-swir"),  # neither red nor near infrared
    ],
)
def test_choice_by_true_ground_resolution(gsd: float, bands: frozenset[str], expected: str) -> None:
    spec, reason = choose_model(gsd, bands, "scene.tif")
    assert spec.name == expected and f"{gsd:.2f} m" in reason


def test_no_fitting_model_gives_advice() -> None:
    with pytest.raises(UsageError, match=r"3\.10 m fits no model.*--weights"):
        choose_model(3.1, frozenset(RGB), "scene.tif")  # between 2 m x 1.1 and 5 m / 1.5
    with pytest.raises(UsageError, match=r"a pixel or two.*20 m or finer.*--weights") as raised:
        choose_model(23.7, frozenset(RGB), "landsat_web_mercator.tif")  # Landsat's 30 m Web Mercator pixels at 38°N
    # Each range once, with its models: what --weights can name.
    message = str(raised.value)
    assert "0.1-2 m: yolo26n-obb-dota, yolov8n-obb-dota; 5-20 m: s2-ensemble, " in message
    assert message.count("5-20 m") == 1
    with pytest.raises(UsageError, match="a pixel or two"):
        choose_model(60.0, frozenset(RGB), "landsat.tif")
    with pytest.raises(UsageError, match=r"lacks the bands.*s2-ensemble-b08 needs B08"):
        choose_model(10.0, frozenset({"B11", "B03"}), "swir_only")


def test_a_band_folder_is_measured_on_a_10m_band() -> None:
    """Its ground sample distance (which picks the model) comes from B04, B03, B02 or B08, never 60 m B01."""
    from detector.job import _grid_band

    assert _grid_band(("B01", "B02", "B03", "B04", "B08", "B09")) == "B04"
    assert _grid_band(("B01", "B08", "B11")) == "B08"
    assert _grid_band(("B11", "B12")) == "B11"


def test_only_ship_classes_count_as_ships() -> None:
    """A DOTA model's planes and harbours are not ships, in the registry or in a file outside it."""
    dota = registry()["yolo26n-obb-dota"]
    assert ship_class_ids(dota.classes, dota, "yolo26n-obb-dota") == (dota.classes.index("ship"),)
    assert ship_class_ids(("plane", "ship", "harbor", "shipping container", "Oil Tanker"), None, "dota.pt") == (1, 4)
    assert ship_class_ids(("Motorboat", "Fishing Vessel", "tugs", "car"), None, "xview.pt") == (0, 1, 2)
    assert ship_class_ids(("vehicle",), None, "s2.pt") == (0,)  # a one-class model's class is what it finds
    with pytest.raises(WeightsError, match=r"cars.pt: none of its classes \['plane', 'car'\] is a ship class"):
        ship_class_ids(("plane", "car"), None, "cars.pt")


@pytest.mark.parametrize("entry", ["yolo26n-obb-s2", "s2-ensemble"])
def test_two_entries_running_the_same_weights_are_refused(entry: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A store keys results by the weights' digest: a copied entry with another threshold would get the first's ships."""
    raw = json.loads((models_dir() / "registry.json").read_text())
    copy = dict(next(m for m in raw["models"] if m["name"] == entry), name=f"{entry}-strict", conf=0.6)
    raw["models"].append(copy)
    (tmp_path / "registry.json").write_text(json.dumps(raw))
    monkeypatch.setenv("SHIPWATCH_MODELS_DIR", str(tmp_path))
    with pytest.raises(WeightsError, match=rf"{entry} and {entry}-strict run the same weights.*--conf"):
        registry()
    raw["models"].remove(copy)  # the shipped registry as it is loads
    (tmp_path / "registry.json").write_text(json.dumps(raw))
    assert entry in registry()
