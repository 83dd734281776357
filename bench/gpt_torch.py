#!/usr/bin/python3
"""The PyTorch peer of 06-gpt: the same model and recipe, for bench/gpt-vs-torch.

A character-level GPT on Tiny Shakespeare, nanoGPT style: pre-LayerNorm blocks,
a GELU MLP of 4*C, biases everywhere, the lm head tied to the token embedding,
init N(0, 0.02) with residual projections N(0, 0.02/sqrt(2*n_layer)), AdamW
betas (0.9, 0.99) with weight decay 0.1 on matrices only, lr 1e-3 with 100
warmup steps then cosine decay to 1e-4 at the last step, clipping at global
norm 1.0. Same data split (first 90% train) and vocabulary (sorted characters)
as 06-gpt.

Prints the `step N: train loss X, val loss Y` lines, then one summary line:
    RESULT ms_per_step_median=... val_loss=... peak_rss_mb=... threads=...
and with --summary-json PATH writes the same figures as 06-gpt's summary
(ms_per_step_median, val_loss, peak_memory_mb, threads) as one JSON line.
Run with Debian's python (/usr/bin/python3, python3-torch); set
OPENBLAS_NUM_THREADS in the environment for the BLAS threads.
"""
import argparse
import json
import math
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
from torch.nn import functional as F


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.n_head = cfg.n_head
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.attn_dropout = nn.Dropout(cfg.dropout)
        self.resid_dropout = nn.Dropout(cfg.dropout)
        mask = torch.tril(torch.ones(cfg.block_size, cfg.block_size))
        self.register_buffer("mask", mask.view(1, 1, cfg.block_size, cfg.block_size))

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(C, dim=2)
        hs = C // self.n_head
        q = q.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, hs).transpose(1, 2)
        v = v.view(B, T, self.n_head, hs).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))
        att = att.masked_fill(self.mask[:, :, :T, :T] == 0, float("-inf"))
        att = self.attn_dropout(F.softmax(att, dim=-1))
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd)
        self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x), approximate=GELU_APPROXIMATE)))


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, eps=1e-5)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, eps=1e-5)
        self.mlp = MLP(cfg)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.drop = nn.Dropout(cfg.dropout)
        self.h = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)])
        self.ln_f = nn.LayerNorm(cfg.n_embd, eps=1e-5)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx, targets):
        B, T = idx.size()
        pos = torch.arange(T, dtype=torch.long)
        x = self.drop(self.wte(idx) + self.wpe(pos))
        for block in self.h:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


GELU_APPROXIMATE = "none"


def write_summary(path, fields):
    """One JSON line, written to PATH.tmp and renamed: as the lessons' --summary-json."""
    with open(path + ".tmp", "w") as f:
        f.write(json.dumps(fields) + "\n")
    os.replace(path + ".tmp", path)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "data"))
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--summary-json", help="write the figures here as one JSON line, as the lessons do")
    p.add_argument("--n-layer", type=int, default=4)
    p.add_argument("--n-head", type=int, default=4)
    p.add_argument("--n-embd", type=int, default=128)
    p.add_argument("--context", type=int, default=64)
    p.add_argument("--batch", type=int, default=12)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--min-lr", type=float, default=1e-4)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--eval-interval", type=int, default=250)
    p.add_argument("--eval-iters", type=int, default=200)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--seed", type=int, default=1337)
    args = p.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)

    with open(os.path.join(args.data, "tinyshakespeare.txt"), encoding="utf-8") as f:
        text = f.read()
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    data = torch.tensor([stoi[c] for c in text], dtype=torch.long)
    n = int(0.9 * len(data))
    splits = {"train": data[:n], "val": data[n:]}

    def get_batch(split):
        d = splits[split]
        ix = torch.randint(len(d) - args.context, (args.batch,))
        x = torch.stack([d[i : i + args.context] for i in ix])
        y = torch.stack([d[i + 1 : i + 1 + args.context] for i in ix])
        return x, y

    class Cfg:
        pass

    cfg = Cfg()
    cfg.vocab_size, cfg.block_size = len(chars), args.context
    cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.dropout = args.n_layer, args.n_head, args.n_embd, args.dropout
    model = GPT(cfg)

    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr, betas=(0.9, 0.99), eps=1e-8)

    def get_lr(step):  # step counts from 0; the last step (steps - 1) gets min_lr
        if step < args.warmup:
            return args.lr * (step + 1) / args.warmup
        ratio = (step - args.warmup) / max(1, args.steps - 1 - args.warmup)
        return args.min_lr + 0.5 * (1.0 + math.cos(math.pi * min(ratio, 1.0))) * (args.lr - args.min_lr)

    @torch.no_grad()
    def estimate_loss():
        model.eval()
        out = {}
        for split in ("train", "val"):
            out[split] = sum(model(*get_batch(split)).item() for _ in range(args.eval_iters)) / args.eval_iters
        model.train()
        return out

    step_ms = []
    val = float("nan")
    for step in range(args.steps + 1):
        if step % args.eval_interval == 0 or step == args.steps:
            losses = estimate_loss()
            val = losses["val"]
            print(f"step {step}: train loss {losses['train']:.4f}, val loss {val:.4f}", flush=True)
        if step == args.steps:
            break
        t0 = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = get_lr(step)
        loss = model(*get_batch("train"))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        optimizer.step()
        step_ms.append((time.perf_counter() - t0) * 1000.0)

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"RESULT ms_per_step_median={statistics.median(step_ms):.2f} val_loss={val:.4f} "
          f"peak_rss_mb={peak_mb:.1f} threads={args.threads} "
          f"openblas_threads={os.environ.get('OPENBLAS_NUM_THREADS', 'default')}", flush=True)
    if args.summary_json:
        write_summary(args.summary_json, {"ms_per_step_median": statistics.median(step_ms), "val_loss": val,
                                          "peak_memory_mb": peak_mb, "threads": args.threads})


if __name__ == "__main__":
    sys.exit(main())
