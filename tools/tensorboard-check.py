#!/usr/bin/env python3
# tools/tensorboard-check.py RUN...: checks that a run's TensorBoard events (RUN/tensorboard/, written
# with `logging.tensorboard: true`) read back with the `tensorboard` package's EventAccumulator equal to
# its metrics.jsonl: the same steps, in order, for every tag, and every value equal to the float32
# rounding of the logged one (null = NaN). Outside the test suite: needs `pip install tensorboard`.
# Prints one line per run and tag; exits 1 on any difference.
import json, math, struct, sys
from tensorboard.backend.event_processing import event_accumulator

def f32(v):
    return float("nan") if v is None else struct.unpack("<f", struct.pack("<f", v))[0]

def expected(run):
    """(tag -> [(step, value)]) as TensorBoardEvents maps metrics.jsonl's lines."""
    tags = {}
    for line in open(run + "/metrics.jsonl"):
        if not line.strip():
            continue
        r = json.loads(line)
        if "val_loss" in r:
            pairs = [("val/loss", r["val_loss"])]
        else:
            pairs = [("train/loss" if k == "train_loss" else "train/" + k, v) for k, v in r.items() if k != "step"]
        for tag, v in pairs:
            tags.setdefault(tag, []).append((r["step"], f32(v)))
    return tags

def same(a, b):
    return (math.isnan(a) and math.isnan(b)) or a == b

failed = False
for run in sys.argv[1:]:
    acc = event_accumulator.EventAccumulator(run + "/tensorboard", size_guidance={event_accumulator.SCALARS: 0})
    acc.Reload()
    want = expected(run)
    got_tags = set(acc.Tags()["scalars"])
    if got_tags != set(want):
        print(f"{run}: tags differ: events {sorted(got_tags)}, metrics.jsonl {sorted(want)}")
        failed = True
    for tag in sorted(want):
        got = [(e.step, e.value) for e in acc.Scalars(tag)] if tag in got_tags else []
        ok = len(got) == len(want[tag]) and all(g[0] == w[0] and same(g[1], w[1]) for g, w in zip(got, want[tag]))
        failed |= not ok
        print(f"{run}: {tag}: {len(got)} events, {len(want[tag])} metrics lines: {'equal' if ok else 'DIFFERENT'}")
        if not ok:
            for g, w in zip(got, want[tag]):
                if g[0] != w[0] or not same(g[1], w[1]):
                    print(f"  first difference: events {g}, metrics.jsonl {w}")
                    break
sys.exit(1 if failed else 0)
