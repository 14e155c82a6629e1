#!/usr/bin/env bash
# The CPU benchmark suite of docs/benchmarks.md, as run there (2 shared CPU cores).
# Usage: bash benchmarks/run_cpu_suite.sh [OUT_ROOT]   (default benchmarks/runs; needs the shipped
# branches tta_sr/weights/lr_recon_{hr_aware_cpu,lway_cpu}.pth). Each python job uses 1 torch thread
# (see PRESETS in benchmarks/common.py); the long jobs run side by side, each method group into its own
# folder, and are merged at the end (--merge-from checks that the settings are identical).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-benchmarks/runs}
mkdir -p "$OUT"
python benchmarks/datasets.py
S14=benchmarks/data/set14_synth_x4
C100=benchmarks/data/city100_x4_c480
COMMON=(--model RealESRGAN_x4plus --iters 30 --seed 0 --preset cpu --branch hr_aware_cpu --lway-branch lway_cpu)
CURVE=(--model realesr-animevideov3 --iters 800 --every 50 --lq-size 32 --batch 2 --seed 0 --preset cpu
       --branch hr_aware_cpu --lway-branch lway_cpu)

# one-step cost (interleaved repeats in one process; memory in child processes)
python benchmarks/overhead.py --lr $S14/lr --gt $S14/gt --model RealESRGAN_x4plus --max-images 1 --repeats 3 \
    --branch hr_aware_cpu --lway-branch lway_cpu --out "$OUT/overhead_realesrgan_cpu"
python benchmarks/overhead.py --lr $S14/lr --gt $S14/gt --model realesr-animevideov3 --max-images 1 --repeats 5 \
    --branch hr_aware_cpu --lway-branch lway_cpu --out "$OUT/overhead_animevideov3_cpu"

python benchmarks/compare.py --lr $S14/lr --gt $S14/gt --methods base,rec_only,lway "${COMMON[@]}" \
    --out "$OUT/set14_synth_realesrgan_cpu" > "$OUT/set14_a.log" 2>&1 &
python benchmarks/compare.py --lr $C100/lr --gt $C100/gt --methods base,rec_only,lway "${COMMON[@]}" \
    --out "$OUT/city100_realesrgan_cpu" > "$OUT/city100_a.log" 2>&1 &
python benchmarks/compare.py --lr $S14/lr --gt $S14/gt --methods hr_aware "${COMMON[@]}" \
    --out "$OUT/set14_synth_realesrgan_cpu_hr_aware" > "$OUT/set14_b.log" 2>&1 &
python benchmarks/compare.py --lr $C100/lr --gt $C100/gt --methods hr_aware "${COMMON[@]}" \
    --out "$OUT/city100_realesrgan_cpu_hr_aware" > "$OUT/city100_b.log" 2>&1 &
python benchmarks/iterations.py --lr $S14/lr --gt $S14/gt --methods lway "${CURVE[@]}" \
    --out "$OUT/curves_animevideov3_set14" > "$OUT/curves_a.log" 2>&1 &
python benchmarks/iterations.py --lr $S14/lr --gt $S14/gt --methods hr_aware "${CURVE[@]}" \
    --out "$OUT/curves_animevideov3_set14_hr_aware" > "$OUT/curves_b.log" 2>&1 &
wait

# merge (no training: --methods '' only copies the other folder's methods and redraws the table / plot)
python benchmarks/compare.py --lr $S14/lr --gt $S14/gt --methods '' "${COMMON[@]}" \
    --out "$OUT/set14_synth_realesrgan_cpu" --merge-from "$OUT/set14_synth_realesrgan_cpu_hr_aware"
python benchmarks/compare.py --lr $C100/lr --gt $C100/gt --methods '' "${COMMON[@]}" \
    --out "$OUT/city100_realesrgan_cpu" --merge-from "$OUT/city100_realesrgan_cpu_hr_aware"
python benchmarks/iterations.py --lr $S14/lr --gt $S14/gt --methods '' "${CURVE[@]}" \
    --out "$OUT/curves_animevideov3_set14" --merge-from "$OUT/curves_animevideov3_set14_hr_aware"

# one-at-a-time sweeps of lambda_ft, noise_std and the learning rate on a TUNING set (BSD68 with the same
# synthetic degradation; not a reported set): what docs/benchmarks.md reads the settings from
python benchmarks/datasets.py synthetic --synthetic-src ../shared/data/BSD68/HR --synthetic-name bsd68_synth_x4
B=benchmarks/data/bsd68_synth_x4
python benchmarks/sweep.py --out "$OUT/sweep_bsd68" --far-weight 0,0.001,0.01,1 --noise-std 0,1 \
    --learning-rate 5e-6,5e-5 -- --lr $B/lr --gt $B/gt "${COMMON[@]}" --max-images 3 --no-niqe

# HR-aware at the FAR weight the sweep's rule picks (lambda_ft 0.001): the extra rows of Table 1 and curve
python benchmarks/compare.py --lr $S14/lr --gt $S14/gt --methods hr_aware "${COMMON[@]}" --far-weight 0.001 \
    --out "$OUT/set14_synth_realesrgan_cpu_hr_aware_fw0.001"
python benchmarks/compare.py --lr $C100/lr --gt $C100/gt --methods hr_aware "${COMMON[@]}" --far-weight 0.001 \
    --out "$OUT/city100_realesrgan_cpu_hr_aware_fw0.001"
python benchmarks/iterations.py --lr $S14/lr --gt $S14/gt --methods hr_aware "${CURVE[@]}" --far-weight 0.001 \
    --out "$OUT/curves_animevideov3_set14_hr_aware_fw0.001"
