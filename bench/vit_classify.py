"""PyTorch twin of bench/vit_classify.c: the same ViT (patch 8, width 128, 4 pre-LN
blocks with quick-GELU, class token, learned positions, mean pooling, LayerNorm),
the same data file, AdamW (wd 0.1), 50-step warm-up and cosine to lr/10, clip 1.0.
With STEM=3 in the environment both use the hybrid tower: three stages of 3x3 conv + ReLU +
2x2 max pool (32, 64, 128 channels) and a 1x1 patch embedding instead of 8x8 patchify.
usage: vit_classify.py FILE STEPS BATCH LR THREADS"""
import math, os, sys, time
import numpy as np
import torch
import torch.nn as nn

path, steps, B, lr, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(threads)
torch.manual_seed(1)
S, D, NC, NK = 64, 128, 28, 8
with open(path, "rb") as f:
    n, ntr = (int(v) for v in np.frombuffer(f.read(8), dtype=np.int32))
    rec = np.frombuffer(f.read(), dtype=np.float32).reshape(n, 2 + S * S * 3)
lab = torch.from_numpy(rec[:, :2].view(np.int32).astype(np.int64))
imgs = torch.from_numpy(rec[:, 2:].reshape(n, S, S, 3).copy()).permute(0, 3, 1, 2).contiguous()


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(D), nn.LayerNorm(D)
        self.att = nn.MultiheadAttention(D, 4, batch_first=True)
        self.fc1, self.fc2 = nn.Linear(D, 512), nn.Linear(512, D)

    def forward(self, x):
        h = self.ln1(x)
        x = x + self.att(h, h, h, need_weights=False)[0]
        h = self.fc1(self.ln2(x))
        return x + self.fc2(h * torch.sigmoid(1.702 * h))


BN = int(os.environ.get("BN", "0"))            # BatchNorm after each stem conv (needs STEM=3)
MAXPOOL = int(os.environ.get("MAXPOOL", "0"))  # per-feature max over the tokens instead of the mean


class ViT(nn.Module):
    def __init__(self):
        super().__init__()
        if int(os.environ.get("STEM", "0")) == 3:  # as vt_vit with stem 3 (He init, zero biases)
            layers, cin = [], 3
            for s in range(3):
                conv = nn.Conv2d(cin, 32 << s, 3, 1, 1)
                nn.init.normal_(conv.weight, std=math.sqrt(2.0 / (9 * cin)))
                nn.init.zeros_(conv.bias)
                bn = [nn.BatchNorm2d(32 << s, eps=1e-5, momentum=0.1)] if BN else []
                layers += [conv, *bn, nn.ReLU(), nn.MaxPool2d(2)]
                cin = 32 << s
            proj = nn.Conv2d(cin, D, 1, bias=False)
            nn.init.normal_(proj.weight, std=1.0 / math.sqrt(cin))
            self.pe = nn.Sequential(*layers, proj)
        else:
            self.pe = nn.Conv2d(3, D, 8, 8, bias=False)
            nn.init.normal_(self.pe.weight, std=0.02)
        self.cls = nn.Parameter(torch.randn(D) * 0.02)
        self.pos = nn.Parameter(torch.randn(1 + (S // 8) ** 2, D) * 0.01)
        self.pre, self.post = nn.LayerNorm(D), nn.LayerNorm(D)
        self.blocks = nn.ModuleList([Block() for _ in range(4)])
        self.head = nn.Linear(D, NC + NK)

    def forward(self, x):
        p = self.pe(x).flatten(2).transpose(1, 2)
        x = self.pre(torch.cat([self.cls.expand(p.shape[0], 1, D), p], 1) + self.pos)
        for b in self.blocks:
            x = b(x)
        return self.head(self.post(x.amax(1) if MAXPOOL else x.mean(1)))


m = ViT()
opt = torch.optim.AdamW(m.parameters(), lr=lr, weight_decay=0.1)


def lr_at(t):
    if t < 50:
        return lr * (t + 1) / 50
    return lr * 0.1 + 0.5 * (lr - lr * 0.1) * (1 + math.cos(math.pi * (t - 50) / (steps - 50)))


g = torch.Generator().manual_seed(1)
rl = rk = 0.0
rn = 0
t0 = time.time()
for step in range(steps + 1):
    if step % 100 == 0 or step == steps:
        with torch.no_grad():
            nv = min(n - ntr, 500)
            m.eval()  # BatchNorm from running statistics
            z, y = m(imgs[ntr:ntr + nv]), lab[ntr:ntr + nv]
            m.train()
            ac = (z[:, :NC].argmax(1) == y[:, 0]).float().mean().item() * 100
            ak = (z[:, NC:].argmax(1) == y[:, 1]).float().mean().item() * 100
        print(f"step {step} train_ce_class {rl / max(rn, 1):.3f} train_ce_colour {rk / max(rn, 1):.3f} "
              f"val_acc_class {ac:.1f} val_acc_colour {ak:.1f} sec {time.time() - t0:.0f}", flush=True)
        rl = rk = 0.0
        rn = 0
    if step == steps:
        break
    idx = torch.randint(0, ntr, (B,), generator=g)
    z, y = m(imgs[idx]), lab[idx]
    l1 = nn.functional.cross_entropy(z[:, :NC], y[:, 0])
    l2 = nn.functional.cross_entropy(z[:, NC:], y[:, 1])
    for gr in opt.param_groups:
        gr["lr"] = lr_at(step)
    opt.zero_grad()
    (l1 + l2).backward()
    torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
    opt.step()
    rl += l1.item()
    rk += l2.item()
    rn += 1
