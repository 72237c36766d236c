"""The ``shipwatch`` entry point: the one place that turns errors into exit codes.

Exit codes: 0 success; 1 unexpected failure; 2 bad input or usage (one
readable line naming the file and the fix).
"""

from __future__ import annotations

import logging
import os
import sys

import click

from detector.errors import EXIT_BAD_INPUT, ShipwatchError, bad_input_exit


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log more.")
def cli(verbose: bool) -> None:
    """Find ships in satellite GeoTIFFs and count their visits."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    if not verbose:
        # GDAL's notes on odd but readable files are noise to most users.
        logging.getLogger("rasterio").setLevel(logging.ERROR)
    os.environ.setdefault("YOLO_OFFLINE", "1")


def _register() -> None:
    from detector.cli import demo, detect, report, review, visits

    cli.add_command(demo.demo)
    cli.add_command(detect.detect)
    cli.add_command(report.report)
    cli.add_command(review.review)
    cli.add_command(visits.visits)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code."""
    _register()
    try:
        # Without standalone mode click returns a command's Exit code instead of raising it.
        code = cli.main(args=argv, prog_name="shipwatch", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code or 0)
    except click.Abort:
        click.echo("Aborted.", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return EXIT_BAD_INPUT
    except (ShipwatchError, OSError) as exc:
        return bad_input_exit(exc)
    except SystemExit as exc:
        return int(exc.code or 0) if isinstance(exc.code, int) else 1
    return code if isinstance(code, int) else 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
