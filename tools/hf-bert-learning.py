#!/usr/bin/env python3
# tools/hf-bert-learning.py: trains transformers' BertForMaskedLM in PyTorch on the recipe Loom runs
# (the tokenizer.json, corpus c.txt, context 32, 2 layers × 64, 15 % masked 80/10/10, AdamW 1e-3
# betas (0.9, 0.99), weight decay 0.1, clip 1.0, linear warmup 30 and decay over 300 steps, batch
# 32) and prints the held-out loss and masked accuracy every 100 steps, to compare with `loom train`
# on the same data (docs/benchmarks.md, "BERT"). Run it in the directory holding tok.json and c.txt.
import torch, random, math
from tokenizers import Tokenizer
from transformers import BertConfig, BertForMaskedLM
torch.manual_seed(0); random.seed(0)
tok = Tokenizer.from_file("tok.json")
ids = tok.encode(open("c.txt").read(), add_special_tokens=False).ids
V = tok.get_vocab_size(); CLS, SEP, MASK = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]"), tok.token_to_id("[MASK]")
T = 32
cfg = BertConfig(vocab_size=V, hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=256, max_position_embeddings=T, hidden_dropout_prob=0, attention_probs_dropout_prob=0)
m = BertForMaskedLM(cfg)
opt = torch.optim.AdamW(m.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1)
split = int(len(ids) * 0.9)
def batch(data, B):
    X, Y = [], []
    for _ in range(B):
        s = random.randrange(len(data) - T + 2)
        x = [CLS] + data[s:s + T - 2] + [SEP]; y = [-100] * T
        cand = list(range(1, T - 1)); random.shuffle(cand)
        for i in cand[:max(1, round(0.15 * len(cand)))]:
            y[i] = x[i]; r = random.random()
            x[i] = MASK if r < 0.8 else (random.randrange(5, V) if r < 0.9 else x[i])
        X.append(x); Y.append(y)
    return torch.tensor(X), torch.tensor(Y)
steps = 300
for step in range(1, steps + 1):
    lr = 1e-3 * min(step / 31, (steps - step + 1) / (steps - 30))
    for g in opt.param_groups: g["lr"] = lr
    x, y = batch(ids[:split], 32)
    loss = m(input_ids=x, labels=y).loss
    opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0); opt.step()
    if step % 100 == 0:
        with torch.no_grad():
            x, y = batch(ids[split:], 160); out = m(input_ids=x, labels=y)
            p = out.logits.argmax(-1); k = y != -100
            print(step, "val loss %.4f acc %.2f%%" % (out.loss.item(), 100 * (p[k] == y[k]).float().mean().item()))
