"""value_probe.py - linear probes and head fits on value_probe.c's records.

  value_probe.py tsv RW.jsonl N OUT.tsv        distinct sentences of the first N images
  value_probe.py probe TRAIN.bin VAL.bin TRAIN.tsv RW-TRAIN VAL.tsv RW-VAL [HEAD.txt]
        within-image AUC (present-only vs absent-naming sentences, 300 held-out
        images as train value --val-world counts them) of: the reward; linear
        heads on the backbone's states fitted to the ground-truth label (raw,
        and image-centred), to the immediate reward, to the realised discounted
        return (Monte Carlo) and by LSTD(0) on the TD pairs; sibling AUC too
  value_probe.py fit TRAIN.bin TRAIN.tsv RW-TRAIN lstd|label OUT.txt
        writes the last-token head (n_embd weights, bias) for value_probe sethead
  value_probe.py steps CAPTIONS.jsonl WORLD CAND.tsv [CAND.bin]
        how often each strategy picks a hallucinating candidate in steps whose
        candidates mix clean and hallucinating sentences
"""
import json
import sys

import numpy as np

GAMMA = 0.9
LAM = 10.0  # ridge on standardised features
KEYS = ["temp_02", "temp_04", "temp_06", "temp_08", "greedy"]


def load(path):
    raw = np.fromfile(path, dtype=np.uint8)
    D = None
    for d in (64, 96, 128, 256, 512, 1024, 2048, 4096):
        if raw.size % (8 + 4 * (3 + 3 * d)) == 0 and raw.size // (8 + 4 * (3 + 3 * d)) > 0:
            D = d
            break
    rec = raw.reshape(-1, 8 + 4 * (3 + 3 * D))
    hdr = rec[:, :8].copy().view(np.int32)
    f = rec[:, 8:].copy().view(np.float32)
    return hdr[:, 0], hdr[:, 1], f, D


def wauc(img, lab, s):
    num = den = 0.0
    for i in np.unique(img):
        m = img == i
        g, b = s[m & (lab == 1)], s[m & (lab == 0)]
        if len(g) and len(b):
            d = g[:, None] - b[None, :]
            num += (d > 0).sum() + 0.5 * (d == 0).sum()
            den += d.size
    return num / den, int(den)


def tsv_index(path):
    idx = {}
    for i, line in enumerate(open(path)):
        p, s, _ = line.rstrip("\n").split("\t")
        idx[(p, s)] = i
    return idx


def chains(rw, tsv, offset):
    """TD pairs (state, next state or -1, centred reward) and mean realised return per record."""
    idx = tsv_index(tsv)
    pairs, ret = [], {}
    for line in open(rw):
        r = json.loads(line)
        for k in KEYS:
            ss = [s for s in r["rewards"][k] if s]
            if any((r["image_path"], s) not in idx for s in ss):
                continue
            rw_ = [r["rewards"][k][s] - offset for s in ss]
            g, gs = 0.0, []
            for x in reversed(rw_):
                g = x + GAMMA * g
                gs.append(g)
            gs = gs[::-1]
            for t, s in enumerate(ss):
                a = idx[(r["image_path"], s)]
                b = idx[(r["image_path"], ss[t + 1])] if t + 1 < len(ss) else -1
                pairs.append((a, b, rw_[t]))
                ret.setdefault(a, []).append(gs[t])
    R = np.zeros(len(idx))
    for a, v in ret.items():
        R[a] = np.mean(v)
    return np.array(pairs), R


def siblings(rw, tsv):
    """Groups of records at the same position of one image's five responses."""
    idx = tsv_index(tsv)
    groups = []
    for line in open(rw):
        r = json.loads(line)
        pos = {}
        for k in KEYS:
            for t, s in enumerate(s for s in r["rewards"][k] if s):
                if (r["image_path"], s) in idx:
                    pos.setdefault(t, set()).add(idx[(r["image_path"], s)])
        groups += [sorted(g) for g in pos.values()]
    return groups


def sauc(groups, lab, score):
    num = den = 0.0
    for g in groups:
        g = np.array(g)
        a, b = score[g][lab[g] == 1], score[g][lab[g] == 0]
        if len(a) and len(b):
            d = a[:, None] - b[None, :]
            num += (d > 0).sum() + 0.5 * (d == 0).sum()
            den += d.size
    return num / den, int(den)


def centre(img, X):
    Y = X.astype(np.float64).copy()
    for i in np.unique(img):
        m = img == i
        Y[m] -= Y[m].mean(0)
    return Y


class Std:
    def __init__(self, X):
        self.mu, self.sd = X.mean(0), X.std(0) + 1e-6

    def __call__(self, X):
        return np.hstack([(X - self.mu) / self.sd, np.ones((len(X), 1))])


def solve(A, b):
    return np.linalg.solve(A + LAM * np.eye(A.shape[0]), b)


def fits(img, lab, X, pairs, R):
    """Heads on standardised features: name -> weights (last entry: bias)."""
    st = Std(X)
    Xs = st(X)
    A, B, r = pairs[:, 0].astype(int), pairs[:, 1].astype(int), pairs[:, 2]
    P = Xs[A]
    Pn = np.where((B >= 0)[:, None], Xs[np.maximum(B, 0)], 0.0)
    k = lab >= 0
    out = {
        "ground-truth label": solve(Xs[k].T @ Xs[k], Xs[k].T @ (lab[k] == 1).astype(float)),
        "immediate reward": solve(P.T @ P, P.T @ r),
        "realised return (MC)": solve(Xs.T @ Xs, Xs.T @ R),
        "LSTD(0), the TD target": solve(P.T @ (P - GAMMA * Pn), P.T @ r),
    }
    # label fit on image-centred features (only within-image differences count)
    Xc = centre(img[k], Xs[k][:, :-1])
    yc = centre(img[k], (lab[k] == 1).astype(float)[:, None])[:, 0]
    wc = np.linalg.solve(Xc.T @ Xc + LAM * np.eye(Xc.shape[1]), Xc.T @ yc)
    out["ground-truth label, image-centred"] = np.append(wc, 0.0)
    return st, out


def offset_of(rw):
    v = [x for line in open(rw) for k in KEYS for s, x in json.loads(line)["rewards"][k].items() if s]
    return float(np.mean(v))


def cmd_tsv(rw, n, out):
    n = int(n)
    with open(rw) as f, open(out, "w") as o:
        for i, line in enumerate(f):
            if i >= n:
                break
            r = json.loads(line)
            seen = set()
            for k in KEYS:
                for s, x in r["rewards"][k].items():
                    if s and s not in seen and "\t" not in s and "\n" not in s:
                        seen.add(s)
                        o.write("%s\t%s\t%r\n" % (r["image_path"], s, x))


def cmd_probe(tbin, vbin, ttsv, trw, vtsv, vrw, head=None):
    ti, tl, tf, D = load(tbin)
    vi, vl, vf, _ = load(vbin)
    off = offset_of(trw)
    pairs, R = chains(trw, ttsv, off)
    groups = siblings(vrw, vtsv)
    a, n = wauc(vi, vl, vf[:, 2])
    sa, sn = sauc(groups, vl, vf[:, 2])
    print("held-out: %d records, %d within-image pairs, %d sibling pairs; train: %d records, %d TD pairs" %
          (len(vl), n, sn, len(tl), len(pairs)))
    print("| scorer | within-image AUC | sibling AUC |")
    print("|---|---|---|")
    print("| CLIP reward | %.3f | %.3f |" % (a, sa))
    if head:  # the model's own value head on its last token: V itself
        h = np.loadtxt(head)
        v = vf[:, 3:3 + D] @ h[:-1] + h[-1]
        print("| the value model's own head (V) | %.3f | %.3f |" % (wauc(vi, vl, v)[0], sauc(groups, vl, v)[0]))
    print("| log p(sentence given image) under the backbone's output layer | %.3f | %.3f |" % (wauc(vi, vl, vf[:, 0])[0], sauc(groups, vl, vf[:, 0])[0]))
    for name, sl in (("last token", slice(3, 3 + D)), ("mean of tokens", slice(3 + D, 3 + 2 * D)),
                     ("last + mean + max", slice(3, 3 + 3 * D))):
        st, W = fits(ti, tl, tf[:, sl], pairs, R)
        V = st(vf[:, sl])
        for k, w in W.items():
            s = V @ w
            print("| linear head on the %s, fitted to the %s | %.3f | %.3f |" % (name, k, wauc(vi, vl, s)[0],
                                                                               sauc(groups, vl, s)[0]))


def cmd_fit(tbin, ttsv, trw, mode, out):
    ti, tl, tf, D = load(tbin)
    pairs, R = chains(trw, ttsv, offset_of(trw))
    sl = slice(3, 3 + D)
    st, W = fits(ti, tl, tf[:, sl], pairs, R)
    w = W["LSTD(0), the TD target" if mode == "lstd" else "ground-truth label"]
    head = w[:-1] / st.sd
    bias = w[-1] - float((w[:-1] * st.mu / st.sd).sum())
    np.savetxt(out, np.concatenate([head, [bias]]))


def cmd_steps(caps, world, cand_tsv, cand_bin=None):
    caps = [json.loads(line) for line in open(caps)]
    for c in caps:  # eval --world DIR names its scenes' images by seed
        c["image_path"] = "%s/images/%d.png" % (world, c["seed"])
    if cand_bin is None:  # write the candidates to label
        seen = set()
        with open(cand_tsv, "w") as o:
            for c in caps:
                for st in c["steps"]:
                    for x in st:
                        key = (c["image_path"], x["text"])
                        if x["text"] and key not in seen and "\t" not in x["text"]:
                            seen.add(key)
                            o.write("%s\t%s\t0\n" % key)
        return
    _, lab, _, _ = load(cand_bin)
    L = {k: lab[i] for k, i in tsv_index(cand_tsv).items()}
    print("| strategy | steps | mixed steps | picks naming an absent object there | a random pick's rate there |")
    print("|---|---|---|---|---|")
    for strat in dict.fromkeys(c["strategy"] for c in caps):
        n = mixed = bad = 0
        rand = 0.0
        for c in caps:
            if c["strategy"] != strat:
                continue
            for st in c["steps"]:
                ls = [L.get((c["image_path"], x["text"]), -9) for x in st if x["text"]]
                ch = [L.get((c["image_path"], x["text"]), -9) for x in st if x["text"] and x["chosen"]]
                if not ch:
                    continue
                n += 1
                if 0 in ls and 1 in ls:
                    mixed += 1
                    bad += ch[0] == 0
                    rand += ls.count(0) / len(ls)
        print("| %s | %d | %d | %.1f%% | %.1f%% |" % (strat, n, mixed, 100.0 * bad / max(mixed, 1),
                                                      100.0 * rand / max(mixed, 1)))


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    a = sys.argv[2:]
    if cmd == "tsv" and len(a) == 3:
        cmd_tsv(*a)
    elif cmd == "probe" and len(a) in (6, 7):
        cmd_probe(*a)
    elif cmd == "fit" and len(a) == 5:
        cmd_fit(*a)
    elif cmd == "steps" and len(a) in (3, 4):
        cmd_steps(*a)
    else:
        sys.exit(__doc__)
