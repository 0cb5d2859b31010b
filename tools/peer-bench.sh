#!/usr/bin/env bash
# tools/peer-bench.sh: Loom's `bench` and the PyTorch peer (../shared/peers/torch_gpt_bench.py) run
# in alternating pairs — Loom fp32, PyTorch fp32, Loom bf16, PyTorch bf16 — at the tiny, small and
# GPT-2 124M (context 256, batch 4) shapes, 2 threads each; prints one line per run, then each
# shape and precision's pair ratios (Loom / the PyTorch run right after it) and their median.
#   tools/peer-bench.sh [REPEATS]   (needs `swift build -c release` and `pip install torch`)
#   LOOM_SET="kernels.gemm=loom" tools/peer-bench.sh   (each word of LOOM_SET becomes a `--set` of every Loom run)
#   PEER_ISA=avx2 tools/peer-bench.sh   (an AVX2-only CPU's code paths on an AVX-512 one, fp32 only: OpenBLAS
#     Haswell, Loom's kernels at 8 lanes, oneDNN capped at AVX2 in both; PyTorch's ATen and MKL capped too)
set -u
cd "$(dirname "$0")/.."
loom=${LOOM_BIN:-.build/release/loom}
peer=${LOOM_PEER:-../shared/peers/torch_gpt_bench.py}
repeats=${1:-3}
run_loom() { # shape config steps warmup precision [--set …]
    local shape=$1 config=$2 steps=$3 warmup=$4 precision=$5; shift 5
    local setting; for setting in ${LOOM_SET:-}; do set -- "$@" --set "$setting"; done
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE ${isa_loom[@]+"${isa_loom[@]}"} "$loom" bench "$config" --json --steps "$steps" --warmup "$warmup" \
        --set training.precision="$precision" "$@" 2>/dev/null | tail -1 |
        python3 -c "import json,sys; r=json.load(sys.stdin); print('loom  $shape $precision', r['gemm']['selection'], r['tokens_per_s'], 'tokens/s, peak RSS', round(r['memory_ratio'], 2), 'x plan, allocations', r['allocations_in_measured_steps'] - r['onednn_allocations_in_measured_steps'], '(Loom)', r['onednn_allocations_in_measured_steps'], '(oneDNN), peak share', round(r['peak_share'], 3) if r.get('peak_share') else None, 'peak GFLOP/s', round(r['vector_peak_' + r['peak_precision'] + '_gflops'] or 0, 1))" \
        || echo "loom  $shape $precision FAILED"
}
run_torch() { # shape steps warmup precision model-args…
    local shape=$1 steps=$2 warmup=$3 precision=$4; shift 4
    env OMP_NUM_THREADS=2 ${isa_torch[@]+"${isa_torch[@]}"} python3 "$peer" --threads 2 --steps "$steps" --warmup "$warmup" $([ "$precision" = bf16 ] && echo --bf16) "$@" 2>/dev/null |
        tail -1 | python3 -c "import json,sys; print('torch $shape $precision', json.load(sys.stdin)['tokens_per_s'], 'tokens/s')" \
        || echo "torch $shape $precision FAILED"
}
isa_loom=() isa_torch=() precisions="fp32 bf16"
if [ "${PEER_ISA:-}" = avx2 ]; then
    isa_loom=(OPENBLAS_CORETYPE=Haswell LOOM_KERNELS_ISA=avx2 DNNL_MAX_CPU_ISA=AVX2 ONEDNN_MAX_CPU_ISA=AVX2)
    isa_torch=(ATEN_CPU_CAPABILITY=avx2 DNNL_MAX_CPU_ISA=AVX2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2)
    precisions=fp32
fi
log=$(mktemp); trap 'rm -f "$log"' EXIT
tiny=(--layers 4 --heads 4 --width 128 --context 64 --batch 12 --vocab 65)
small=(--layers 6 --heads 6 --width 384 --context 256 --batch 8 --vocab 65)
gpt2=(--layers 12 --heads 12 --width 768 --context 256 --batch 4 --vocab 50257)
{
for _ in $(seq "$repeats"); do
    for p in $precisions; do run_loom tiny configs/shakespeare-char.yaml 50 5 $p; run_torch tiny 30 5 $p "${tiny[@]}"; done
done
for _ in $(seq "$repeats"); do
    for p in $precisions; do run_loom small configs/small.yaml 10 2 $p; run_torch small 10 2 $p "${small[@]}"; done
done
for _ in $(seq "$repeats"); do
    for p in $precisions; do
        run_loom gpt2 configs/gpt2-124m.yaml 6 2 $p --set model.context_length=256
        run_torch gpt2 6 2 $p "${gpt2[@]}"   # PyTorch's first steps run slower: 2 warm-up steps, as Loom's
    done
done
} | tee "$log"
python3 - "$log" <<'SUMMARY'
import statistics, sys
loom = {}
ratios = {}
for line in open(sys.argv[1]):
    w = line.split()
    if len(w) < 5 or w[-1] == "FAILED": continue   # a failed run pairs with nothing
    if w[0] == "loom" and w[5] == "tokens/s,":
        loom[(w[1], w[2])] = float(w[4])
    elif w[0] == "torch" and w[4] == "tokens/s" and (w[1], w[2]) in loom:
        ratios.setdefault((w[1], w[2]), []).append(loom.pop((w[1], w[2])) / float(w[3]))
for (shape, precision), r in ratios.items():
    print(f"pairs {shape} {precision}: " + " ".join(f"{x:.2f}" for x in r) + f"  median {statistics.median(r):.2f}")
SUMMARY
