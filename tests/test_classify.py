import json
from pathlib import Path

import pytest

from detector.classify import TankerModel
from detector.errors import UsageError


def test_evidence_moves_the_probability_and_is_recorded() -> None:
    model = TankerModel()
    base = model()
    assert base.tanker_prob == pytest.approx(0.2) and base.class_name == "other"
    at_oil_berth = model(length_m=180.0, beam_m=30.0, cargo="oil")
    assert at_oil_berth.tanker_prob > 0.85 and at_oil_berth.class_name == "tanker"
    assert set(at_oil_berth.evidence) == {"prior", "cargo:oil", "length", "length_to_beam"}
    small_boat = model(length_m=25.0, beam_m=8.0, cargo="oil")
    assert small_boat.tanker_prob < at_oil_berth.tanker_prob
    at_coal = model(length_m=180.0, beam_m=30.0, cargo="coal")
    assert at_coal.tanker_prob < 0.1
    assert json.loads(at_oil_berth.as_json())["cargo:oil"] == 12.0


def test_bad_config(tmp_path: Path) -> None:
    p = tmp_path / "c.json"
    p.write_text("{}")
    with pytest.raises(UsageError, match=r"c\.json"):
        TankerModel(p)
