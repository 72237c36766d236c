#!/usr/bin/env bash
# Run here, before a device call. The lent GPU machines have PyTorch, NumPy, SciPy, OpenCV, pytest
# and hypothesis, but not Shipwatch's geospatial and YOLO packages, and nothing can be fetched
# there. This fetches those as CPython 3.12 manylinux wheels (the device's Python), in two parts
# that each fit the device tool's 64 MiB limit beside the working tree (rasterio alone is 22 MB):
#   .whl/1  rasterio and its pure-Python needs
#   .whl/2  pyproj, shapely, ultralytics, sahi (the benchmark's baseline) and their small needs
# Then two device calls, back to back (a machine goes back after about 30 s idle):
#   run  carry=[".whl/1"]  bash scripts/gpu_check.sh --install-only
#   run  carry=[".whl/2"]  bash scripts/gpu_check.sh
# Each installs its part into .gpu_site/ there, which the second call finds again.
set -euo pipefail
cd "$(dirname "$0")/.."
fetch() {
  local part=$1
  shift
  mkdir -p ".whl/$part"
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d ".whl/$part" "$@"
}
# rasterio 1.4.3: its manylinux2014 wheel is 22 MB, 1.4.4's 36 MB (the same API for Shipwatch)
fetch 1 rasterio==1.4.3 affine cligj click-plugins
fetch 2 pyproj==3.7.2 shapely==2.2.0 ultralytics==8.4.190 ultralytics-thop sahi==0.12.8 fire termcolor
du -sh .whl/1 .whl/2
