#!/usr/bin/env python3
# hf-check-wordpiece: Loom's WordPiece tokenizer against Hugging Face, line by line. Trains Loom
# WordPiece vocabularies (uncased and cased) on the shipped corpora (or takes --tokenizer FILE), then
# compares the ids of `loom tokenizer encode --json` with
#   - tokenizers.Tokenizer.from_file(...).encode(line, add_special_tokens=False).ids,
#   - transformers.AutoTokenizer on the files `loom tokenizer export` writes (the default, and
#     use_fast=False, which transformers 5 maps to the same tokenizers backend),
#   - transformers' Python BertTokenizer (BertTokenizerLegacy in transformers 5; the "slow" one,
#     built from vocab.txt and tokenizer_config.json),
# and `loom tokenizer decode` with tokenizers' decode(ids, skip_special_tokens=False), on every
# corpus and on a hand-made nasty text. Prints the counts; exits 1 on any mismatch.
#
#   tools/hf-check-wordpiece.py [--loom .build/release/loom] [--vocab-size 8000] [--tokenizer FILE]
#                               [--extra FILE ...] [--work DIR]
import argparse
import json
import os
import subprocess
import sys
import tempfile

DATA = "/work/shared/data"
CORPORA = [
    f"{DATA}/tinyshakespeare/input.txt",
    f"{DATA}/timemachine/timemachine.txt",
    f"{DATA}/multi30k/train.en",
    f"{DATA}/multi30k/val.en",
    f"{DATA}/multi30k/test_2016_flickr.en",
]

# Accents (precomposed and combining, Å as U+00C5 and U+212B), punctuation runs, emoji (with ZWJ
# and skin tones), scripts the vocabulary never saw, CJK (with CJK punctuation), tabs, control and
# format characters, U+FFFD, special tokens inside words and in the wrong case, very long words, and
# the decoder's cleanup patterns.
NASTY = "\n".join([
    "Café naïve résumé Ångström \u212Bngström façade coöperate Zoë São Paulo Øresund Œuvre straße ĲSSELMEER",
    "e\u0301te\u0301 (combining acute) a\u0308\u0304 stacked marks, ﬁ ligature, ① circled, ½ ² ³",
    "Wait...!? What?!?! --- ‘quoted’ “double” «guillemets» ‹angles› (parens) [brackets] {braces} <angles>",
    "a.b,c;d:e!f?g 'single' \"double\" `tick` ~tilde^ caret_ under-score +plus= |pipe| \\back/slash/ @at #hash $dollar %pct &amp *",
    "emoji 😀😃🙂 👍🏽 family 👨‍👩‍👧‍👦 flags 🇺🇸🇩🇪 hearts ❤️💔 🥰 🫠 math ∑∫√∞≠≤ currency €£¥₹ ©®™",
    "Ελληνικά κείμενα ΣΊΣΥΦΟΣ, русский ТЕКСТ Ёлка, עברית, العربية, हिन्दी, ไทย, ქართული, Հայերեն, ᚠᚢᚦ runes",
    "中文测试：你好，世界！日本語のテキスト、カタカナ。한국어 텍스트 입니다. 𠀀𠀁 CJK ext B, 㐀 ext A, 豈 compat",
    "tabs\there\tand\tthere\r\ncarriage\rreturn \x0bvertical\x0cform feed \x85next-line \u2028line-sep\u2029para-sep",
    "nul\x00byte bell\x07 esc\x1b[0m del\x7f zero\u200bwidth joiner\u200dnon\u200cjoiner soft\u00adhyphen bom\ufeffmark repl\ufffdchar private\ue000use",
    "nbsp\u00a0space em\u2003space ideographic\u3000space thin\u2009space narrow\u202fnbsp ogham\u1680space",
    "The [MASK] sat on the [MASK]. [CLS] first [SEP] second [SEP] [PAD][PAD] x[MASK]y [mask] [ MASK ] [UNK] [[MASK]]",
    "pneumonoultramicroscopicsilicovolcanoconiosis antidisestablishmentarianism " + "a" * 100 + " " + "b" * 101 + " " + "ab" * 60,
    "supercalifragilisticexpialidocious" * 3 + " " + "é" * 100 + " " + "é" * 101,
    "I do not think it 's fine , isn ' t it ? You 're right ! We 've won . I 'm here . Don't won't can't",
    "İstanbul Iıİi DŽ ǅ ǆ ΐ ẞ ß ŉ ǰ  — dotted capital I and other case oddities",
    "numbers 3.14159 1,000,000 2024-12-02 10:30pm #1 50% $9.99 x² H₂O 0x1F 1e-5",
    "",
    "   leading and trailing spaces   ",
    "a",
    "...",
])


def read_lines(path):
    """The lines of a file as `loom tokenizer encode` sees them: split at "\\n", a final newline
    starts no line."""
    data = open(path, "rb").read()
    lines = data.split(b"\n")
    if data.endswith(b"\n"):
        lines.pop()
    return [line.decode("utf-8") for line in lines]


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, **kw)
    if p.returncode != 0:
        sys.exit(f"hf-check-wordpiece: {' '.join(cmd)} failed ({p.returncode}):\n{p.stderr.decode()}")
    return p.stdout


def loom_ids(loom, tokenizer, path):
    out = run([loom, "tokenizer", "encode", "--json", "--tokenizer", tokenizer, path]).decode()
    return [json.loads(line) for line in out.split("\n")[:-1]]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--loom", default=".build/release/loom")
    ap.add_argument("--vocab-size", type=int, default=8000)
    ap.add_argument("--tokenizer", action="append", help="a Loom WordPiece tokenizer.json (else two are trained)")
    ap.add_argument("--extra", action="append", default=[], help="another corpus to train on and compare")
    ap.add_argument("--work", default=None)
    args = ap.parse_args()

    import tokenizers
    import transformers
    from transformers import AutoTokenizer
    try:
        from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy as SlowBert
    except ImportError:
        from transformers import BertTokenizer as SlowBert
    print(f"tokenizers {tokenizers.__version__}, transformers {transformers.__version__}, slow class {SlowBert.__name__}")

    work = args.work or tempfile.mkdtemp(prefix="hf-check-wordpiece-")
    os.makedirs(work, exist_ok=True)
    corpora = [c for c in CORPORA if os.path.exists(c)] + args.extra
    nasty = os.path.join(work, "nasty.txt")
    with open(nasty, "w", encoding="utf-8", newline="") as f:
        f.write(NASTY + "\n")
    files = corpora + [nasty]

    tokenizer_files = args.tokenizer or []
    if not tokenizer_files:
        for cased in (False, True):
            out = os.path.join(work, "wordpiece-cased.json" if cased else "wordpiece-uncased.json")
            cmd = [args.loom, "tokenizer", "train", "--kind", "wordpiece", "--vocab-size", str(args.vocab_size),
                   "--out", out] + (["--cased"] if cased else []) + corpora
            print(run(cmd).decode().strip())
            tokenizer_files.append(out)

    failures = 0
    for tok_path in tokenizer_files:
        export = tok_path + ".hf"
        print(run([args.loom, "tokenizer", "export", "--tokenizer", tok_path, "--out", export]).decode().strip())
        fast = tokenizers.Tokenizer.from_file(tok_path)
        references = {
            "tokenizers": lambda s: fast.encode(s, add_special_tokens=False).ids,
            "AutoTokenizer": (lambda t: lambda s: t.encode(s, add_special_tokens=False))(AutoTokenizer.from_pretrained(export)),
            "AutoTokenizer(use_fast=False)": (lambda t: lambda s: t.encode(s, add_special_tokens=False))(
                AutoTokenizer.from_pretrained(export, use_fast=False)),
            "slow BertTokenizer": (lambda t: lambda s: t.encode(s, add_special_tokens=False))(SlowBert.from_pretrained(export)),
        }
        print(f"\n{tok_path}: vocabulary {fast.get_vocab_size()}")
        for path in files:
            lines = read_lines(path)
            ours = loom_ids(args.loom, tok_path, path)
            if len(ours) != len(lines):
                print(f"  {path}: loom gave {len(ours)} lines for {len(lines)}")
                failures += 1
                continue
            for name, encode in references.items():
                same, first = 0, None
                for n, (line, ids) in enumerate(zip(lines, ours)):
                    theirs = encode(line)
                    if theirs == ids:
                        same += 1
                    elif first is None:
                        first = (n + 1, line, ids, theirs)
                mismatches = len(lines) - same
                failures += mismatches
                print(f"  {os.path.basename(path):<24} {name:<30} {same}/{len(lines)} lines identical")
                if first:
                    n, line, ids, theirs = first
                    print(f"    first mismatch, line {n}: {line!r}\n      loom {ids}\n      {name} {theirs}")
                    print(f"      loom tokens {[fast.id_to_token(i) for i in ids]}\n      their tokens {[fast.id_to_token(i) for i in theirs]}")
            # Decoding the same ids.
            ids_path = os.path.join(work, "ids.jsonl")
            with open(ids_path, "w") as f:
                f.write("".join(json.dumps(ids) + "\n" for ids in ours))
            decoded = run([args.loom, "tokenizer", "decode", "--tokenizer", tok_path, ids_path]).decode("utf-8").split("\n")[:-1]
            same = sum(1 for ids, text in zip(ours, decoded) if fast.decode(ids, skip_special_tokens=False) == text)
            failures += len(ours) - same
            print(f"  {os.path.basename(path):<24} {'decode vs tokenizers':<30} {same}/{len(ours)} lines identical")

    print(f"\nhf-check-wordpiece: {'all identical' if failures == 0 else f'{failures} mismatches'}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
