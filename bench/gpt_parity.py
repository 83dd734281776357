#!/usr/bin/python3
"""Loads a 06-gpt checkpoint into the PyTorch peer (bench/gpt_torch.py) and
checks that both compute the same thing, in the style of llm.c's test_gpt2.

    gpt_parity.py --checkpoint FILE --text FILE --eval-loss X --prompt TEXT --greedy FILE --grads FILE --batch B

--checkpoint  a 06-gpt .ckpt file (06-gpt/checkpoint.hpp documents the format)
--text        the text `06-gpt eval --text` read; --eval-loss, what it printed
--prompt      the prompt of `06-gpt sample --top-k 1`; --greedy, what it wrote
--grads       what `06-gpt eval --grad` wrote: the loss and every gradient on
              one batch, the first --batch windows of the text

Prints one line per check and exits 1 if any is outside its tolerance.
"""
import argparse
import os
import struct
import sys

import torch
from torch.nn import functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt_torch import GPT  # noqa: E402

# The settings of train.hpp's for_each_setting, in order, with how each is stored.
SETTINGS = [("block_size", "i"), ("n_embd", "i"), ("n_head", "i"), ("n_layer", "i"), ("dropout", "f"),
            ("residual", "B"), ("layernorm", "B"), ("projection", "B"), ("activation", "i"), ("ffwd_mult", "i"),
            ("tie", "B"), ("init", "i"), ("batch_size", "i"), ("max_iters", "i"), ("warmup_iters", "i"),
            ("eval_interval", "i"), ("eval_iters", "i"), ("learning_rate", "f"), ("min_lr", "f"),
            ("lr_schedule", "i"), ("weight_decay", "f"), ("beta1", "f"), ("beta2", "f"), ("grad_clip", "f"),
            ("seed", "Q")]


class Reader:
    """The container of common/fileio.hpp: magic, version, length, payload, CRC."""

    def __init__(self, path, magic):
        with open(path, "rb") as f:
            self.b = f.read()
        if self.b[:8] != magic.encode().ljust(8, b"\0"):
            sys.exit(f"{path}: not a {magic} file")
        (length,) = struct.unpack_from("<Q", self.b, 12)
        self.pos, self.end = 20, 20 + length

    def get(self, fmt):
        (v,) = struct.unpack_from("<" + fmt, self.b, self.pos)
        self.pos += struct.calcsize(fmt)
        return v

    def string(self):
        n = self.get("Q")
        s = self.b[self.pos:self.pos + n]
        self.pos += n
        return s

    def floats(self, rows, cols):
        n = self.get("Q")
        assert n == rows * cols
        t = torch.frombuffer(bytearray(self.b[self.pos:self.pos + 4 * n]), dtype=torch.float32).view(rows, cols)
        self.pos += 4 * n
        return t.clone()


def tensors(r):
    out = []
    for _ in range(r.get("Q")):
        rows, cols = r.get("q"), r.get("q")
        out.append(r.floats(rows, cols))
    return out


def names_in_06_order(cfg):
    """The names of GPT's parameters in the order of GPTLanguageModel::parameters()."""
    names = ["wte.weight", "wpe.weight"]
    for i in range(cfg.n_layer):
        p = f"h.{i}."
        names += [p + "attn.c_attn.weight", p + "attn.c_attn.bias", p + "attn.c_proj.weight", p + "attn.c_proj.bias",
                  p + "mlp.c_fc.weight", p + "mlp.c_fc.bias", p + "mlp.c_proj.weight", p + "mlp.c_proj.bias",
                  p + "ln_1.weight", p + "ln_1.bias", p + "ln_2.weight", p + "ln_2.bias"]
    return names + ["ln_f.weight", "ln_f.bias"]


def load(path):
    r = Reader(path, "NN2GPTCK")
    vocab_size = r.get("i")
    s = {name: r.get(fmt) for name, fmt in SETTINGS}
    if not (s["residual"] and s["layernorm"] and s["projection"] and s["activation"] == 0 and s["ffwd_mult"] == 4
            and s["tie"]):
        sys.exit("gpt_parity: the peer has the default pieces only (residual, LayerNorm, projections, GELU, "
                 "ffwd-mult 4, tied head)")
    chars = r.string().decode("utf-8")
    r.get("q"), r.get("f"), r.string(), r.string()  # step, best loss, generator states
    records = r.get("Q")
    r.pos += 20 * records  # the loss history
    params = tensors(r)

    class Cfg:
        pass

    cfg = Cfg()
    cfg.vocab_size, cfg.block_size, cfg.n_layer = vocab_size, s["block_size"], s["n_layer"]
    cfg.n_head, cfg.n_embd, cfg.dropout = s["n_head"], s["n_embd"], 0.0
    model = GPT(cfg)
    own = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in zip(names_in_06_order(cfg), params):
            own[name].copy_(value.view_as(own[name]))
    model.eval()
    return model, cfg, chars


def logits_of(model, idx):
    """GPT.forward without the loss: (1, T) -> (T, V)."""
    T = idx.size(1)
    x = model.wte(idx) + model.wpe(torch.arange(T))
    for block in model.h:
        x = block(x)
    return model.lm_head(model.ln_f(x))[0]


def windows(tokens, T):
    """06-gpt eval's windows: consecutive, of T predictions each, the last one shorter."""
    n = len(tokens) - 1
    return [(a, min(T, n - a)) for a in range(0, n, T)]


def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-30)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for flag in ("--checkpoint", "--text", "--eval-loss", "--prompt", "--greedy", "--grads", "--batch"):
        p.add_argument(flag, required=True)
    a = p.parse_args()
    ckpt, text_path, eval_loss, greedy_path, grads_path = a.checkpoint, a.text, a.eval_loss, a.greedy, a.grads
    torch.set_num_threads(1)
    model, cfg, chars = load(ckpt)
    stoi = {c: i for i, c in enumerate(chars)}
    failed = False

    # 1. The eval loss over TEXT, window by window, as `06-gpt eval` reads it.
    with open(text_path, encoding="utf-8") as f:
        tokens = torch.tensor([stoi[c] for c in f.read()], dtype=torch.long)
    total = 0.0
    with torch.no_grad():
        for at, t in windows(tokens, cfg.block_size):
            logits = logits_of(model, tokens[at:at + t].view(1, t))
            total += F.cross_entropy(logits, tokens[at + 1:at + t + 1], reduction="sum").item()
    ours = float(eval_loss)
    torch_loss = total / (len(tokens) - 1)
    ok = rel(ours, torch_loss) <= 1e-5
    failed |= not ok
    print(f"eval loss on {len(tokens)} characters: 06-gpt {ours:.6f}, PyTorch {torch_loss:.6f}, "
          f"relative difference {rel(ours, torch_loss):.1e} (tolerance 1e-5): {'ok' if ok else 'FAILED'}")

    # 2. Greedy continuation: 06-gpt's generate() window, restarted from its last
    # half when it is full, and the likeliest character each time.
    with open(greedy_path, encoding="utf-8") as f:
        theirs = f.read().rstrip("\n")
    prompt = a.prompt
    idx = [stoi[c] for c in prompt]
    start = 0
    with torch.no_grad():
        while len(idx) < len(theirs):
            if len(idx) - start > cfg.block_size:
                start = len(idx) - max(1, cfg.block_size // 2)
            window = torch.tensor(idx[start:], dtype=torch.long).view(1, -1)
            idx.append(int(torch.argmax(logits_of(model, window)[-1])))
    mine = "".join(chars[i] for i in idx)
    same = sum(1 for a, b in zip(mine, theirs) if a == b) if len(mine) == len(theirs) else -1
    ok = mine == theirs
    failed |= not ok
    print(f"greedy continuation of {len(idx) - len(prompt)} characters after {prompt!r}: "
          f"{'identical' if ok else f'DIFFERENT ({same} of {len(theirs)} characters agree)'}")

    # 3. The loss and every gradient on one batch: the first B windows of TEXT.
    r = Reader(grads_path, "NN2GPTGR")
    loss06 = r.get("d")
    grads06 = tensors(r)
    T, B = cfg.block_size, int(a.batch)
    x = torch.stack([tokens[b * T:b * T + T] for b in range(B)])
    y = torch.stack([tokens[b * T + 1:b * T + T + 1] for b in range(B)])
    model.zero_grad()
    loss = model(x, y)
    loss.backward()
    own = dict(model.named_parameters())
    worst, worst_name = 0.0, ""
    for name, g06 in zip(names_in_06_order(cfg), grads06):
        g = own[name].grad.view_as(g06)
        e = ((g - g06).norm() / max(g.norm().item(), 1e-30)).item()
        if e > worst:
            worst, worst_name = e, name
    ok_loss = rel(loss06, loss.item()) <= 1e-5
    ok = worst <= 1e-4 and ok_loss
    failed |= not ok
    print(f"one batch of {B} x {T}: loss 06-gpt {loss06:.6f}, PyTorch {loss.item():.6f}; "
          f"gradients of {len(grads06)} parameters, largest relative difference {worst:.1e} ({worst_name}) "
          f"(tolerance 1e-4): {'ok' if ok else 'FAILED'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
