#!/usr/bin/env python3
# hf-check-wordpiece: Loom's WordPiece tokenizer against Hugging Face, line by line. Trains Loom
# WordPiece vocabularies (uncased, cased, uncased with likelihood merges) on the shipped corpora (or takes --tokenizer FILE), then
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
#
# It also trains on a 60 kB sample and compares the vocabulary with a plain Python implementation of
# the training rule (every pair recounted at every merge), and reads the vocabularies back as
# transformers' BertTokenizer writes them (bert-base-uncased's tokenizer.json layout).
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


def reference_vocabulary(text, size, score="frequency"):
    """The training rule written out plainly (as the Hugging Face course describes WordPiece), every
    pair recounted at every merge: words from tokenizers' BertNormalizer and BertPreTokenizer, the
    special tokens, the characters (## forms too, except for punctuation and CJK ideographs), then
    the pair with the highest count(ab) (score "frequency", the default) or count(ab) / (count(a) count(b))
    ("likelihood"), ties to the smaller (a, b) in UTF-8 order."""
    import collections
    import unicodedata
    from tokenizers import normalizers, pre_tokenizers
    normalized = normalizers.BertNormalizer(lowercase=True).normalize_str(text)
    counts = collections.Counter(w for w, _ in pre_tokenizers.BertPreTokenizer().pre_tokenize_str(normalized))
    words = {w: c for w, c in counts.items() if len(w) <= 100}

    def isolated(ch):
        v = ord(ch)
        return (33 <= v <= 47 or 58 <= v <= 64 or 91 <= v <= 96 or 123 <= v <= 126
                or unicodedata.category(ch).startswith("P")
                or any(a <= v <= b for a, b in [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
                                                (0x2B740, 0x2B81F), (0x2B920, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)]))
    alphabet = []
    for ch in sorted(set("".join(words))):
        alphabet += [ch] if isolated(ch) else [ch, "##" + ch]
    alphabet.sort(key=lambda s: s.encode())
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + alphabet
    known = set(vocab)
    splits = {w: [w[0]] + ["##" + c for c in w[1:]] for w in words}
    while len(vocab) < size:
        token_count, pair_count = collections.Counter(), collections.Counter()
        for w, c in words.items():
            s = splits[w]
            for t in s:
                token_count[t] += c
            for a, b in zip(s, s[1:]):
                pair_count[(a, b)] += c
        if not pair_count:
            break
        def value(p):
            return pair_count[p] if score == "frequency" else pair_count[p] / (token_count[p[0]] * token_count[p[1]])
        a, b = min(pair_count, key=lambda p: (-value(p), p[0].encode(), p[1].encode()))
        new = a + b[2:]
        if new not in known:
            vocab.append(new)
            known.add(new)
        for w, s in splits.items():
            out, i = [], 0
            while i < len(s):
                if i + 1 < len(s) and s[i] == a and s[i + 1] == b:
                    out.append(new)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            splits[w] = out
    return vocab


def fast_vocab_pairs(path):
    """(token, id) of a tokenizer.json's vocabulary, in id order."""
    vocab = tokenizers.Tokenizer.from_file(path).get_vocab(with_added_tokens=True)
    return sorted(vocab.items(), key=lambda kv: kv[1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--loom", default=".build/release/loom")
    ap.add_argument("--vocab-size", type=int, default=8000)
    ap.add_argument("--tokenizer", action="append", help="a Loom WordPiece tokenizer.json (else two are trained)")
    ap.add_argument("--extra", action="append", default=[], help="another corpus to train on and compare")
    ap.add_argument("--work", default=None)
    args = ap.parse_args()

    global tokenizers
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
        for name, flags in [("uncased", []), ("cased", ["--cased"]), ("uncased-likelihood", ["--merge-score", "likelihood"])]:
            out = os.path.join(work, f"wordpiece-{name}.json")
            cmd = [args.loom, "tokenizer", "train", "--kind", "wordpiece", "--vocab-size", str(args.vocab_size),
                   "--out", out] + flags + corpora
            print(run(cmd).decode().strip())
            tokenizer_files.append(out)

    # The trainer against the plain full-recount rule, on the first 60 kB of The Time Machine.
    failures = 0
    sample = os.path.join(work, "trainer-sample.txt")
    with open(corpora[1] if len(corpora) > 1 else corpora[0], "rb") as f:
        data = f.read(60000)
    with open(sample, "wb") as f:
        f.write(data[: data.rfind(b"\n") + 1])
    for score in ["frequency", "likelihood"]:
        sample_tok = os.path.join(work, f"trainer-sample-{score}.json")
        print(run([args.loom, "tokenizer", "train", "--kind", "wordpiece", "--merge-score", score, "--vocab-size", "900",
                   "--out", sample_tok, sample]).decode().strip())
        ours = [t for t, _ in fast_vocab_pairs(sample_tok)]
        theirs = reference_vocabulary(open(sample, encoding="utf-8").read(), 900, score)
        same = sum(1 for x, y in zip(ours, theirs) if x == y) if len(ours) == len(theirs) else 0
        failures += 0 if ours == theirs else 1
        print(f"  trainer vs full-recount reference ({score} merges): {same}/{len(theirs)} tokens identical, in order")

    # The same vocabularies written by transformers' BertTokenizer (tokenizers' own tokenizer.json
    # layout, bert-base-uncased's), read back by Loom.
    for tok_path in list(tokenizer_files):
        spec = json.load(open(tok_path, encoding="utf-8"))
        normalizer = spec["normalizer"]
        vocab = dict(fast_vocab_pairs(tok_path))
        hf = transformers.BertTokenizer(vocab=vocab, do_lower_case=normalizer["lowercase"],
                                        strip_accents=None if normalizer["strip_accents"] == normalizer["lowercase"]
                                        else normalizer["strip_accents"])
        out = tok_path + ".written-by-transformers"
        hf.save_pretrained(out)
        tokenizer_files.append(os.path.join(out, "tokenizer.json"))

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
