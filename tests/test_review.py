"""The review CLI in a real pseudo-terminal, decisions that survive a kill, and the export that trains."""

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from detector.cli.main import main
from detector.errors import StoreError
from detector.store import Store
from tests.conftest import DATA, REPO

pytestmark = pytest.mark.real_model
PROMPT = r"q quit\] "


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("review")
    assert main(["detect", str(DATA / "marina_0p3m.tif"), "--out", str(out)]) == 0
    return out


def session(db: Path, keys: str) -> None:
    child = pexpect.spawn(sys.executable, ["-c", "from detector.cli.main import run; run()", "review", "--db", str(db), "--reviewer", "tester"],
                          encoding="utf-8", timeout=60, env={**os.environ, "TERM": "xterm"})  # fmt: skip
    for key in keys:
        child.expect(PROMPT)
        child.send(key)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_review_sessions_then_export_and_train(store_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "shipwatch.db"
    db.write_bytes((store_dir / "shipwatch.db").read_bytes())
    session(db, "artuq")
    session(db, "tq")
    with Store(db) as store:
        decisions = sorted(d for d, _, _ in store.decisions().values())
    assert decisions == ["accepted", "rejected", "tanker"]
    out = tmp_path / "export"
    assert main(["review", "export", "--db", str(db), "--out", str(out), "--chip", "320"]) == 0
    features = json.loads((out / "labels.geojson").read_text())["features"]
    reviews = sorted((f["properties"]["review"], f["properties"]["class"]) for f in features)
    assert reviews == [("accepted", "ship"), ("accepted", "tanker"), ("rejected", "ship")]
    # the export, merged with a second dataset of the same classes (here: itself under another name)
    data_yaml = (out / "dataset" / "data.yaml").read_text()
    assert "bands: [red, green, blue]" in data_yaml  # the DOTA model read the RGB file as it is
    other = tmp_path / "other.yaml"
    other.write_text(data_yaml.replace("bands: [red, green, blue]", "bands: [B08, B04, B03]"))
    refused = [sys.executable, str(REPO / "scripts" / "train.py"), "--data", str(out / "dataset" / "data.yaml"),
               "--merge", str(other), "--preset", "smoke", "--name", "mixed", "--runs", str(tmp_path / "runs")]  # fmt: skip
    proc = subprocess.run(refused, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "chips hold different bands" in proc.stderr and "B08, B04, B03" in proc.stderr
    other.write_text(data_yaml)
    cmd = [sys.executable, str(REPO / "scripts" / "train.py"), "--data", str(out / "dataset" / "data.yaml"), "--merge", str(other),
           "--preset", "smoke", "--name", "reviewed", "--runs", str(tmp_path / "runs")]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env={**os.environ, "TQDM_DISABLE": "1"})
    assert proc.returncode == 0, proc.stdout[-1500:] + proc.stderr[-1500:]
    assert any((tmp_path / "runs" / "reviewed" / "weights").glob("*.pt"))
    report = tmp_path / "report"
    assert main(["report", "--db", str(db), "--out", str(report)]) == 0
    page = (report / "report.html").read_text()
    assert "3 detections reviewed: 2 accepted, 1 rejected" in page
    assert "1 image, " in page and "No image and no detection meets any of the zones" in page  # a marina, not Vostochny


def test_a_killed_session_keeps_its_decisions(store_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "shipwatch.db"
    db.write_bytes((store_dir / "shipwatch.db").read_bytes())
    child = pexpect.spawn(
        sys.executable,
        ["-c", "from detector.cli.main import run; run()", "review", "--db", str(db)],
        encoding="utf-8",
        timeout=60,
    )
    for key in "ar":
        child.expect(PROMPT)
        child.send(key)
    child.expect(PROMPT)  # the second decision is written before the next item shows
    os.kill(child.pid, signal.SIGKILL)
    child.close()
    with Store(db) as store:
        assert sorted(d for d, _, _ in store.decisions().values()) == ["accepted", "rejected"]


def test_decisions_csv_and_bad_stores(store_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "shipwatch.db"
    db.write_bytes((store_dir / "shipwatch.db").read_bytes())
    with Store(db) as store:
        ids = sorted(store.detection_rows(store.latest_settings_hash() or ""))[:2]
    p = tmp_path / "d.csv"
    with p.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["detection_id", "decision"])
        w.writerows([[ids[0][0], "tanker"], [ids[1][0], "rejected"]])
    assert main(["review", "--db", str(db), "--decisions", str(p)]) == 0
    p.write_text("detection_id,decision\n999999,accepted\n")
    assert main(["review", "--db", str(db), "--decisions", str(p)]) == 2
    other = tmp_path / "other.db"
    import sqlite3

    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    assert main(["review", "--db", str(other)]) == 2
    with pytest.raises(StoreError, match="not a Shipwatch store"):
        Store(other)


def test_sixel_encodes_the_image(tmp_path: Path) -> None:
    """Decode our sixel output and compare it with the quantised picture."""
    import re

    import cv2
    import numpy as np
    from PIL import Image

    from detector.cli.review import sixel

    img = np.zeros((13, 9, 3), np.uint8)
    img[2:9, 1:5] = (255, 0, 0)
    img[5:13, 4:9] = (0, 200, 50)
    png = tmp_path / "a.png"
    cv2.imwrite(str(png), img[..., ::-1])
    text = sixel(png, colours=4)
    assert text.startswith('\x1bPq"1;1;9;13') and text.endswith("\x1b\\")
    expected = np.asarray(Image.open(png).convert("RGB").quantize(colors=4))
    decoded = np.full((13, 9), -1)
    body = text[text.index("#") : -2]
    for row, band in enumerate(body.split("-")[:-1]):
        for colour, run in re.findall(r"#(\d+)([?-~]*)\$", re.sub(r"#\d+;2;\d+;\d+;\d+", "", band)):
            for col, ch in enumerate(run):
                for bit in range(6):
                    if (ord(ch) - 63) >> bit & 1:
                        decoded[row * 6 + bit, col] = int(colour)
    assert (decoded == expected).all()
