#!/usr/bin/env bash
# The CPU benchmark suite of docs/benchmarks.md, exactly as run there (2 shared CPU cores).
# Usage: bash benchmarks/run_cpu_suite.sh [OUT_ROOT]   (default benchmarks/runs; needs the shipped
# branches tta_sr/weights/lr_recon_{hr_aware_cpu,lway_cpu}.pth). Each python job uses 1 torch thread
# (see PRESETS in benchmarks/common.py); the three long jobs run side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-benchmarks/runs}
mkdir -p "$OUT"
python benchmarks/datasets.py
S14=benchmarks/data/set14_synth_x4
C100=benchmarks/data/city100_x4_c480

python benchmarks/compare.py --lr $S14/lr --gt $S14/gt --model RealESRGAN_x4plus \
    --methods base,rec_only,lway,hr_aware --iters 30 --seed 0 --preset cpu \
    --branch hr_aware_cpu --lway-branch lway_cpu --out "$OUT/set14_synth_realesrgan_cpu" > "$OUT/set14.log" 2>&1 &
python benchmarks/compare.py --lr $C100/lr --gt $C100/gt --model RealESRGAN_x4plus \
    --methods base,rec_only,lway,hr_aware --iters 30 --seed 0 --preset cpu \
    --branch hr_aware_cpu --lway-branch lway_cpu --out "$OUT/city100_realesrgan_cpu" > "$OUT/city100.log" 2>&1 &
python benchmarks/iterations.py --lr $S14/lr --gt $S14/gt --model realesr-animevideov3 \
    --methods lway,hr_aware --iters 800 --every 50 --lq-size 32 --batch 2 --seed 0 --preset cpu \
    --branch hr_aware_cpu --lway-branch lway_cpu --out "$OUT/curves_animevideov3_set14" > "$OUT/curves.log" 2>&1 &
wait

python benchmarks/overhead.py --lr $S14/lr --gt $S14/gt --model RealESRGAN_x4plus --max-images 1 --repeats 3 \
    --branch hr_aware_cpu --lway-branch lway_cpu --out "$OUT/overhead_realesrgan_cpu"
python benchmarks/overhead.py --lr $S14/lr --gt $S14/gt --model realesr-animevideov3 --max-images 1 --repeats 5 \
    --branch hr_aware_cpu --lway-branch lway_cpu --out "$OUT/overhead_animevideov3_cpu"
