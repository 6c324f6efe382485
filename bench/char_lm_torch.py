#!/usr/bin/env python3
"""char_lm_torch.py - examples/char_lm.lua's model and training in PyTorch, on the same text,
vocabulary and batches (the same LCG draws the window offsets), for the same steps: its
validation bits per character are what lucid's must come within 0.05 of, and its time per epoch
the comparison for the text model.

usage: /usr/bin/python3 bench/char_lm_torch.py [--model transformer|lstm] [--epochs N]
       [--steps N] [--sample-speed]
Prints "char_lm_<model>_val_bpc X bpc" and "char_lm_<model>_epoch_s X s" lines (bench/run.sh's
format); --sample-speed prints the characters per second of generating 256 characters by
re-running the model on the growing prefix and with a key/value cache of its own."""
import argparse
import math
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = "/usr/share/games/fortunes"


def corpus():
    names = sorted(n for n in os.listdir(ROOT) if "." not in n
                   and os.path.isfile(os.path.join(ROOT, n)))
    return b"".join(open(os.path.join(ROOT, n), "rb").read() for n in names)


def sinusoidal(L, d):
    pos = torch.arange(L, dtype=torch.float64)[:, None]
    w = torch.exp(torch.arange(0, d, 2, dtype=torch.float64) * (-math.log(10000.0) / d))
    pe = torch.zeros(L, d, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(pos * w)
    pe[:, 1::2] = torch.cos(pos * w)
    return pe.float()


class CharTransformer(nn.Module):
    def __init__(self, V, d, layers, heads, max_len=1024):
        super().__init__()
        self.embed = nn.Embedding(V, d)
        self.register_buffer("pe", sinusoidal(max_len, d))
        layer = nn.TransformerEncoderLayer(d, heads, 4 * d, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, V)

    def forward(self, x):
        L = x.shape[1]
        h = self.embed(x) + self.pe[:L]
        mask = torch.triu(torch.full((L, L), float("-inf")), 1)
        return self.head(self.norm(self.blocks(h, mask)))

    # One step with a key/value cache of its own (the fair "keeps its own cache" baseline):
    # each layer's self-attention over the cached keys and values, written with the layer's
    # own weights.
    def step(self, x, cache, pos):
        h = self.embed(x) + self.pe[pos:pos + x.shape[1]]
        for i, layer in enumerate(self.blocks.layers):
            a = layer.self_attn
            E, H = a.embed_dim, a.num_heads
            y = layer.norm1(h)
            q, k, v = F.linear(y, a.in_proj_weight, a.in_proj_bias).chunk(3, -1)
            B, L = q.shape[0], q.shape[1]
            sh = lambda t: t.reshape(B, L, H, E // H).transpose(1, 2)
            q, k, v = sh(q), sh(k), sh(v)
            if cache[i] is not None:
                k = torch.cat([cache[i][0], k], 2)
                v = torch.cat([cache[i][1], v], 2)
            cache[i] = (k, v)
            s = q @ k.transpose(-2, -1) / math.sqrt(E // H)
            S = k.shape[2]
            if L > 1:
                s = s + torch.triu(torch.full((L, S), float("-inf")), S - L + 1)
            o = (s.softmax(-1) @ v).transpose(1, 2).reshape(B, L, E)
            h = h + a.out_proj(o)
            h = h + layer.linear2(F.gelu(layer.linear1(layer.norm2(h))))
        return self.head(self.norm(h))[:, -1]


class CharLSTM(nn.Module):
    def __init__(self, V, d, hidden, layers):
        super().__init__()
        self.embed = nn.Embedding(V, d)
        self.rnn = nn.LSTM(d, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, V)

    def forward(self, x, hc=None):
        out, hc = self.rnn(self.embed(x), hc)
        return self.head(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="transformer")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--sample-speed", action="store_true")
    a = ap.parse_args()
    B, L, d, layers, heads, hidden, lr, seed = 32, 128, 128, 2, 4, 256, 2e-3, 1
    torch.manual_seed(seed)
    text = corpus()
    vocab = sorted(set(text))
    index = {b: i for i, b in enumerate(vocab)}
    ids = torch.tensor([index[b] for b in text], dtype=torch.int64)
    n_train = int(len(ids) * 0.9)
    train, val = ids[:n_train], ids[n_train:]
    V = len(vocab)
    model = (CharLSTM(V, d, hidden, layers) if a.model == "lstm"
             else CharTransformer(V, d, layers, heads))
    if a.sample_speed:
        return sample_speed(model, V)
    lcg = [seed]

    def offset(limit):
        lcg[0] = (1103515245 * lcg[0] + 12345) % 2147483648
        return lcg[0] % limit

    win = torch.arange(L + 1)

    def windows(src, offs):
        return src[torch.tensor(offs)[:, None] + win]

    nwin = min(64, (len(val) - 1) // L)
    vw = windows(val, [k * L for k in range(nwin)])
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=a.epochs * a.steps)
    for epoch in range(1, a.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        for _ in range(a.steps):
            w = windows(train, [offset(n_train - L - 1) for _ in range(B)])
            x, y = w[:, :L], w[:, 1:]
            loss = F.cross_entropy(model(x).reshape(-1, V), y.reshape(-1))
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
        dt = time.perf_counter() - t0
        model.eval()
        with torch.no_grad():
            nats = 0.0
            for k in range(0, nwin, B):
                w = vw[k:k + B]
                nats += F.cross_entropy(model(w[:, :L]).reshape(-1, V), w[:, 1:].reshape(-1),
                                        reduction="sum").item()
        bpc = nats / (nwin * L) / math.log(2)
        print("# epoch %d: validation %.3f bits per character, %.1f s" % (epoch, bpc, dt))
    print("char_lm_%s_val_bpc %.4f bpc" % (a.model, bpc))
    print("char_lm_%s_epoch_s %.3f s" % (a.model, dt))


def sample_speed(model, V, n=256):
    model.eval()
    x0 = torch.zeros(1, 1, dtype=torch.int64)
    with torch.no_grad():
        t0 = time.perf_counter()
        x = x0
        for _ in range(n):  # the whole prefix again at every step
            logits = model(x)[:, -1]
            x = torch.cat([x, logits.argmax(-1, keepdim=True)], 1)
        full = n / (time.perf_counter() - t0)
        if isinstance(model, CharTransformer):
            cache = [None] * len(model.blocks.layers)
            t0 = time.perf_counter()
            x = x0
            for pos in range(n):
                x = model.step(x, cache, pos).argmax(-1, keepdim=True)
            cached = n / (time.perf_counter() - t0)
        else:
            hc, t0, x = None, time.perf_counter(), x0
            for _ in range(n):
                out, hc = model.rnn(model.embed(x), hc)
                x = model.head(out)[:, -1].argmax(-1, keepdim=True)
            cached = n / (time.perf_counter() - t0)
    kind = "transformer" if isinstance(model, CharTransformer) else "lstm"
    print("char_gen_%s_prefix_cps %.1f chars/s" % (kind, full))
    print("char_gen_%s_cached_cps %.1f chars/s" % (kind, cached))


if __name__ == "__main__":
    main()
