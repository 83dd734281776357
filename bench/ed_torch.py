"""07-encoder-decoder's default model in PyTorch, for bench/ed-vs-torch.

nn.Transformer with the lesson's sizes (d_model 64, 4 heads, 2 encoder and 2
decoder layers, d_ff 256, ReLU, post-norm, no dropout), source and target
embeddings scaled by sqrt(d_model), the sinusoidal table, the output layer
tied to the target embedding, cross-entropy with label smoothing 0.1 that
ignores <pad>, Adam (0.9, 0.98, 1e-9) with the paper's schedule, gradient
clipping at 1. Batches have the lesson's shapes: B = 64 pairs, sources of 3
to 5 words (vocabulary 148), targets of 4 to 10 words + <eos> (vocabulary 55),
padded with token 0 and masked like the lesson's. The tokens are random (the
time of a step depends only on the shapes).

Prints one line: median ms per training step over --steps steps (after 10
warm-up steps), and the peak resident memory.
"""
import argparse
import json
import math
import os
import resource
import statistics
import time

import torch
import torch.nn as nn


def sinusoids(max_len, d):
    pe = torch.zeros(max_len, d)
    pos = torch.arange(max_len).unsqueeze(1).float()
    div = torch.pow(10000.0, torch.arange(0, d, 2).float() / d)
    pe[:, 0::2] = torch.sin(pos / div)
    pe[:, 1::2] = torch.cos(pos / div)
    return pe


class Model(nn.Module):
    def __init__(self, vs, vt, d=64, heads=4, layers=2, d_ff=256, max_len=16):
        super().__init__()
        self.d = d
        self.src_emb = nn.Embedding(vs, d)
        self.tgt_emb = nn.Embedding(vt, d)
        nn.init.normal_(self.src_emb.weight, 0, d ** -0.5)
        nn.init.normal_(self.tgt_emb.weight, 0, d ** -0.5)
        self.register_buffer("pe", sinusoids(max_len, d))
        self.transformer = nn.Transformer(d, heads, layers, layers, d_ff, dropout=0.0, batch_first=True)

    def forward(self, src, src_pad, tgt_in):
        s = self.src_emb(src) * math.sqrt(self.d) + self.pe[: src.shape[1]]
        t = self.tgt_emb(tgt_in) * math.sqrt(self.d) + self.pe[: tgt_in.shape[1]]
        causal = self.transformer.generate_square_subsequent_mask(tgt_in.shape[1])
        y = self.transformer(s, t, tgt_mask=causal, src_key_padding_mask=src_pad,
                             memory_key_padding_mask=src_pad)
        return y @ self.tgt_emb.weight.t()


def batch(gen, B=64, vs=148, vt=55):
    ls = torch.randint(3, 6, (B,), generator=gen)
    lt = torch.randint(4, 11, (B,), generator=gen)
    Ts, Tt = int(ls.max()), int(lt.max()) + 1
    src = torch.zeros(B, Ts, dtype=torch.long)
    tgt_in = torch.zeros(B, Tt, dtype=torch.long)
    tgt_out = torch.zeros(B, Tt, dtype=torch.long)
    for b in range(B):
        src[b, : ls[b]] = torch.randint(3, vs, (int(ls[b]),), generator=gen)
        words = torch.randint(3, vt, (int(lt[b]),), generator=gen)
        tgt_in[b, 0] = 1
        tgt_in[b, 1 : lt[b] + 1] = words
        tgt_out[b, : lt[b]] = words
        tgt_out[b, lt[b]] = 2
    return src, src == 0, tgt_in, tgt_out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--summary-json", help="write ms_per_step_median, peak_memory_mb, threads here as one JSON line")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1337)
    gen = torch.Generator().manual_seed(1337)
    model = Model(148, 55)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.98), eps=1e-9)
    loss_fn = nn.CrossEntropyLoss(ignore_index=0, label_smoothing=0.1)
    times = []
    for step in range(a.steps + 10):
        src, pad, tgt_in, tgt_out = batch(gen)
        t0 = time.perf_counter()
        n = step + 1
        for g in opt.param_groups:
            g["lr"] = 64 ** -0.5 * min(n ** -0.5, n * 200 ** -1.5)
        logits = model(src, pad, tgt_in)
        loss = loss_fn(logits.reshape(-1, 55), tgt_out.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step >= 10:
            times.append((time.perf_counter() - t0) * 1e3)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"torch {torch.__version__}, {a.threads} thread(s): {statistics.median(times):.1f} ms per training step "
          f"(median of {a.steps}), last loss {loss.item():.4f}, peak memory {rss:.0f} MB")
    if a.summary_json:  # as the lessons' --summary-json: one line, written whole
        with open(a.summary_json + ".tmp", "w") as f:
            f.write(json.dumps({"ms_per_step_median": statistics.median(times), "peak_memory_mb": rss,
                                "threads": a.threads}) + "\n")
        os.replace(a.summary_json + ".tmp", a.summary_json)


if __name__ == "__main__":
    main()
