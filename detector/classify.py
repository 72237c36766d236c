"""Ship type: the probability that a ship is a tanker, and the evidence behind it.

Evidence multiplies the prior odds by likelihood ratios from a documented
config (``detector/data/classify.json``, or a file of the same shape):

* the model's own class, where the model has a tanker class (its score);
* geometry: length, and the length-to-beam ratio, where measured;
* the zone's cargo (a ship at an ``oil`` berth is very likely a tanker);
* the AIS ship type of the vessel matched to it, where AIS matched.

The evidence used is returned beside the answer, so a reviewer can see why.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from detector.errors import UsageError

__all__ = ["TankerEvidence", "TankerModel"]


@dataclass(frozen=True)
class TankerEvidence:
    tanker_prob: float
    class_name: str
    evidence: dict[str, float]  # likelihood ratio of each piece of evidence used, and the prior

    def as_json(self) -> str:
        return json.dumps({k: round(v, 4) for k, v in self.evidence.items()}, sort_keys=True)


def _lookup(table: list[list[float]], value: float) -> float | None:
    for low, high, lr in table:
        if low <= value < high:
            return float(lr)
    return None


class TankerModel:
    """Combines evidence into ``tanker_prob``; ``class`` is ``tanker`` at 0.5 or more."""

    def __init__(self, config: Path | None = None) -> None:
        try:
            if config is None:
                text = resources.files("detector").joinpath("data/classify.json").read_text()
            else:
                text = Path(config).read_text()
            self.config: dict[str, Any] = json.loads(text)
            self.prior = float(self.config["prior"])
        except (OSError, ValueError, KeyError) as exc:
            raise UsageError(f"{config or 'classify.json'}: unreadable tanker evidence config ({exc}); fix or remove it") from exc
        if not 0 < self.prior < 1:
            raise UsageError(f"{config}: prior must be in (0, 1)")

    def __call__(
        self,
        length_m: float | None = None,
        beam_m: float | None = None,
        cargo: str | None = None,
        model_class: str | None = None,
        model_score: float | None = None,
        ais_type: int | None = None,
    ) -> TankerEvidence:
        odds = self.prior / (1 - self.prior)
        evidence = {"prior": self.prior}
        if (
            model_class is not None
            and model_score is not None
            and self.config.get("model_classes", {}).get(model_class) == "tanker"
        ):
            p = min(max(model_score, 1e-3), 1 - 1e-3)
            lr = (p / (1 - p)) / odds
            evidence["model"] = lr
            odds *= lr
        if ais_type is not None and self.config.get("ais_type_lr"):
            kind = "tanker" if 80 <= ais_type <= 89 else "other"
            lr = float(self.config["ais_type_lr"][kind])
            evidence[f"ais_type:{ais_type}"] = lr
            odds *= lr
        if cargo and cargo in self.config.get("cargo_lr", {}):
            lr = float(self.config["cargo_lr"][cargo])
            evidence[f"cargo:{cargo}"] = lr
            odds *= lr
        if length_m is not None and not math.isnan(length_m):
            lr_len = _lookup(self.config.get("length_lr", []), length_m)
            if lr_len is not None:
                evidence["length"] = lr_len
                odds *= lr_len
            if beam_m and not math.isnan(beam_m) and beam_m > 0:
                lr_ratio = _lookup(self.config.get("ratio_lr", []), length_m / beam_m)
                if lr_ratio is not None:
                    evidence["length_to_beam"] = lr_ratio
                    odds *= lr_ratio
        prob = odds / (1 + odds)
        return TankerEvidence(prob, "tanker" if prob >= 0.5 else "other", evidence)
