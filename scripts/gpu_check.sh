#!/usr/bin/env bash
# On a lent GPU (H100/H200), under 8 minutes: the GPU tests, the CUDA benchmark with a batch
# sweep, and a short table. Figures land in $OUT (or ./gpu_check).
# The lent machines cannot fetch packages: first run scripts/gpu_wheels.sh here, which says how
# to carry its wheels in two calls; each call installs what it carries into .gpu_site/.
# `--install-only` stops after that. Where .whl/ is absent, pip installs the extras as usual.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${OUT:-gpu_check}
mkdir -p "$OUT"
export YOLO_OFFLINE=1 YOLO_CONFIG_DIR="$OUT/ultralytics" SHIPWATCH_CACHE_DIR="$OUT/cache"
if compgen -G ".whl/*/*.whl" >/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target .gpu_site .whl/*/*.whl || exit 1
fi
if [ -d .gpu_site ]; then
  export PYTHONPATH="$PWD/.gpu_site:$PWD${PYTHONPATH:+:$PYTHONPATH}" PATH="$PWD/.gpu_site/bin:$PATH"
else
  $PY -m pip install -q -e '.[dev,bench]' 2>&1 | tail -2
fi
[ "${1:-}" = --install-only ] && { $PY -c "import rasterio; print('installed: rasterio', rasterio.__version__)"; exit; }
$PY -c "import rasterio, pyproj, shapely, ultralytics, sahi, torch, detector.job" || {
  echo "a package is missing: run scripts/gpu_wheels.sh here and carry .whl/1, then .whl/2"
  exit 1
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
timeout 150 $PY -m pytest -q -m "gpu or real_model" tests/test_gpu.py tests/test_yolo.py 2>&1 | tail -5 | tee "$OUT/pytest.txt"
scene="$OUT/bench_8192.tif"
$PY -c "import sys; sys.path.insert(0, 'scripts'); import benchmark; benchmark.build_scene(__import__('pathlib').Path('$scene'), 8192)"
timeout 200 $PY scripts/benchmark.py --device cuda --scene "$scene" --json "$OUT/bench_cuda.json" 2>&1 | tail -12
for b in 8 16 32 64; do
  timeout 40 $PY scripts/benchmark.py --device cuda --scene "$scene" --methods shipwatch,model_only --batch-size "$b" \
    --readers 8 --json "$OUT/sweep_$b.json" > /dev/null 2>&1 || echo "batch $b failed"
done
$PY - "$OUT" <<'PY'
import json, sys, pathlib
out = pathlib.Path(sys.argv[1])
print(f"{'batch':>6}{'engine Mpx/s':>14}{'model Mpx/s':>13}{'e2e/model':>11}{'GPU MB':>9}")
for f in sorted(out.glob("sweep_*.json"), key=lambda p: int(p.stem.split("_")[1])):
    r = json.loads(f.read_text())
    print(f"{f.stem.split('_')[1]:>6}{r['engine_mpx_s']:>14.1f}{r['model_only_mpx_s']:>13.1f}{r['ratio_vs_model_only']:>11.2f}{r['gpu_max_alloc_mb'] or 0:>9.0f}")
main = json.loads((out / "bench_cuda.json").read_text())
print({k: main[k] for k in ("engine_mpx_s", "sahi_mpx_s", "ratio_vs_sahi", "ratio_vs_model_only", "agreement_f1")})
PY
rm -f "$scene"
