#!/usr/bin/env python3
# tools/hf-check-marian.py: checks a Loom encoder-decoder exported as a Hugging Face MarianMTModel
# (`loom export RUN --format hf --out DIR`, then the hidden `loom translation-logits RUN --pairs PAIRS
# --out DIR.loom-logits`) from Python, outside the test suite:
#   1. MarianMTModel.from_pretrained(DIR): no missing or unexpected keys; AutoTokenizer loads.
#   2. The tokenizer gives Loom's token ids; the logits on the pairs equal Loom's (DIR.loom-logits.*)
#      within 1e-4 relative, batched with padding and one pair at a time.
#   3. Greedy generate (num_beams 1, no sampling, Loom's length limit per sentence) on a source file,
#      written one line per source line, for comparison with `loom translate --beam 1`.
# Usage: tools/hf-check-marian.py DIR [--sources FILE --out FILE [--loom FILE]] [--max-extra 50] [--resave]
# Needs: pip install torch transformers safetensors tokenizers
import argparse, json, sys, time

import numpy as np
import torch
from transformers import AutoTokenizer, MarianMTModel


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("dir")
    ap.add_argument("--sources", help="source lines to translate greedily")
    ap.add_argument("--out", help="where the translations go")
    ap.add_argument("--loom", help="loom translate --beam 1 output of the same sources, to compare line by line")
    ap.add_argument("--max-extra", type=int, default=50, help="loom translate's --max-extra (output limit: source tokens + this)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--resave", action="store_true", help="also show what save_pretrained + from_pretrained does to the logits")
    a = ap.parse_args()
    torch.set_grad_enabled(False)

    model, info = MarianMTModel.from_pretrained(a.dir, output_loading_info=True)
    model.eval()
    print(f"from_pretrained: missing {sorted(info['missing_keys'])}, unexpected {sorted(info['unexpected_keys'])}, "
          f"mismatched {sorted(info['mismatched_keys'])}")
    ok = not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    tok = AutoTokenizer.from_pretrained(a.dir)
    cfg = model.config
    print(f"tokenizer {type(tok).__name__}: vocabulary {len(tok)}, eos {tok.eos_token!r} {tok.eos_token_id}, "
          f"decoder start {cfg.decoder_start_token_id}")

    # The position tables are used as loaded: Loom's (tensor2tensor's frequencies), not Marian's own.
    for stack in (model.model.encoder, model.model.decoder):
        own = stack.embed_positions.create_weight()
        print(f"embed_positions: loaded table vs Marian's own formula: max |Δ| {float((stack.embed_positions.weight - own).abs().max()):.3f}")

    # Logits against Loom's, on the pairs exported with --logits-for.
    ids = json.load(open(a.dir + ".loom-logits.json"))
    B, T, V = len(ids["pairs"]), ids["positions"], ids["vocabulary"]
    pairs = [l.split("\t") for l in open(a.dir + ".loom-logits.pairs", encoding="utf-8").read().split("\n") if l]
    same_ids = all(tok(src)["input_ids"] == p["input_ids"] and
                   [cfg.decoder_start_token_id] + tok(tgt, add_special_tokens=False)["input_ids"] == p["decoder_input_ids"]
                   for (src, tgt), p in zip(pairs, ids["pairs"]))
    print(f"tokenizer: AutoTokenizer's ids equal Loom's on the {B} pairs (source + end; start + target): {same_ids}")
    ok = ok and same_ids
    loom = np.fromfile(a.dir + ".loom-logits.f32", dtype="<f4").reshape(B, T, V)
    worst = 0.0
    S = max(len(p["input_ids"]) for p in ids["pairs"])
    src = torch.full((B, S), cfg.pad_token_id); mask = torch.zeros((B, S), dtype=torch.long)
    dec = torch.full((B, T), cfg.pad_token_id)
    for b, p in enumerate(ids["pairs"]):
        s, d = p["input_ids"], p["decoder_input_ids"]
        src[b, :len(s)] = torch.tensor(s); mask[b, :len(s)] = 1; dec[b, :len(d)] = torch.tensor(d)
    batched = model(input_ids=src, attention_mask=mask, decoder_input_ids=dec).logits.numpy()
    for b, p in enumerate(ids["pairs"]):
        s, d = p["input_ids"], p["decoder_input_ids"]
        single = model(input_ids=torch.tensor([s]), decoder_input_ids=torch.tensor([d])).logits.numpy()[0]
        reference = loom[b, :len(d)]
        scale = np.abs(reference).max()
        for name, hf in [("batched", batched[b, :len(d)]), ("alone", single)]:
            rel = float(np.abs(hf - reference).max() / scale)
            worst = max(worst, rel)
            print(f"pair {b} ({len(s)} source, {len(d)} target tokens) {name}: max |Δlogit| / max |logit| = {rel:.2e}, "
                  f"argmax equal {bool((hf.argmax(-1) == reference.argmax(-1)).all())}")
    print(f"logits: worst relative difference {worst:.2e} (limit 1e-4)")
    ok = ok and worst <= 1e-4

    # save_pretrained leaves the position tables out (_keys_to_ignore_on_save); a reload recomputes Marian's.
    if a.resave:
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            model.save_pretrained(d)
            again = MarianMTModel.from_pretrained(d).eval()
            p = ids["pairs"][0]
            x = again(input_ids=torch.tensor([p["input_ids"]]), decoder_input_ids=torch.tensor([p["decoder_input_ids"]])).logits.numpy()[0]
            ref = loom[0, :len(p["decoder_input_ids"])]
            print(f"after save_pretrained + from_pretrained: max |Δlogit| / max |logit| = {float(np.abs(x - ref).max() / np.abs(ref).max()):.2e}")

    if a.sources:
        lines = open(a.sources, encoding="utf-8").read().split("\n")
        if lines and lines[-1] == "": lines.pop()
        encoded = [tok(line)["input_ids"] for line in lines]   # tokens + end, as loom translate
        limit = cfg.max_position_embeddings
        # Loom's limit: at most min(source + max-extra, context) generated tokens, the last of them
        # the end token. generate's max_length counts the start token, forced_eos_token_id fills the last.
        by_limit = {}
        for i, e in enumerate(encoded):
            by_limit.setdefault(min(len(e) + a.max_extra, limit), []).append(i)
        outputs = [None] * len(lines)
        t0 = time.time()
        for n, indices in sorted(by_limit.items()):
            for start in range(0, len(indices), a.batch):
                chunk = indices[start:start + a.batch]
                batch = tok.pad({"input_ids": [encoded[i] for i in chunk]}, return_tensors="pt")
                gen = model.generate(**batch, num_beams=1, do_sample=False, max_length=n + 1)
                for i, row in zip(chunk, gen):
                    outputs[i] = tok.decode(row, skip_special_tokens=True)
        print(f"generate: {len(lines)} sentences in {time.time() - t0:.1f} s")
        with open(a.out, "w", encoding="utf-8") as f:
            for o in outputs: f.write(o + "\n")
        if a.loom:
            ref = open(a.loom, encoding="utf-8").read().split("\n")[:len(lines)]
            same = sum(x == y for x, y in zip(outputs, ref))
            print(f"identical lines: {same}/{len(lines)} = {100 * same / len(lines):.2f}%")
            for i, (x, y) in enumerate(zip(outputs, ref)):
                if x != y: print(f"  line {i + 1}: hf   {x!r}\n  {' ' * len(str(i + 1))}       loom {y!r}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
