"""``shipwatch demo --out DIR``: the main job on simulated Vostochny acquisitions."""

from __future__ import annotations

from pathlib import Path

import click
from tqdm import tqdm

from detector.cli.detect import ProgressBar
from detector.demo import run_demo
from detector.simulate import SimConfig


@click.command()
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--days", default=45, show_default=True, type=click.IntRange(1, 3650), help="Days of acquisitions to simulate.")
@click.option("--seed", default=0, show_default=True, type=int)
def demo(out_dir: Path, days: int, seed: int) -> None:
    """Simulate Vostochny, detect ships, count visits per zone, and print them beside the truth.

    Scenes go to OUT/scenes, the truth to OUT/truth, detections and the store to OUT,
    visits to OUT/visits.
    """
    config = SimConfig(days=days, seed=seed)
    with tqdm(desc="render", unit="scene", dynamic_ncols=True) as render_bar:

        def rendered(done: int, total: int) -> None:
            render_bar.total = total
            render_bar.update(done - render_bar.n)
            if done == total:
                render_bar.close()

        bar = ProgressBar(0)
        try:
            result = run_demo(out_dir, config, bar, rendered)
        finally:
            bar.close()
    sim = result.simulation
    click.echo(f"\n{len(sim.acquisitions)} simulated acquisitions over {days} days -> {out_dir / 'scenes'}")
    found = sum(o.ships for o in result.detect.outcomes)
    click.echo(
        f"{found} ship detections; {len(result.visits)} visits counted -> {out_dir / 'visits'}; truth -> {out_dir / 'truth'}"
    )
    click.echo(f"report -> {out_dir / 'report.html'}")
    leaf = {"berth", "anchorage"}
    kinds = {z.name: z.kind.value for z in sim.zones}
    dark = sum(1 for v in result.visits if v.dark and kinds[v.zone] in leaf)
    dark_truth = sum(1 for v in sim.truth if v.dark and kinds[v.zone] in leaf)
    tankers = sum(1 for v in result.visits if v.class_name == "tanker" and kinds[v.zone] in leaf)
    tankers_truth = sum(1 for v in sim.truth if v.class_name == "tanker" and kinds[v.zone] in leaf)
    click.echo(
        f"tanker visits at berths and anchorages: {tankers} counted, {tankers_truth} true; dark visits: {dark} counted, {dark_truth} true"
    )
    click.echo(f"\n{'zone':<30}{'class':<8}{'counted':>9}{'truth':>7}")
    for zone, cls, counted, truth in result.table():
        click.echo(f"{zone:<30}{cls:<8}{counted:>9}{truth:>7}")
