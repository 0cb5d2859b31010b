#!/usr/bin/env python3
# tools/hf-check-bert-model.py: checks Loom's BERT (Sources/Models/BERT.swift) against Hugging Face
# transformers' BertForMaskedLM numerically, outside the test suite (it needs Python with torch and
# transformers).
#
#   tools/hf-check-bert-model.py [--work DIR] [--seed N] [--no-run]
#
# 1. builds a random BertForMaskedLM (vocabulary 97, 16 positions, 2 layers, 4 heads, width 32,
#    intermediate 48, 2 segment types, hidden_act "gelu" (erf), layer_norm_eps 1e-12), perturbs
#    every parameter (so LayerNorms and biases count), and saves it with save_pretrained into
#    DIR/hf;
# 2. writes DIR/weights.bin: its tensors mapped to Loom's layout (Linear weights transposed to
#    (in, out); each layer's query/key/value fused into attention.self.qkv (C, 3C), column blocks
#    Q, K, V; the decoder tied to the word embeddings, no tensor), float32 little-endian, in layout
#    order; and DIR/inputs.json: the config, the tensors' names and shapes in that order, and a
#    batch (3 rows of lengths 16, 11 and 5 with padding, segments 0 then 1, about 30 % of the
#    valid positions predicted: targets are the token ids there, −1 elsewhere);
# 3. runs `swift test -c release --filter BERTTests/huggingFaceCheckRun` with LOOM_BERT_CHECK_DIR=DIR:
#    the test loads those files into Loom's BERT, runs forward, and writes DIR/logits.bin (float32,
#    predicted rows × vocabulary, row-major (b, t) order) and DIR/result.json (loss sum, count);
# 4. compares those logits with transformers' logits at the predicted positions (eval mode, the
#    attention mask from the lengths) and the loss with transformers' masked-LM loss.
# Exits non-zero when a check fails: logits must agree within 1e-4 relative (the largest
# difference over the largest logit magnitude), the mean loss within 1e-5 relative. Prints both.
import argparse, json, os, subprocess, sys, tempfile
import numpy as np
import torch
from transformers import BertConfig, BertForMaskedLM

here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
p = argparse.ArgumentParser()
p.add_argument("--work", default=None, help="keep the files here (default: a temporary directory)")
p.add_argument("--seed", type=int, default=0)
p.add_argument("--no-run", action="store_true", help="only write the files (run the Swift test yourself)")
args = p.parse_args()
work = args.work or tempfile.mkdtemp(prefix="loom-bert-check-")
os.makedirs(work, exist_ok=True)

torch.manual_seed(args.seed)
config = BertConfig(vocab_size=97, max_position_embeddings=16, num_hidden_layers=2, num_attention_heads=4,
                    hidden_size=32, intermediate_size=48, type_vocab_size=2, hidden_act="gelu", layer_norm_eps=1e-12,
                    hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, pad_token_id=0)
model = BertForMaskedLM(config).eval()
with torch.no_grad():
    for name, parameter in model.named_parameters():
        parameter.add_(0.1 * torch.randn_like(parameter))
head = model.cls.predictions
assert head.decoder.weight.data_ptr() == model.bert.embeddings.word_embeddings.weight.data_ptr(), "decoder not tied"
if head.decoder.bias is not None and head.decoder.bias.data_ptr() != head.bias.data_ptr():
    with torch.no_grad():
        head.decoder.bias.copy_(head.bias)
model.save_pretrained(os.path.join(work, "hf"))

# Loom's layout, in buffer order (BERTPlan.swift), each tensor as Loom stores it.
state = {k: v.detach().to(torch.float32).numpy() for k, v in model.state_dict().items()}
C, L = config.hidden_size, config.num_hidden_layers
tensors = []
def add(name, value):
    tensors.append((name, np.ascontiguousarray(value, dtype=np.float32)))
def linear(loom, hf):
    add(loom + ".weight", state[hf + ".weight"].T)
    add(loom + ".bias", state[hf + ".bias"])
def norm(name):
    add(name + ".weight", state[name + ".weight"]); add(name + ".bias", state[name + ".bias"])
e = "bert.embeddings."
for t in ["word_embeddings", "position_embeddings", "token_type_embeddings"]:
    add(e + t + ".weight", state[e + t + ".weight"])
norm(e + "LayerNorm")
for l in range(L):
    h = f"bert.encoder.layer.{l}."
    q, k, v = (h + "attention.self." + x for x in ["query", "key", "value"])
    add(h + "attention.self.qkv.weight", np.concatenate([state[x + ".weight"].T for x in (q, k, v)], axis=1))
    add(h + "attention.self.qkv.bias", np.concatenate([state[x + ".bias"] for x in (q, k, v)]))
    linear(h + "attention.output.dense", h + "attention.output.dense")
    norm(h + "attention.output.LayerNorm")
    linear(h + "intermediate.dense", h + "intermediate.dense")
    linear(h + "output.dense", h + "output.dense")
    norm(h + "output.LayerNorm")
linear("cls.predictions.transform.dense", "cls.predictions.transform.dense")
norm("cls.predictions.transform.LayerNorm")
add("cls.predictions.bias", state["cls.predictions.bias"])
with open(os.path.join(work, "weights.bin"), "wb") as f:
    for _, value in tensors:
        f.write(value.astype("<f4").tobytes())

# The batch: padded rows, two segments, ~30 % of the valid positions predicted (at least one per row).
B, T, V = 3, 16, config.vocab_size
rng = np.random.default_rng(args.seed + 1)
lengths = np.array([16, 11, 5])
tokens = rng.integers(1, V, size=(B, T))
segments = np.zeros((B, T), dtype=np.int64)
targets = np.full((B, T), -1)
for b in range(B):
    tokens[b, lengths[b]:] = 0
    segments[b, lengths[b] // 2:] = 1
    chosen = rng.random(lengths[b]) < 0.3
    chosen[rng.integers(lengths[b])] = True
    targets[b, :lengths[b]][chosen] = tokens[b, :lengths[b]][chosen]
inputs = dict(vocab_size=V, max_position_embeddings=config.max_position_embeddings, num_hidden_layers=L,
              num_attention_heads=config.num_attention_heads, hidden_size=C, intermediate_size=config.intermediate_size,
              type_vocab_size=config.type_vocab_size, layer_norm_eps=config.layer_norm_eps, norm_placement="post",
              tensors=[[name, list(value.shape)] for name, value in tensors], batch=B, time=T,
              tokens=tokens.flatten().tolist(), segments=segments.flatten().tolist(), lengths=lengths.tolist(),
              targets=targets.flatten().tolist())
with open(os.path.join(work, "inputs.json"), "w") as f:
    json.dump(inputs, f)
print(f"wrote {len(tensors)} tensors and the batch into {work}")
if args.no_run:
    sys.exit(0)

env = dict(os.environ, LOOM_BERT_CHECK_DIR=work)
run = subprocess.run(["swift", "test", "-c", "release", "--filter", "BERTTests/huggingFaceCheckRun"], cwd=here, env=env,
                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
if run.returncode != 0 or not os.path.exists(os.path.join(work, "logits.bin")):
    print(run.stdout[-4000:])
    sys.exit("the Swift test failed or wrote no logits.bin")

mask = torch.tensor(inputs["targets"]).view(B, T) >= 0
with torch.no_grad():
    attention = (torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]).long()
    labels = torch.tensor(targets).masked_fill(~mask, -100)
    out = model(input_ids=torch.tensor(tokens), token_type_ids=torch.tensor(segments), attention_mask=attention,
                labels=labels)
reference = out.logits[mask].numpy()                      # (M, V), row-major (b, t)
loom = np.fromfile(os.path.join(work, "logits.bin"), dtype="<f4")
assert loom.size == reference.size, f"Loom wrote {loom.size} logits, expected {reference.size}"
loom = loom.reshape(reference.shape)
result = json.load(open(os.path.join(work, "result.json")))
difference = np.abs(loom - reference)
worst = float(difference.max() / np.abs(reference).max())
elementwise = float((difference / np.maximum(np.abs(reference), 1e-3 * np.abs(reference).max())).max())
loss_hf, loss_loom = float(out.loss), result["sum"] / result["count"]
loss_relative = abs(loss_loom - loss_hf) / abs(loss_hf)
print(f"{reference.shape[0]} predicted rows × {V}: largest |Δlogit| {difference.max():.3e}, largest |logit| "
      f"{np.abs(reference).max():.3f}: relative {worst:.3e} (elementwise, floored at 1e-3 of the largest: {elementwise:.3e})")
print(f"masked-LM loss: transformers {loss_hf:.7f}, Loom {loss_loom:.7f} (relative {loss_relative:.2e})")
ok = worst <= 1e-4 and loss_relative <= 1e-5 and result["count"] == reference.shape[0]
print("BERT matches BertForMaskedLM" if ok else "BERT does NOT match BertForMaskedLM")
sys.exit(0 if ok else 1)
