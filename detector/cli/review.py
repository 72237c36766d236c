"""``shipwatch review --db FILE``: one detection at a time, single keypresses, nothing lost.

Keys: a accept, r reject (not a ship), t tanker, o other ship, s skip, u undo, ? help, q quit
(Enter after a key is fine too). Each decision is committed as it is made.
"""

from __future__ import annotations

import base64
import os
import sys
import termios
import tty
from pathlib import Path

import click
import numpy as np

from detector.errors import ShipwatchError, UsageError
from detector.quicklook import ship_crop, write_png
from detector.raster import Scene, open_for_viewing
from detector.review import KEYS, QueueOrder, ReviewItem, apply_decisions, export_reviews, review_queue
from detector.store import Store
from detector.zones import load_zones

HELP = "a accept  r reject (not a ship)  t tanker  o other ship  s skip  u undo  ? help  q quit"


def _key() -> str:
    """One keypress (raw mode on a terminal; a line's first character otherwise)."""
    if not sys.stdin.isatty():
        line = sys.stdin.readline()
        return line.strip()[:1] if line else "q"
    fd = sys.stdin.fileno()
    old = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        while True:
            ch = sys.stdin.read(1)
            if ch == "\x03":
                raise KeyboardInterrupt
            if ch not in ("\r", "\n"):
                return ch
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)


def _crop(item: ReviewItem, out: Path, scenes: dict[str, Scene]) -> Path:
    """A PNG of the detection with context, its box in red, enlarged when small.

    ``scenes`` keeps each scene opened once per session (opening one reads a sample of it).
    """
    if item.scene_path not in scenes:
        scenes[item.scene_path] = open_for_viewing(item.scene_path, item.stretch_window)
    return write_png(out, ship_crop(scenes[item.scene_path], item.ship, min_half=32, side=256))


def sixel(png: Path, colours: int = 64) -> str:
    """A PNG as a sixel image (DEC graphics: one character per 6-pixel column, per palette colour)."""
    from PIL import Image

    image = Image.open(png).convert("RGB").quantize(colors=colours)
    pixels = np.asarray(image)
    palette = (image.getpalette() or [])[: 3 * colours]
    h, w = pixels.shape
    out = ["\x1bPq", f'"1;1;{w};{h}']
    for i in range(len(palette) // 3):
        r, g, b = palette[3 * i : 3 * i + 3]
        out.append(f"#{i};2;{r * 100 // 255};{g * 100 // 255};{b * 100 // 255}")
    weights = (1 << np.arange(6))[:, None]
    for top in range(0, h, 6):
        band = pixels[top : top + 6]
        for colour in np.unique(band):
            bits = ((band == colour) * weights[: len(band)]).sum(axis=0)
            out.append(f"#{colour}" + "".join(chr(63 + int(b)) for b in bits) + "$")
        out.append("-")
    out.append("\x1b\\")
    return "".join(out)


def _protocol(choice: str) -> str:
    if choice != "auto":
        return choice
    term, program = os.environ.get("TERM", ""), os.environ.get("TERM_PROGRAM", "")
    if term == "xterm-kitty" or os.environ.get("KITTY_WINDOW_ID"):
        return "kitty"
    if program == "iTerm.app":
        return "iterm"
    if "sixel" in term or term in ("foot", "mlterm") or program in ("WezTerm", "mintty"):
        return "sixel"
    return "png"


def _show(png: Path, open_viewer: bool, images: str = "auto") -> None:
    """Inline in kitty, iTerm2 or a sixel terminal; otherwise print the path (and open it with --open)."""
    protocol = _protocol(images)
    data = base64.b64encode(png.read_bytes()).decode()
    if protocol == "kitty":
        chunks = [data[i : i + 4096] for i in range(0, len(data), 4096)]
        for i, chunk in enumerate(chunks):
            more = 1 if i < len(chunks) - 1 else 0
            head = f"a=T,f=100,m={more}" if i == 0 else f"m={more}"
            sys.stdout.write(f"\x1b_G{head};{chunk}\x1b\\")
        sys.stdout.write("\n")
    elif protocol == "iterm":
        sys.stdout.write(f"\x1b]1337;File=inline=1;size={png.stat().st_size}:{data}\a\n")
    elif protocol == "sixel":
        sys.stdout.write(sixel(png) + "\n")
    else:
        click.echo(f"  crop: {png}")
        if open_viewer:
            click.launch(str(png))
    sys.stdout.flush()


def _describe(item: ReviewItem, left: int) -> str:
    s = item.ship
    when = f"{s.acquired_at:%Y-%m-%d %H:%M} UTC" if s.acquired_at else "time unknown"
    size = f"{s.length_m:.0f} x {s.beam_m:.0f} m" if s.length_m and s.beam_m else f"{s.px_length:.0f} x {s.px_width:.0f} px"
    heading = f", heading {s.heading_deg:.0f}°" if s.heading_deg is not None else ""
    return (
        f"\n[{left} left] detection {item.detection_id}  {s.scene}  {when}  zone: {item.zone or '-'}\n"
        f"  score {s.score:.2f}  class {s.class_name}  tanker p {item.tanker_prob:.2f}  {size}{heading}"
    )


def _session(db: Path, queue: QueueOrder, reviewer: str, open_viewer: bool, zones: Path | None, images: str) -> None:
    with Store(db) as store:
        zone_list = load_zones(zones)
        crops = db.parent / "review_crops"
        scenes: dict[str, Scene] = {}
        # The queue is built once and walked; it is rebuilt after an undo (the undone
        # detection takes its place again) and when it runs out (skipped ones come back).
        items, i = review_queue(store, zone_list, queue), 0
        while True:
            if i >= len(items):
                items, i = review_queue(store, zone_list, queue), 0
            if not items:
                click.echo("Nothing left to review.")
                return
            item = items[i]
            click.echo(_describe(item, len(items) - i))
            try:
                _show(_crop(item, crops / f"{item.detection_id}.png", scenes), open_viewer, images)
            except ShipwatchError as exc:
                click.echo(f"  (no crop: {exc})")
            click.echo(f"  [{HELP}] ", nl=False)
            while True:
                key = _key().lower()
                if key in KEYS:
                    store.add_review(item.detection_id, KEYS[key], reviewer)
                    click.echo(str(KEYS[key]))
                    i += 1
                    break
                if key == "u":
                    undone = store.undo_review(reviewer)
                    click.echo(f"undid detection {undone}" if undone else "nothing to undo")
                    items, i = review_queue(store, zone_list, queue), 0
                    break
                if key == "q":
                    click.echo("quit; every decision is saved")
                    return
                click.echo(f"\n  {HELP}\n  ", nl=False)


@click.group(invoke_without_command=True)
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), help="The Shipwatch store to review.")
@click.option("--queue", type=click.Choice([q.value for q in QueueOrder]), default="uncertain", show_default=True)
@click.option("--reviewer", default=lambda: os.environ.get("USER", "reviewer"), help="Recorded with each decision.")
@click.option(
    "--decisions",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Apply a CSV of detection_id,decision[,reviewer] instead.",
)
@click.option("--zones", type=click.Path(dir_okay=False, path_type=Path), help="Zones GeoJSON [default: Vostochny].")
@click.option("--open", "open_viewer", is_flag=True, help="Open each crop in the system viewer when the terminal cannot show it.")
@click.option(
    "--images",
    type=click.Choice(["auto", "kitty", "iterm", "sixel", "png"]),
    default="auto",
    show_default=True,
    help="How crops are shown.",
)
@click.pass_context
def review(
    ctx: click.Context,
    db: Path | None,
    queue: str,
    reviewer: str,
    decisions: Path | None,
    zones: Path | None,
    open_viewer: bool,
    images: str,
) -> None:
    """Review detections one at a time: a accept, r reject, t tanker, o other, s skip, u undo, q quit."""
    if ctx.invoked_subcommand is not None:
        return
    if db is None:
        raise UsageError("pass --db FILE, the store written by shipwatch detect")
    if not db.is_file():
        raise UsageError(f"{db}: no such store; run shipwatch detect first or check --db")
    if decisions is not None:
        with Store(db) as store:
            n = apply_decisions(store, decisions, reviewer)
        click.echo(f"{n} decisions applied from {decisions}")
        return
    try:
        _session(db, QueueOrder(queue), reviewer, open_viewer, zones, images)
    except KeyboardInterrupt:
        click.echo("\ninterrupted; every decision is saved")


@review.command("export")
@click.option("--db", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--scale", type=float, help="Enlargement of chips  [default: the detecting model's, 3 for the 10 m models]")
@click.option("--bands", help="Band files of band folders as R,G,B, e.g. B04,B03,B02  [default: the detecting model's]")
@click.option("--chip", default=640, show_default=True, type=int)
@click.option(
    "--classes",
    type=click.Choice(["ship,tanker", "ship"]),
    default="ship,tanker",
    show_default=True,
    help="Dataset classes; 'ship' (tankers labelled ship) merges with the single-class sen2ships datasets.",
)
def export(db: Path, out_dir: Path, scale: float | None, bands: str | None, chip: int, classes: str) -> None:
    """Write OUT/labels.geojson and a YOLO-OBB dataset OUT/dataset (rejections become negatives)."""
    if not db.is_file():
        raise UsageError(f"{db}: no such store; run shipwatch detect first or check --db")
    with Store(db) as store:
        summary = export_reviews(
            store, out_dir, tuple(classes.split(",")), scale, chip, tuple(bands.split(",")) if bands else None
        )
    composite, enlarged = summary["bands"], summary["settings"]["scale"]  # type: ignore[index]
    click.echo(
        f"{summary['labels']} reviewed detections -> {out_dir / 'labels.geojson'}, {out_dir / 'dataset' / 'data.yaml'} "
        f"(chips of {', '.join(composite)} at {enlarged:g}x)"  # type: ignore[arg-type]
    )
