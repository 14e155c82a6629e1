#!/usr/bin/env bash
# The CPU benchmark suite of docs/benchmarks.md, as run there (2 shared CPU cores, about 1 h 15 min).
# Usage: bash benchmarks/run_cpu_suite.sh [OUT_ROOT]   (default benchmarks/runs). Each python job uses 1 torch
# thread (the cpu preset of benchmarks/presets.py); two jobs run side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-benchmarks/runs}
mkdir -p "$OUT"
python benchmarks/datasets.py city100 synthetic families mild

# stage 1: the shipped branches against fixed downscalers on held-out pairs (docs/pretraining.md)
python benchmarks/branch_fidelity.py --branches hr_aware_cpu,lway_cpu --out "$OUT/branch_fidelity"

# Table 1: one compare.py run per set, every method on the same 5 images and crops. The fixed row (the
# headroom reference) uses the downscaler that, given the GT, explains each set's LR best.
table1() {  # NAME SET_DIR FIXED_DOWNSCALER
  python benchmarks/compare.py --lr "$2/lr" --gt "$2/gt" --model RealESRGAN_x4plus \
      --methods base,lway,hr_aware,fixed,srtta --iters 30 --preset cpu --threads 1 --max-images 5 --seed 0 \
      --set train.fixed_degradation="$3" --out "$OUT/final_$1" > "$OUT/final_$1.log" 2>&1
}
(table1 city100 benchmarks/data/city100_x4_c480 bicubic_aa; table1 set14_synth benchmarks/data/set14_synth_x4 gauss4.0) &
(table1 urban100_mild benchmarks/data/urban100_mild_x4 gauss0.8; table1 quickstart options/quickstart/demo_photos gauss1.6) &
wait

# Figure 9: the compact model to 600 iterations, HR-aware and LWay side by side, then merged
CURVE=(--lr benchmarks/data/set14_synth_x4/lr --gt benchmarks/data/set14_synth_x4/gt --model realesr-animevideov3
       --iters 600 --every 100 --lq-size 32 --batch 2 --seed 0 --preset cpu --threads 1 --no-niqe)
python benchmarks/iterations.py "${CURVE[@]}" --methods hr_aware --out "$OUT/curves_600" > "$OUT/curves_a.log" 2>&1 &
python benchmarks/iterations.py "${CURVE[@]}" --methods lway --out "$OUT/curves_600_lway" > "$OUT/curves_b.log" 2>&1 &
wait
python benchmarks/iterations.py "${CURVE[@]}" --methods '' --out "$OUT/curves_600" --merge-from "$OUT/curves_600_lway"
# the same HR-aware curve with the steady option of docs/adaptation.md (row E: L1-only L_rec, perceptual source
# anchor) and with the low-pass anchor alone (row J, the previous default)
python benchmarks/iterations.py "${CURVE[@]}" --methods hr_aware --set train.rec_opt.lpips_weight=0 \
    --set 'train.source_opt={type: ReconstructionLoss, l1_weight: 0, lpips_weight: 1}' --out "$OUT/curves_600_steady" \
    > "$OUT/curves_c.log" 2>&1 &
python benchmarks/iterations.py "${CURVE[@]}" --methods hr_aware --set train.source_opt.detail_weight=0 \
    --out "$OUT/curves_600_lowpass" > "$OUT/curves_d.log" 2>&1 &
wait
