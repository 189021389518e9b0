#!/usr/bin/env python3
"""PyTorch reference of visvm's tiny VLM training step (benchmark only, not a test).

The same model as src/train/vlm_train.c (`visvm train vlm` defaults) with the same
parameter count, fed batches with the same token layout as visvm's trainer
(bench/vlm_batch_shapes.c replays the trainer's data loop), and timed as
forward + backward + grad-norm clipping + AdamW. Images and token ids are random;
only shapes matter for speed.

  ViT tower   : patch embedding (conv, no bias), class token, learned positions,
                pre-LayerNorm, pre-LN blocks (LayerNorm, fused qkv with bias, MHA,
                bidirectional, quick-GELU MLP), no post-LN; patch rows -> projector
  projector   : mm.0 (Linear+bias) -> GELU (erf) -> mm.2 (Linear+bias)
  decoder     : token embedding with the image rows replaced, Llama blocks
                (RMSNorm, fused q|k|v without bias, adjacent-pair RoPE, causal GQA,
                SwiGLU with fused gate|up), final RMSNorm, output head on the
                target rows only, mean cross-entropy
  optimizer   : grad-norm clipping at 1.0, AdamW (0.9, 0.999, 1e-8), weight decay
                0.05 on matrices (not on norms, biases, class/position/token embeddings)

tokens/s is counted as visvm's progress line counts it: target (caption + EOS)
tokens per second, i.e. the sum over the batch of len - ans0.
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def attention(q, k, v, mask):
    # q [B, H, T, hd], k/v [B, KV, T, hd]; GQA: query head h uses KV head h // (H / KV)
    H, KV = q.shape[1], k.shape[1]
    if KV != H:
        k = k.repeat_interleave(H // KV, dim=1)
        v = v.repeat_interleave(H // KV, dim=1)
    s = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(q.shape[-1]))
    if mask is not None:
        s = s + mask
    return torch.matmul(s.softmax(-1), v)


class ViTBlock(nn.Module):
    def __init__(self, d, heads, ff):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(d, eps=1e-5)
        self.qkv = nn.Linear(d, 3 * d)
        self.o = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d, eps=1e-5)
        self.fc1 = nn.Linear(d, ff)
        self.fc2 = nn.Linear(ff, d)

    def forward(self, x):
        B, T, D = x.shape
        hd = D // self.heads
        q, k, v = self.qkv(self.ln1(x)).split(D, dim=-1)
        q, k, v = (t.view(B, T, self.heads, hd).transpose(1, 2) for t in (q, k, v))
        a = attention(q, k, v, None).transpose(1, 2).reshape(B, T, D)
        x = x + self.o(a)
        h = self.fc1(self.ln2(x))
        h = h * torch.sigmoid(1.702 * h)  # quick-GELU
        return x + self.fc2(h)


class LlamaBlock(nn.Module):
    def __init__(self, d, heads, kv_heads, ff, eps=1e-5):
        super().__init__()
        self.h, self.kv, self.hd, self.ff, self.eps = heads, kv_heads, d // heads, ff, eps
        self.attn_norm = nn.Parameter(torch.ones(d))
        self.qkv = nn.Linear(d, d + 2 * kv_heads * self.hd, bias=False)
        self.o = nn.Linear(d, d, bias=False)
        self.ffn_norm = nn.Parameter(torch.ones(d))
        self.gate_up = nn.Linear(d, 2 * ff, bias=False)
        self.down = nn.Linear(ff, d, bias=False)

    @staticmethod
    def rope(x, freqs):
        # x [B, T, n, hd]; pairs (2i, 2i+1) rotated by pos * base^(-2i/hd) (GGUF/ggml NORM layout), as
        # Meta's reference llama does it: the pairs as complex numbers times e^(i angle)
        xc = torch.view_as_complex(x.reshape(*x.shape[:-1], -1, 2))
        return torch.view_as_real(xc * freqs).flatten(-2)

    def forward(self, x, freqs, mask):
        B, T, D = x.shape
        kvd = self.kv * self.hd
        q, k, v = self.qkv(rms_norm(x, self.attn_norm, self.eps)).split((D, kvd, kvd), dim=-1)
        q = self.rope(q.view(B, T, self.h, self.hd), freqs).transpose(1, 2)
        k = self.rope(k.view(B, T, self.kv, self.hd), freqs).transpose(1, 2)
        v = v.view(B, T, self.kv, self.hd).transpose(1, 2)
        a = attention(q, k, v, mask).transpose(1, 2).reshape(B, T, D)
        x = x + self.o(a)
        g, u = self.gate_up(rms_norm(x, self.ffn_norm, self.eps)).split(self.ff, dim=-1)
        return x + self.down(F.silu(g) * u)


class TinyVLM(nn.Module):
    def __init__(self, a, vocab):
        super().__init__()
        self.a = a
        G = a.view // a.patch
        self.n_img = G * G
        Dv, D = a.v_width, a.width
        self.patch = nn.Conv2d(3, Dv, a.patch, stride=a.patch, bias=False)
        self.cls = nn.Parameter(torch.randn(Dv) * 0.02)
        self.pos = nn.Parameter(torch.randn(1 + self.n_img, Dv) * 0.01)
        self.pre_ln = nn.LayerNorm(Dv, eps=1e-5)
        self.vblocks = nn.ModuleList(ViTBlock(Dv, a.v_heads, a.v_ff) for _ in range(a.v_layers))
        self.mm0 = nn.Linear(Dv, D)
        self.mm2 = nn.Linear(D, D)
        self.tok = nn.Embedding(vocab, D)
        self.blocks = nn.ModuleList(LlamaBlock(D, a.heads, a.kv_heads, a.ff) for _ in range(a.layers))
        self.onorm = nn.Parameter(torch.ones(D))
        self.out = nn.Linear(D, vocab, bias=False)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        hd = D // a.heads
        self.rope_inv = a.rope_base ** (-torch.arange(0, hd, 2, dtype=torch.float32) / hd)

    def forward(self, img, ids, img_rows, tgt_rows, tgt):
        B, L = ids.shape
        D = self.a.width
        # vision tower
        pe = self.patch(img).flatten(2).transpose(1, 2)  # [B, Ni, Dv]
        x = torch.cat((self.cls.expand(B, 1, -1), pe), dim=1) + self.pos
        x = self.pre_ln(x)
        for blk in self.vblocks:
            x = blk(x)
        p = self.mm2(F.gelu(self.mm0(x[:, 1:])))  # [B, Ni, D]
        # decoder input: token embeddings with the image rows replaced
        h = self.tok(ids).view(B * L, D).index_copy(0, img_rows, p.reshape(-1, D)).view(B, L, D)
        ang = torch.arange(L, dtype=torch.float32)[:, None] * self.rope_inv[None, :]
        freqs = torch.polar(torch.ones_like(ang), ang)[None, :, None, :]  # [1, L, 1, hd/2] complex
        mask = torch.full((L, L), float("-inf")).triu(1)
        for blk in self.blocks:
            h = blk(h, freqs, mask)
        hs = rms_norm(h, self.onorm, 1e-5).view(B * L, D).index_select(0, tgt_rows)
        return F.cross_entropy(self.out(hs), tgt)


def decay_groups(model, wd):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        # visvm: decay on weight matrices (and the patch kernel), not on norms, biases,
        # class / position / token embeddings
        (decay if p.dim() >= 2 and name not in ("pos", "tok.weight") else no_decay).append(p)
    return [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]


def make_batch(shape, a, vocab, n_img, gen):
    pre, lens, ans0 = shape["pre"], shape["len"], shape["ans0"]
    B, L = len(lens), max(lens)
    ids = torch.randint(0, vocab, (B, L), generator=gen)
    img = torch.rand(B, 3, a.view, a.view, generator=gen)
    img_rows = torch.tensor([b * L + pre[b] + i for b in range(B) for i in range(n_img)])
    tgt_rows = torch.tensor([b * L + t for b in range(B) for t in range(ans0[b] - 1, lens[b] - 1)])
    tgt = torch.randint(0, vocab, (len(tgt_rows),), generator=gen)
    return img, ids, img_rows, tgt_rows, tgt


def synthetic_shapes(a, n, n_img):
    # without a shapes file: prefix 3, prompt 12, answers so that the padded length is seq_len
    ans = a.seq_len - 3 - n_img - 12
    return [{"pre": [3] * a.batch, "len": [a.seq_len] * a.batch, "ans0": [3 + n_img + 12] * a.batch}] * n, ans


def blas_libs():
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                p = line.split()[-1]
                if "blas" in os.path.basename(p) or "lapack" in os.path.basename(p):
                    libs.add(os.path.realpath(p))
    except OSError:
        pass
    return sorted(libs)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", help="JSON from bench/vlm_batch_shapes.c (the trainer's batches)")
    ap.add_argument("--timed-from", type=int, default=0, help="index of the first timed batch in --shapes")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--expect-params", type=int, default=0, help="visvm's parameter count (asserted equal)")
    ap.add_argument("--foreach", action="store_true", help="AdamW foreach=True (multi-tensor) implementation")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=140, help="padded length without --shapes")
    ap.add_argument("--vocab", type=int, default=810, help="vocabulary without --shapes")
    ap.add_argument("--view", type=int, default=32)
    ap.add_argument("--patch", type=int, default=4)
    ap.add_argument("--v-width", type=int, default=128)
    ap.add_argument("--v-layers", type=int, default=3)
    ap.add_argument("--v-heads", type=int, default=4)
    ap.add_argument("--v-ff", type=int, default=512)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--ff", type=int, default=384)
    ap.add_argument("--rope-base", type=float, default=10000.0)
    ap.add_argument("--json", action="store_true", help="print a JSON line at the end")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    n_img = (a.view // a.patch) ** 2
    if a.shapes:
        with open(a.shapes) as f:
            sh = json.load(f)
        vocab, shapes = sh["vocab"], sh["steps"]
        if sh["n_img"] != n_img or sh["batch"] != len(shapes[0]["len"]):
            sys.exit("torch_vlm.py: shapes file does not match --view/--patch")
        a.batch = sh["batch"]
    else:
        vocab = a.vocab
        shapes, _ = synthetic_shapes(a, a.timed_from + a.steps, n_img)
    if a.timed_from + a.steps > len(shapes):
        sys.exit("torch_vlm.py: --timed-from + --steps exceeds the batches in --shapes")

    model = TinyVLM(a, vocab)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"torch {torch.__version__}: tiny VLM {n_params} parameters (visvm: {a.expect_params or 'not given'}), "
          f"vocabulary {vocab}, batch {a.batch}, {n_img} image tokens, {torch.get_num_threads()} threads")
    if a.expect_params and n_params != a.expect_params:
        sys.exit(f"torch_vlm.py: parameter count {n_params} != visvm's {a.expect_params}")
    opt = torch.optim.AdamW(decay_groups(model, 0.05), lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                            foreach=True if a.foreach else None)
    params = [p for p in model.parameters()]

    def step(batch):
        opt.zero_grad(set_to_none=True)
        loss = model(*batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return loss.item()

    # warm-up on the batches before the timed window (cycled), then the timed window:
    # the same batches visvm's timed steps saw
    for i in range(a.warmup):
        step(make_batch(shapes[i % max(a.timed_from, 1)], a, vocab, n_img, gen))
    batches = [make_batch(shapes[a.timed_from + i], a, vocab, n_img, gen) for i in range(a.steps)]
    n_tok, t_sum, loss = 0, 0.0, 0.0
    for b in batches:
        t0 = time.perf_counter()
        loss = step(b)
        t_sum += time.perf_counter() - t0
        n_tok += len(b[4])
    tok_s = n_tok / t_sum
    blas = blas_libs()
    print(f"torch: {a.steps} timed steps after {a.warmup} warm-up: {t_sum / a.steps * 1000:.1f} ms/step, "
          f"{n_tok / a.steps:.0f} target tokens/step, {tok_s:.0f} tok/s (last loss {loss:.3f})")
    print(f"torch BLAS: {', '.join(blas) or 'none mapped'}; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '')}")
    if a.json:
        print(json.dumps({"impl": "torch", "torch": torch.__version__, "threads": torch.get_num_threads(),
                          "params": n_params, "steps": a.steps, "step_ms": round(t_sum / a.steps * 1000, 3),
                          "tokens_per_step": n_tok / a.steps, "tok_s": round(tok_s, 1), "blas": blas}))


if __name__ == "__main__":
    main()
