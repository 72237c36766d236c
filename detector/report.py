"""A self-contained HTML report: visits, tankers, dark visits, cargo, with pictures inline.

Nothing is fetched when the page opens: charts (matplotlib, its own fonts)
and image crops are PNGs inlined as data URIs, the style sheet is inline.
"""

from __future__ import annotations

import base64
import html
import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from detector.errors import ShipwatchError
from detector.evidence import CARGO_ASSUMPTIONS
from detector.export import atomic_write_text, period_of
from detector.quicklook import scene_picture, ship_crop
from detector.raster import Scene, open_for_viewing
from detector.sightings import StoreSightings
from detector.visits import Visit, expected_vessels, outside_every_zone
from detector.zones import Zone, ZoneKind

__all__ = ["ReportInput", "write_report"]


@dataclass
class ReportInput:
    visits: list[Visit]
    zones: list[Zone]
    store: StoreSightings | None = None  # scenes and ships, for pictures
    title: str = "Shipwatch report"
    review: dict[str, object] | None = None  # from detector.review.review_stats
    recall: float = 1.0  # the detector's, for the estimated count (detector.visits.expected_vessels)
    precision: float = 1.0


def _png(image_bgr: NDArray[np.uint8]) -> str:
    ok, buf = cv2.imencode(".png", image_bgr)
    return "data:image/png;base64," + base64.b64encode(buf.tobytes()).decode() if ok else ""


def _fig(fig) -> str:  # type: ignore[no-untyped-def]
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _plt():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _weekly(visits: Sequence[Visit], zones: Sequence[Zone]) -> str:
    plt = _plt()
    shown = [z for z in zones if z.kind in (ZoneKind.BERTH, ZoneKind.TERMINAL)] or list(zones)
    weeks = sorted({period_of(v.first_seen, "week") for v in visits}) or ["-"]
    fig, axes = plt.subplots(len(shown), 1, figsize=(9, 1.3 * len(shown) + 0.6), sharex=True, squeeze=False)
    for ax, zone in zip(axes[:, 0], shown, strict=True):
        counts = Counter((period_of(v.first_seen, "week"), v.class_name) for v in visits if v.zone == zone.name)
        tank = [counts.get((w, "tanker"), 0) for w in weeks]
        other = [sum(n for (w2, c), n in counts.items() if w2 == w and c != "tanker") for w in weeks]
        ax.bar(weeks, tank, color="#b03a2e", label="tanker")
        ax.bar(weeks, other, bottom=tank, color="#7f8c8d", label="other")
        ax.set_ylabel(zone.name, rotation=0, ha="right", va="center", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=7, loc="upper right")
    axes[-1, 0].tick_params(axis="x", rotation=60)
    fig.suptitle("visits per week (by week of first sighting)", fontsize=10)
    return _fig(fig)


def _timeline(visits: Sequence[Visit], zones: Sequence[Zone]) -> str:
    plt = _plt()
    berths = [z for z in zones if z.kind is ZoneKind.BERTH] or list(zones)
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(berths) + 1.2))
    for y, zone in enumerate(berths):
        for v in (v for v in visits if v.zone == zone.name):
            colour = "#b03a2e" if v.class_name == "tanker" else "#7f8c8d"
            start, end = v.first_seen, max(v.last_seen, v.first_seen + timedelta(hours=8))
            ax.barh(y, (end - start).total_seconds() / 86400, left=start, height=0.5, color=colour)
            if v.arrived_after:
                ax.plot([v.arrived_after, v.first_seen], [y, y], color=colour, lw=0.8, alpha=0.5)
            if v.departed_before:
                ax.plot([v.last_seen, v.departed_before], [y, y], color=colour, lw=0.8, alpha=0.5)
    ax.set_yticks(range(len(berths)), [z.name for z in berths], fontsize=8)
    ax.set_title("visits per berth: bars from first to last sighting, thin lines to the bounding empty images", fontsize=9)
    fig.autofmt_xdate()
    return _fig(fig)


def _barrels(visits: Sequence[Visit]) -> str:
    plt = _plt()
    tankers = sorted((v for v in visits if v.barrels_low is not None and v.barrels_high is not None), key=lambda v: v.first_seen)
    fig, ax = plt.subplots(figsize=(9, 3))
    if tankers:
        t = [v.first_seen for v in tankers]
        low = np.cumsum([v.barrels_low for v in tankers]) / 1e6
        high = np.cumsum([v.barrels_high for v in tankers]) / 1e6
        ax.fill_between(t, low, high, step="post", color="#b03a2e", alpha=0.3, label="range")
        ax.step(t, (low + high) / 2, where="post", color="#b03a2e", label="midpoint")
        ax.legend(fontsize=8)
    ax.set_ylabel("million barrels")
    ax.set_title("cumulative cargo of tanker visits (estimate from hull length)", fontsize=9)
    fig.autofmt_xdate()
    return _fig(fig)


def _quicklook(store: StoreSightings, zones: Sequence[Zone], max_side: int = 1100) -> tuple[str, str]:
    """The scene with the most ships, decimated, zones in yellow and ships in red."""
    by_scene = Counter(s.scene for s in store.ships)
    if not store.scenes:
        return "", ""
    row = max(store.scenes, key=lambda r: by_scene.get(r.name, 0))
    try:
        scene = open_for_viewing(row.path, row.stretch_window)
    except ShipwatchError:
        return "", row.name
    ships = [s for s in store.ships if s.scene == row.name]
    caption = f"{row.name} ({row.acquired_at:%Y-%m-%d %H:%M} UTC), {len(ships)} ships" if row.acquired_at else row.name
    return _png(scene_picture(scene, ships, max_side, zones)), caption


class _Thumbs:
    """Crops of ships for the visit tables, each scene opened once (or found unreadable once)."""

    def __init__(self, store: StoreSightings) -> None:
        self.store = store
        self.rows = {r.name: r for r in store.scenes}
        self.scenes: dict[str, Scene | None] = {}

    def __call__(self, sighting: int) -> str:
        if sighting >= len(self.store.ships):
            return ""
        ship = self.store.ships[sighting]
        row = self.rows.get(ship.scene)
        if row is None:
            return ""
        if row.path not in self.scenes:
            try:
                self.scenes[row.path] = open_for_viewing(row.path, row.stretch_window)
            except ShipwatchError:
                self.scenes[row.path] = None
        scene = self.scenes[row.path]
        return _png(ship_crop(scene, ship)) if scene is not None else ""


_CSS = """body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}h1{font-size:22px}h2{font-size:17px;margin-top:28px}
table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:3px 6px;vertical-align:middle}
th{background:#f2f2f2}.num{text-align:right}img.chart{max-width:100%}.muted{color:#777;font-size:12px}
.cards{display:flex;gap:12px;flex-wrap:wrap}.card{border:1px solid #ddd;border-radius:6px;padding:8px 14px}
.card b{display:block;font-size:20px}"""


def _fmt(value: object) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M}"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"
    return html.escape(str(value))


def write_report(data: ReportInput, out: Path) -> Path:
    """Write ``out/report.html``; return its path.

    Totals count each stay once: a ship at a berth also visits the terminal and
    the port around it, so they use the visits of leaf zones only (zones that
    hold no other zone).
    """
    leaves = {z.name for z in data.zones if not any(o is not z and z.polygon.contains(o.polygon) for o in data.zones)}
    v = [x for x in data.visits if x.zone in leaves]
    tankers = [x for x in v if x.class_name == "tanker"]
    dark = [x for x in v if x.dark]
    low = sum(x.barrels_low or 0 for x in tankers)
    high = sum(x.barrels_high or 0 for x in tankers)
    # The span the report covers: its images' (a store), else its visits'.
    if data.store and data.store.acquisitions:
        times = [a.time for a in data.store.acquisitions]
        span = (
            f"1 image, {_fmt(times[0])} UTC. "
            if len(times) == 1
            else f"{len(times)} images from {_fmt(min(times))} to {_fmt(max(times))} UTC. "
        )
    elif v:
        span = f"Visits from {_fmt(min(x.first_seen for x in v))} to {_fmt(max(x.last_seen for x in v))} UTC. "
    else:
        span = ""
    n_scenes = len(data.store.scenes) if data.store else None
    estimated = sum(expected_vessels(x, data.recall, data.precision) for x in v)
    cards = [
        ("visits (berths, anchorages)", len(v)),
        (f"visits estimated (recall {data.recall:g}, precision {data.precision:g})", f"{estimated:.1f}"),
        ("tanker visits", len(tankers)), ("dark visits", len(dark)),
        ("barrels (tankers)", f"{low / 1e6:.2f}-{high / 1e6:.2f} M"),
    ] + ([("scenes", n_scenes), ("ship detections", len(data.store.ships))] if data.store else [])  # type: ignore[union-attr]  # fmt: skip
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(data.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(data.title)}</h1>",
        f"<p class='muted'>{span}Every count below comes from detections in the store; every visit lists its sightings.</p>",
        "<p><b>No image and no detection meets any of the zones</b>, so every count below is 0 for that reason alone: "
        "the zones are likely another port's. Run shipwatch report again with --zones for this port.</p>"
        if data.store and outside_every_zone(data.store.acquisitions, data.store.sightings, data.zones)
        else "",
        "<div class='cards'>" + "".join(f"<div class='card'><b>{_fmt(n)}</b>{html.escape(k)}</div>" for k, n in cards) + "</div>",
        "<h2>Visits per week, by zone and class</h2>", f"<img class='chart' alt='visits per week' src='{_weekly(data.visits, data.zones)}'>",
        "<h2>Timeline per berth</h2>", f"<img class='chart' alt='timeline per berth' src='{_timeline(data.visits, data.zones)}'>",
    ]  # fmt: skip
    if data.store:
        src, caption = _quicklook(data.store, data.zones)
        if src:
            parts += [
                "<h2>Scene quicklook</h2>",
                f"<p class='muted'>{html.escape(caption)}: zones yellow, ships red.</p>",
                f"<img alt='scene quicklook' src='{src}'>",
            ]
    parts += ["<h2>Cumulative cargo</h2>", f"<img class='chart' alt='cumulative barrels' src='{_barrels(v)}'>"]
    a = CARGO_ASSUMPTIONS
    parts.append(
        "<p class='muted'>Cargo assumptions: deadweight from length by hull proportions, block coefficient "
        f"{a.block_coefficient[0]}-{a.block_coefficient[1]}, L/B {a.length_to_beam[1]}-{a.length_to_beam[0]}, "
        f"L/T {a.length_to_draught[1]}-{a.length_to_draught[0]}, deadweight {a.deadweight_share_of_displacement[0]:.0%}-"
        f"{a.deadweight_share_of_displacement[1]:.0%} of displacement, cargo {a.cargo_share_of_deadweight[0]:.0%}-"
        f"{a.cargo_share_of_deadweight[1]:.0%} of deadweight, {a.barrels_per_tonne[0]}-{a.barrels_per_tonne[1]} barrels per tonne. "
        "Every tanker visit is counted as one full load.</p>"
    )
    thumb_of = _Thumbs(data.store) if data.store else None
    header = "<tr><th>crop</th><th>id</th><th>zone</th><th>class</th><th>tanker p</th><th>first seen</th><th>last seen</th><th>obs</th><th>length m</th><th>mmsi</th><th>dark</th><th>candidates</th><th>barrels</th><th>evidence</th></tr>"

    def rows(visits: Sequence[Visit], limit: int) -> str:
        out_rows = []
        for x in visits[:limit]:
            thumb = thumb_of(x.sightings[0]) if thumb_of and x.sightings else ""
            img = f"<img alt='crop' src='{thumb}'>" if thumb else ""
            bar = f"{_fmt(x.barrels_low)}-{_fmt(x.barrels_high)}" if x.barrels_low else ""
            out_rows.append(
                f"<tr><td>{img}</td><td>{x.visit_id}</td><td>{_fmt(x.zone)}</td><td>{_fmt(x.class_name)}</td><td class='num'>{_fmt(x.tanker_prob)}</td>"
                f"<td>{_fmt(x.first_seen)}</td><td>{_fmt(x.last_seen)}</td><td class='num'>{x.n_obs}</td><td class='num'>{_fmt(x.length_m)}</td>"
                f"<td>{_fmt(x.mmsi)}</td><td>{'yes' if x.dark else ''}</td><td>{_fmt(x.candidates)}</td><td>{bar}</td><td class='muted'>{_fmt(x.evidence)}</td></tr>"
            )
        return "".join(out_rows)

    berth_visits = [x for x in data.visits if any(z.name == x.zone and z.kind is ZoneKind.BERTH for z in data.zones)] or list(v)
    parts += [f"<h2>Visits at berths ({len(berth_visits)})</h2><table>{header}{rows(berth_visits, 200)}</table>"]
    parts += [
        f"<h2>Dark visits ({len(dark)})</h2>",
        f"<table>{header}{rows(dark, 200)}</table>" if dark else "<p class='muted'>None (or no AIS given).</p>",
    ]
    if data.review and data.review.get("reviewed"):
        r = data.review
        bands: dict[str, tuple[float, int]] = r["precision_by_score"]  # type: ignore[assignment]
        table = "".join(
            f"<tr><td>{html.escape(b)}</td><td class='num'>{p:.2f}</td><td class='num'>{n}</td></tr>"
            for b, (p, n) in bands.items()
        )
        parts += [
            f"<h2>Review</h2><p>{r['reviewed']} detections reviewed: {r['accepted']} accepted, {r['rejected']} rejected.</p>",
            f"<table><tr><th>score band</th><th>precision</th><th>reviewed</th></tr>{table}</table>",
        ]
    parts.append("</body></html>")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "report.html", "\n".join(parts) + "\n")
    return out / "report.html"
