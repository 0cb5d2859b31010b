# tools/check-bleu-sacrebleu.py LOOM_BIN [REFERENCES]: `loom eval bleu` against Python sacrebleu (pip install
# sacrebleu) on noisy copies of a reference file (default: Multi30k test_2016_flickr.de) — the 1000-line
# file at three noise levels and 2-line excerpts where some n-gram order has no match — at every
# smoothing method; prints sacrebleu/loom scores at 4 decimals (and DIFF if the signature or the
# precision line differ). Outside the test suite: the suite never needs Python.
import os, random, subprocess, sys, tempfile, sacrebleu
from sacrebleu.metrics import BLEU
L = sys.argv[1]
W = tempfile.mkdtemp()
path = sys.argv[2] if len(sys.argv) > 2 else '../shared/data/multi30k/test_2016_flickr.de'
ref = open(path, encoding='utf-8').read().split('\n')
if ref[-1] == '': ref.pop()
def noisy(lines, p, seed):
    r = random.Random(seed); out = []
    for l in lines:
        w = l.split(); o = []
        for t in w:
            x = r.random()
            if x < p/3: continue
            elif x < 2*p/3: o.append(r.choice(w))
            elif x < p: o.append(t[::-1])
            else: o.append(t)
        if r.random() < p/2 and len(o) > 2: i = r.randrange(len(o)-1); o[i], o[i+1] = o[i+1], o[i]
        out.append(' '.join(o))
    return out
cases = []
for name, p in [('light', 0.1), ('medium', 0.35), ('heavy', 0.7)]:
    cases.append((f'test2016 1000 lines, {name} noise', noisy(ref, p, 1), ref))
# short corpora where some n-gram order has no match, so the smoothing decides the score
for k in range(3):
    sub = ref[10*k:10*k+2]
    cases.append((f'2 lines ({10*k}-{10*k+1}), very heavy noise', noisy(sub, 0.9, 7+k), sub))
methods = [('exp', None), ('floor', None), ('add-k', None), ('none', None), ('floor', 0.3), ('add-k', 2.0)]
worst = 0
rows = []
for name, hyp, r in cases:
    open(W + '/h', 'w', encoding='utf-8').write('\n'.join(hyp) + '\n')
    open(W + '/r', 'w', encoding='utf-8').write('\n'.join(r) + '\n')
    row = [name]
    for m, v in methods:
        b = BLEU(smooth_method=m, smooth_value=v)
        s = b.corpus_score(hyp, [r])
        args = [L, 'eval', 'bleu', '--hypotheses', W + '/h', '--references', W + '/r', '--width', '4', '--smooth', m]
        if v is not None: args += ['--smooth-value', str(v)]
        out = subprocess.run(args, capture_output=True, text=True)
        loom_score = float(out.stdout.split()[2])
        sig_loom = out.stderr.strip().split('signature: ')[-1]
        same_sig = sig_loom == str(b.get_signature())
        py = float(f'{s.score:.4f}')
        worst = max(worst, abs(py - loom_score))
        verbose_same = out.stdout.strip().split(' ', 3)[3] == s.format(width=4).split(' ', 3)[3]
        row.append(f'{py:.4f}/{loom_score:.4f}' + ('' if same_sig and verbose_same else ' (DIFF sig/verbose)'))
    rows.append(row)
print('| case | ' + ' | '.join(f'{m}' + (f'[{v}]' if v else '') for m, v in methods) + ' |')
for row in rows: print('| ' + ' | '.join(row) + ' |')
print('largest |sacrebleu - loom| at 4 decimals:', worst)
for f in ('h', 'r'): os.remove(W + '/' + f)
os.rmdir(W)
