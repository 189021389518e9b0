"""Linear probe of class presence on a CLIP's image embeddings (files from
bench/clip_identity.c): logistic regression per class (Adam, 1500 full-batch
steps, features standardised on the training scenes), scored on the validation
scenes as how often a present class is ranked above an absent class of the
scene's theme (and above any absent class).
usage: clip_identity.py TRAIN.bin VAL.bin"""
import sys
import numpy as np
import torch


def load(p):
    with open(p, "rb") as f:
        E, nc = (int(v) for v in np.frombuffer(f.read(8), dtype=np.int32))
        a = np.frombuffer(f.read(), dtype=np.float32).reshape(-1, E + 2 * nc)
    return a[:, :E], a[:, E:E + nc], a[:, E + nc:] > 0


torch.manual_seed(1)
Xtr, Ytr, _ = load(sys.argv[1])
Xva, Yva, Sva = load(sys.argv[2])
mu, sd = Xtr.mean(0), Xtr.std(0) + 1e-6
X, Y = torch.tensor((Xtr - mu) / sd), torch.tensor(Ytr)
lin = torch.nn.Linear(X.shape[1], Y.shape[1])
opt = torch.optim.Adam(lin.parameters(), 1e-2, weight_decay=1e-4)
for _ in range(1500):
    opt.zero_grad()
    loss = torch.nn.functional.binary_cross_entropy_with_logits(lin(X), Y)
    loss.backward()
    opt.step()
with torch.no_grad():
    Z = lin(torch.tensor((Xva - mu) / sd)).numpy()
ws = ts = wa = ta = 0
for i in range(len(Z)):
    pres = Yva[i] > 0
    for c in np.where(pres)[0]:
        absent = ~pres
        wa += int((Z[i, c] > Z[i, absent]).sum())
        ta += int(absent.sum())
        same = absent & Sva[i]
        ws += int((Z[i, c] > Z[i, same]).sum())
        ts += int(same.sum())
print(f"probe_train_bce {loss.item():.3f} probe_same_theme {100 * ws / ts:.2f} probe_any_absent {100 * wa / ta:.2f} pairs {ts}")
