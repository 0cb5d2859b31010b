#!/usr/bin/env python3
# tools/hf-check-bert.py: checks a trained Loom BERT against Hugging Face transformers, outside the
# test suite (it needs Python with torch, transformers and tokenizers).
#
#   tools/hf-check-bert.py RUN [--loom .build/release/loom] [--text FILE] [--sentences 40] [--work DIR]
#
# RUN is a finished `loom train` run of model.kind bert (e.g. launch/bert's). The script
#   1. exports it (`loom export RUN --format hf --out DIR`) and loads DIR with
#      BertForMaskedLM.from_pretrained (printing the loading info: no missing, unexpected or
#      mismatched keys must be reported) and AutoTokenizer.from_pretrained;
#   2. takes the last --sentences lines of held-out text that fit the context (default: the run's validation
#      text, --text FILE) with one word each replaced by [MASK] (a word chosen by a fixed seed) and
#      for each compares the tokenizer's ids with Loom's ([CLS] ids [SEP]), transformers' logits at
#      the [MASK] with `loom fill-mask --json --logits --precision fp32` (fp32 as transformers, whatever
#      the run trained in; relative error: the largest |difference|
#      over the largest |logit|), and the top-1 (and top-5) tokens.
# Exits non-zero when a check fails: logits within 1e-4 relative, top-1 identical everywhere.
import argparse, json, os, random, subprocess, sys, tempfile, shutil
import numpy as np
import torch
from transformers import AutoTokenizer, BertForMaskedLM

here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
p = argparse.ArgumentParser()
p.add_argument("run")
p.add_argument("--loom", default=os.path.join(here, ".build/release/loom"))
p.add_argument("--text", default=None, help="held-out text, one sentence a line (default: the end of the Bible corpus launch/bert uses)")
p.add_argument("--sentences", type=int, default=40)
p.add_argument("--work", default=None, help="keep the export here (default: a temporary directory, removed)")
args = p.parse_args()

work = args.work or tempfile.mkdtemp(prefix="hf-check-bert-")
export = os.path.join(work, "export")
subprocess.run([args.loom, "export", args.run, "--format", "hf", "--out", export], check=True)
model, info = BertForMaskedLM.from_pretrained(export, output_loading_info=True)
model.eval()
print("loading info:", {k: v for k, v in info.items() if k != "error_msgs"})
failures = []
for key in ["missing_keys", "unexpected_keys", "mismatched_keys"]:
    if info.get(key):
        failures.append(f"{key}: {info[key]}")
tokenizer = AutoTokenizer.from_pretrained(export)

text = args.text or os.path.join(here, "runs/data/world-english-bible.txt")
# Lines of six words or more that fit the model's context with [CLS] and [SEP].
context = model.config.max_position_embeddings
lines = [l.strip() for l in open(text, encoding="utf-8") if len(l.split()) >= 6]
lines = [l for l in lines if len(tokenizer(l)["input_ids"]) <= context][-args.sentences:]
rng = random.Random(7)
worst, top1, top5, compared = 0.0, 0, 0, 0
for line in lines:
    words = line.split()
    k = rng.randrange(len(words))
    words[k] = "[MASK]"
    masked = " ".join(words)
    loom = json.loads(subprocess.run([args.loom, "fill-mask", args.run, "--text", masked, "--top-k", "5", "--json", "--logits", "--precision", "fp32"],
                                     check=True, capture_output=True, text=True).stdout)
    ids = tokenizer(masked, return_tensors="pt")["input_ids"]
    loom_ids = [tokenizer.cls_token_id] + loom["ids"] + [tokenizer.sep_token_id]
    if ids[0].tolist() != loom_ids:
        failures.append(f"ids differ for {masked!r}: {ids[0].tolist()} vs {loom_ids}")
        continue
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0]
    positions = (ids[0] == tokenizer.mask_token_id).nonzero().flatten().tolist()
    for row, position in enumerate(positions):
        theirs = logits[position].numpy().astype(np.float64)
        ours = np.array(loom["logits"][row], dtype=np.float64)
        error = np.abs(theirs - ours).max() / np.abs(theirs).max()
        worst = max(worst, error)
        compared += 1
        if int(theirs.argmax()) == loom["masks"][row][0]["id"]:
            top1 += 1
        else:
            failures.append(f"top-1 differs for {masked!r}: {int(theirs.argmax())} vs {loom['masks'][row][0]['id']}")
        if list(np.argsort(-theirs, kind="stable")[:5]) == [m["id"] for m in loom["masks"][row]]:
            top5 += 1
    if compared <= 3:
        print(f"{masked}\n  loom: {[m['token'] for m in loom['masks'][0]]}\n  hf:   {tokenizer.convert_ids_to_tokens(np.argsort(-logits[positions[0]].numpy())[:5].tolist())}")

print(f"{compared} masked positions in {len(lines)} sentences: worst relative logit difference {worst:.2e}; "
      f"top-1 identical {top1}/{compared}, top-5 identical {top5}/{compared}")
if worst > 1e-4:
    failures.append(f"logits differ by {worst:.2e} relative (> 1e-4)")
if not args.work:
    shutil.rmtree(work)
if failures:
    print("FAILED:\n  " + "\n  ".join(failures[:20]))
    sys.exit(1)
print("all checks passed")
