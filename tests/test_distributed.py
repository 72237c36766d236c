"""The Ray engine on a real local Ray cluster: the local engine's results, and a killed actor changes nothing."""

import os
import signal
from pathlib import Path

import pytest

from detector.cli.main import main
from detector.engine import DetectSettings, detect_scene
from detector.job import DetectOptions, _yolo
from detector.models import resolve_weights
from detector.raster import open_scene
from tests.conftest import DATA, load_script

ray = pytest.importorskip("ray", reason="the Ray extra is not installed: pip install -e '.[ray]'")
pytestmark = pytest.mark.real_model


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("ray_scenes")
    write = load_script("datasets/dota_geotiff.py").write_geotiff
    return [
        write(DATA / "P0861__1024__0___1648.jpg", folder / "marina_2024-05-01.tif"),
        write(DATA / "P0861__1024__0___1648.jpg", folder / "marina_2024-05-03.tif", pixel_m=0.15, upscale=2),
    ]


@pytest.fixture(scope="module")
def local_ray():  # type: ignore[no-untyped-def]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_engine_writes_what_the_local_engine_writes(scenes: list[Path], tmp_path: Path, local_ray: None) -> None:
    assert main(["detect", *map(str, scenes), "--out", str(tmp_path / "local"), "--batch-size", "4"]) == 0
    assert (
        main(
            [
                "detect",
                *map(str, scenes),
                "--out",
                str(tmp_path / "ray"),
                "--batch-size",
                "4",
                "--engine",
                "ray",
                "--ray-actors",
                "2",
            ]
        )
        == 0
    )
    assert (tmp_path / "local" / "detections.csv").read_bytes() == (tmp_path / "ray" / "detections.csv").read_bytes()
    # a job started on one engine resumes on the other: nothing is run twice
    assert main(["detect", *map(str, scenes), "--out", str(tmp_path / "ray"), "--batch-size", "4"]) == 0
    assert (tmp_path / "local" / "detections.geojson").read_bytes() == (tmp_path / "ray" / "detections.geojson").read_bytes()


def test_a_killed_actor_does_not_change_the_result(scenes: list[Path], local_ray: None) -> None:
    from detector.distributed import RayConfig, RayEngine

    spec, weights, _ = resolve_weights()
    options = DetectOptions()
    settings = DetectSettings(overlap=512, batch_size=2, classes=spec.ship_class_ids)
    scene = open_scene(scenes[1])
    expected = detect_scene(scene, _yolo(weights, spec, options), settings).detections
    with RayEngine(RayConfig(actors=2, readers=2), _yolo, weights, spec, options) as engine:
        victim = ray.get(engine.actors[0].pid.remote())
        killed = []

        def kill_once(_: int) -> None:
            if not killed:
                os.kill(victim, signal.SIGKILL)
                killed.append(victim)

        found = engine.detect_scene(scene, settings, on_windows=kill_once).detections
        assert killed and ray.get(engine.actors[0].pid.remote()) != victim  # restarted
    assert len(found) == len(expected)
    assert (found.obb == expected.obb).all() and (found.score == expected.score).all()


def test_a_scene_killed_on_the_local_engine_is_finished_by_ray(scenes: list[Path], local_ray: None) -> None:
    from detector.distributed import RayConfig, RayEngine
    from tests.test_engine import Killed, MemoryCheckpoint

    spec, weights, _ = resolve_weights()
    options = DetectOptions()
    settings = DetectSettings(overlap=512, batch_size=2, classes=spec.ship_class_ids)
    scene = open_scene(scenes[1])
    detector = _yolo(weights, spec, options)
    expected = detect_scene(scene, detector, settings)
    checkpoint = MemoryCheckpoint(kill_after=1)
    with pytest.raises(Killed):
        detect_scene(scene, detector, settings, checkpoint=checkpoint)
    checkpoint.kill_after = None
    with RayEngine(RayConfig(actors=2, readers=2), _yolo, weights, spec, options) as engine:
        finished = engine.detect_scene(scene, settings, checkpoint=checkpoint)
    assert finished.windows_resumed == 2 and len(checkpoint.kept) == expected.windows_inferred
    assert (finished.detections.obb == expected.detections.obb).all()
    assert (finished.detections.score == expected.detections.score).all()


def test_weights_outside_the_registry_get_the_actors_input_size(scenes: list[Path], tmp_path: Path, local_ray: None) -> None:
    """A file outside the registry (here a 640 px model, where the DOTA one is 1024) is laid out for its own size on Ray."""
    import torch

    from detector.store import Store

    _, shipped, _ = resolve_weights("yolo26n-obb-s2-nir-sgd")
    checkpoint = torch.load(shipped, map_location="cpu", weights_only=False)
    checkpoint["note"] = "a copy outside the registry"
    weights = tmp_path / "own.pt"
    torch.save(checkpoint, weights)
    windows = {}
    for engine in ("local", "ray"):
        out = tmp_path / engine
        args = ["detect", str(scenes[0]), "--out", str(out), "--weights", str(weights), "--trust-weights", "--engine", engine]
        assert main(args) == 0
        with Store(out / "shipwatch.db") as store:
            windows[engine] = [store.scene(sid).windows_total for sid in store.scene_ids(store.latest_settings_hash() or "")]
    assert windows["ray"] == windows["local"] and windows["local"][0] > 1
    assert (tmp_path / "local" / "detections.csv").read_bytes() == (tmp_path / "ray" / "detections.csv").read_bytes()


def test_weights_an_actor_cannot_load_are_a_clear_error(
    scenes: list[Path], tmp_path: Path, local_ray: None, capsys: pytest.CaptureFixture[str]
) -> None:
    weights = tmp_path / "broken.pt"
    weights.write_bytes(b"not a checkpoint")
    args = ["detect", str(scenes[0]), "--out", str(tmp_path / "out"), "--weights", str(weights), "--trust-weights"]
    assert main([*args, "--engine", "ray"]) == 2
    assert "broken.pt: not loadable Ultralytics weights" in capsys.readouterr().err
