#!/usr/bin/env bash
# tools/same-bytes.sh LOOM_BIN OUT_DIR: a behaviour check for refactorings. Runs, with a given
# loom binary, 60-step trainings of a GPT (dropout on) and an encoder-decoder (post-LN and pre-LN,
# dropout on), each on 1 rank and on 2 ranks (mpirun), plus tokenizer training, tokenization (1 and
# 2 ranks), sampling and beam translation; copies the byte-comparable outputs into OUT_DIR.
# Run it with the binary before and after a change and compare: diff A.sha256 B.sha256 (or cmp
# file by file); any difference is a change of behaviour. Environment: DATA (the corpora, default
# ../shared/data beside the repository), CFG (the config directory, default the repository's),
# PRENORM (the --set that selects pre-LN). Needs mpirun; takes about a minute on 2 cores.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
L="$(realpath "$1")"; OUT="$(realpath -m "$2")"; rm -rf "$OUT"; mkdir -p "$OUT"
D="${DATA:-$here/../shared/data}"; W="$(mktemp -d)"; trap 'rm -rf "$W"' EXIT; cd "$W"
export OMP_NUM_THREADS=1
MPI=(mpirun --oversubscribe -n 2); [ "$(id -u)" -eq 0 ] && MPI+=(--allow-run-as-root)
# data for the encoder-decoder: first 3000 pairs of Multi30k
head -3000 $D/multi30k/train.en > tr.en; head -3000 $D/multi30k/train.de > tr.de
head -200 $D/multi30k/val.en > va.en; head -200 $D/multi30k/val.de > va.de
"$L" tokenizer train --vocab-size 600 --special '<|endoftext|>' --out tok.json tr.en tr.de >/dev/null
cp tok.json "$OUT/tokenizer.json"
"$L" tokenize --tokenizer tok.json --source tr.en --target tr.de --out sh1 >/dev/null
"${MPI[@]}" "$L" tokenize --tokenizer tok.json --source tr.en --target tr.de --out sh2 >/dev/null
"$L" tokenize --tokenizer tok.json --source va.en --target va.de --out val >/dev/null
for d in sh1 sh2; do mkdir -p "$OUT/$d"; cp -r $d/* "$OUT/$d/"; done
gpt=(--set model.layers=2 --set model.heads=2 --set model.width=64 --set model.context_length=32
     --set model.dropout=0.1 --set training.steps=60 --set training.batch_size=8 --set training.micro_batch_size=4
     --set evaluation.interval=30 --set evaluation.batches=4 --set logging.interval=20 --set checkpoint.interval=60
     --set data.corpus=$D/tinyshakespeare/input.txt)
CFG="${CFG:-$here/configs}"; PRENORM="${PRENORM:-model.norm_placement=pre}"
"$L" train $CFG/shakespeare-char.yaml "${gpt[@]}" --set training.threads=1 --run-dir gpt1 >/dev/null
"${MPI[@]}" "$L" train $CFG/shakespeare-char.yaml "${gpt[@]}" --set training.threads=1 --run-dir gpt2 >/dev/null
"$L" train $CFG/shakespeare-char.yaml "${gpt[@]}" --set training.threads=1 --set training.precision=bf16 --run-dir gptbf16 >/dev/null
"$L" sample gpt1 --prompt "ROMEO:" --max-tokens 100 --temperature 0.8 --seed 1 > "$OUT/gpt1.sample.txt"
ed=(--set model.encoder_layers=2 --set model.layers=2 --set model.heads=2 --set model.width=64 --set model.ffn_width=128
    --set model.context_length=160 --set model.dropout=0.1 --set training.steps=60 --set training.batch_size=32
    --set training.max_tokens=2048 --set training.micro_batch_size=16 --set schedule.warmup_steps=20
    --set schedule.cooldown_steps=0 --set evaluation.interval=30 --set logging.interval=20 --set checkpoint.interval=60
    --set data.shards=sh1 --set data.validation_shards=val --set training.threads=1)
"$L" train $CFG/multi30k-en-de.yaml "${ed[@]}" --run-dir ed1 >/dev/null
"$L" train $CFG/multi30k-en-de.yaml "${ed[@]}" --set training.precision=bf16 --run-dir edbf16 >/dev/null
"${MPI[@]}" "$L" train $CFG/multi30k-en-de.yaml "${ed[@]}" --run-dir ed2 >/dev/null
"$L" train $CFG/multi30k-en-de.yaml "${ed[@]}" --set "$PRENORM" --run-dir edpre1 >/dev/null
"${MPI[@]}" "$L" train $CFG/multi30k-en-de.yaml "${ed[@]}" --set "$PRENORM" --run-dir edpre2 >/dev/null
"$L" train $CFG/multi30k-en-de.yaml "${ed[@]}" --set training.steps=400 --set checkpoint.interval=400 --run-dir edlong >/dev/null
"$L" train $CFG/multi30k-en-de.yaml "${ed[@]}" --set training.steps=400 --set checkpoint.interval=400 --set "$PRENORM" --run-dir edprelong >/dev/null
head -20 va.en | "$L" translate edlong --beam 4 > "$OUT/edlong.beam4.txt"
head -20 va.en | "$L" translate edprelong --beam 1 > "$OUT/edprelong.greedy.txt"
head -20 va.en | "$L" translate edprelong --beam 4 > "$OUT/edprelong.beam4.txt"
"$L" sample gpt2 --prompt "KING" --max-tokens 100 --temperature 0 --seed 1 > "$OUT/gpt2.greedy.txt"
for r in gptbf16 edbf16 gpt1 gpt2 ed1 ed2 edpre1 edpre2 edlong edprelong; do
  mkdir -p "$OUT/$r"
  for f in $(cd $r && find . -name '*.safetensors' -o -name 'optimizer*' | sort); do
    mkdir -p "$OUT/$r/$(dirname $f)"; cp "$r/$f" "$OUT/$r/$f"; done
done
(cd "$OUT" && find . -type f | sort | xargs sha256sum) > "$OUT.sha256"
echo "same-bytes: $(wc -l < "$OUT.sha256") files in $OUT; hashes in $OUT.sha256"
