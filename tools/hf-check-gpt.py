#!/usr/bin/env python3
# tools/hf-check-gpt.py: checks Loom's GPT against Hugging Face transformers, both ways, outside the
# test suite (it needs Python with torch, transformers, safetensors and tokenizers).
#
#   tools/hf-check-gpt.py [--loom .build/release/loom] [--data ../shared/data] [--steps 300]
#                         [--tokenizers char,bpe] [--work DIR]
#
# For each tokenizer (Loom's character vocabulary; a byte-level BPE of 1024 tokens from
# `loom tokenizer train`):
#   1. trains configs/shakespeare-char.yaml (4 layers × 128, context 64) for --steps steps on Tiny
#      Shakespeare, then `loom export RUN --format hf --out DIR`;
#   2. loads DIR with AutoModelForCausalLM.from_pretrained / AutoTokenizer.from_pretrained (prints
#      the loading info: no missing, unexpected or mismatched keys), checks that the tokenizer
#      encodes the held-out text (the last 2000 characters of the corpus, inside Loom's validation
#      split) into Loom's ids and decodes them back exactly, and compares the model's logits on its
#      first 64 tokens with Loom's (`loom logits`, a hidden command: raw F32 logits of a run);
#   3. compares greedy `generate` (do_sample=False, one beam, no repetition penalty, no end token,
#      as many new tokens as fill the context) with `loom sample --temperature 0`, as bytes, and
#      token for token by teacher forcing: Loom's argmax after every prefix of transformers' token
#      sequence (`loom logits --token-ids`) is transformers' next token;
#   4. the reverse: a random GPT2LMHeadModel of the same shape (every parameter perturbed, so
#      LayerNorms and biases count) saved with save_pretrained in F32 and in BF16, with the
#      tokenizer from step 1, imported by `loom train --init-from DIR` with a step that cannot move
#      the weights (learning rate 1e-30), and the two models' logits compared (BF16 against the
#      model widened to F32, as Loom widens it).
# Exits non-zero when a check fails: logits must agree within 1e-4 of the largest logit.
# docs/huggingface.md says what the export and the import do; figures are in docs/benchmarks.md.
import argparse, json, os, shutil, subprocess, sys, tempfile
import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GPT2Config, GPT2LMHeadModel, GenerationConfig, PreTrainedTokenizerFast

here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
p = argparse.ArgumentParser()
p.add_argument("--loom", default=os.path.join(here, ".build/release/loom"))
p.add_argument("--data", default=os.path.join(here, "../shared/data"))
p.add_argument("--steps", type=int, default=300)
p.add_argument("--tokenizers", default="char,bpe")
p.add_argument("--work", default=None, help="keep the files here (default: a temporary directory, removed)")
args = p.parse_args()
loom = os.path.abspath(args.loom)
corpus = os.path.abspath(os.path.join(args.data, "tinyshakespeare/input.txt"))
config = os.path.join(here, "configs/shakespeare-char.yaml")
work = os.path.abspath(args.work) if args.work else tempfile.mkdtemp(prefix="hf-check-gpt-")
os.makedirs(work, exist_ok=True)
torch.manual_seed(0)
failures = []

def run(*command, capture=True):
    r = subprocess.run([loom, *command], cwd=work, capture_output=True)
    if r.returncode != 0:
        sys.exit(f"loom {' '.join(command)} failed ({r.returncode}):\n{r.stderr.decode()}")
    return r.stdout

def bytes_to_unicode():
    """GPT-2's byte → printable character map (how byte-level BPE tokens spell bytes)."""
    bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs: bs.append(b); cs.append(256 + n); n += 1
    return dict(zip(bs, map(chr, cs)))

def check(name, ok, detail):
    print(f"  {'ok  ' if ok else 'FAIL'} {name}: {detail}")
    if not ok: failures.append(name)

def loom_logits(run_dir, text_file=None, ids=None):
    out = os.path.join(work, "logits.f32")
    source = ["--text", text_file] if ids is None else ["--token-ids", ",".join(map(str, ids))]
    info = json.loads(run("logits", run_dir, *source, "--out", out))
    return info["tokens"], np.fromfile(out, dtype="<f4").reshape(info["shape"])

def compare_logits(name, ours, theirs):
    scale = float(np.abs(ours).max())
    worst = float(np.abs(ours - theirs).max())
    check(name, worst <= 1e-4 * scale, f"max |Δ| {worst:.3g}, max |logit| {scale:.3g}, relative {worst / scale:.3g}")

held = open(corpus, encoding="utf-8").read()[-2000:]
held_file = os.path.join(work, "held.txt")
open(held_file, "w", encoding="utf-8").write(held)
settings = ["--set", f"data.corpus={corpus}", "--set", f"training.steps={args.steps}", "--set", "evaluation.interval=0",
            "--set", "evaluation.batches=20", "--quiet"]

for kind in args.tokenizers.split(","):
    print(f"== {kind} tokenizer ==")
    extra = []
    if kind == "bpe":
        run("tokenizer", "train", "--vocab-size", "1024", "--special", "<|endoftext|>", "--out", "bpe.json", corpus)
        extra = ["--set", "data.tokenizer=bpe.json"]
    rundir, hfdir = f"{kind}-run", f"{kind}-hf"
    shutil.rmtree(os.path.join(work, rundir), ignore_errors=True)
    run("train", config, *settings, *extra, "--run-dir", rundir)
    print("  " + run("export", rundir, "--format", "hf", "--out", hfdir).decode().strip().replace("\n", "\n  "))
    path = os.path.join(work, hfdir)

    # 2. loading, tokenizer, logits
    model, info = AutoModelForCausalLM.from_pretrained(path, output_loading_info=True)
    model.eval()
    print(f"  loading info: {info}")
    check("no missing/unexpected/mismatched keys", not (info["missing_keys"] or info["unexpected_keys"] or info["mismatched_keys"]), str(info))
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokens, ours = loom_logits(rundir, held_file)
    ids = tokenizer(held)["input_ids"]
    check("tokenizer ids equal Loom's", ids[:len(tokens)] == tokens, f"{len(tokens)} tokens of the held-out text ({type(tokenizer).__name__})")
    check("decode(encode(text)) == text", tokenizer.decode(ids) == held, f"{len(held)} characters, {held.count(chr(10))} newlines")
    with torch.no_grad():
        theirs = model(torch.tensor([tokens])).logits[0].numpy()
    compare_logits("logits on the held-out text", ours, theirs)

    # 3. greedy generation
    prompt = "ROMEO:"
    prompt_ids = tokenizer(prompt)["input_ids"]
    count = model.config.n_positions - len(prompt_ids)
    sample = run("sample", rundir, "--prompt", prompt, "--max-tokens", str(count), "--temperature", "0")
    generation = GenerationConfig(max_new_tokens=count, do_sample=False, num_beams=1, repetition_penalty=1.0,
                                  eos_token_id=None, bos_token_id=None, pad_token_id=0)
    with torch.no_grad():
        out = model.generate(torch.tensor([prompt_ids]), attention_mask=torch.ones(1, len(prompt_ids), dtype=torch.long),
                             generation_config=generation)[0].tolist()
    new = out[len(prompt_ids):]
    if kind == "bpe":
        byte_decoder = {v: k for k, v in bytes_to_unicode().items()}
        theirs_bytes = bytes(byte_decoder[c] for t in tokenizer.convert_ids_to_tokens(new) for c in t)
    else:
        theirs_bytes = "".join(tokenizer.convert_ids_to_tokens(new)).encode()
    ours_bytes = sample[len(prompt.encode()):]
    ours_bytes = ours_bytes[:-1] if ours_bytes.endswith(b"\n") else ours_bytes   # loom sample ends with a newline
    check("greedy generate == loom sample --temperature 0 (bytes)", len(new) == count and theirs_bytes == ours_bytes,
          f"{len(new)} new tokens, {len(ours_bytes)} bytes")
    forced_tokens, forced_logits = loom_logits(rundir, ids=out)
    argmax = forced_logits.argmax(-1).tolist()
    same = forced_tokens == out and all(argmax[i - 1] == out[i] for i in range(len(prompt_ids), len(out)))
    check("greedy generate == Loom's greedy choice, token for token", same, f"{len(out) - len(prompt_ids)} positions")

    # 4. the reverse: a random GPT2LMHeadModel imported by loom train --init-from
    shape = GPT2Config(n_layer=4, n_head=4, n_embd=128, n_positions=64, vocab_size=model.config.vocab_size,
                       activation_function="gelu_new", tie_word_embeddings=True,
                       bos_token_id=model.config.bos_token_id, eos_token_id=model.config.eos_token_id)
    random_model = GPT2LMHeadModel(shape).eval()
    with torch.no_grad():
        for name, parameter in random_model.named_parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    if kind == "bpe":
        random_tokenizer = PreTrainedTokenizerFast(tokenizer_file=os.path.join(work, "bpe.json"), bos_token="<|endoftext|>",
                                                   eos_token="<|endoftext|>", unk_token="<|endoftext|>",
                                                   clean_up_tokenization_spaces=False, model_max_length=64)
    else:
        random_tokenizer = tokenizer
    for dtype in ["float32", "bfloat16"]:
        directory = os.path.join(work, f"{kind}-random-{dtype}")
        shutil.rmtree(directory, ignore_errors=True)
        random_model.to(getattr(torch, dtype)).save_pretrained(directory)
        random_tokenizer.save_pretrained(directory)
        reference = random_model.to(torch.float32)
        imported = f"{kind}-imported-{dtype}"
        shutil.rmtree(os.path.join(work, imported), ignore_errors=True)
        run("train", config, *settings, "--set", "training.steps=1", "--set", "optimizer.learning_rate=1e-30",
            "--set", "schedule.warmup_steps=0", "--set", "schedule.minimum_learning_rate=0", "--init-from", directory,
            "--run-dir", imported)
        tokens, ours = loom_logits(imported, held_file)
        check(f"imported tokenizer ({dtype} directory) ids equal transformers'", random_tokenizer(held)["input_ids"][:len(tokens)] == tokens, f"{len(tokens)} tokens")
        with torch.no_grad():
            theirs = reference(torch.tensor([tokens])).logits[0].numpy()
        compare_logits(f"random GPT2LMHeadModel ({dtype} safetensors) imported: logits", ours, theirs)
        random_model = reference

print(f"files in {work}")
if not args.work: shutil.rmtree(work)
if failures: sys.exit(f"{len(failures)} check(s) failed: {', '.join(failures)}")
print("all checks passed")
