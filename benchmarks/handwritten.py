"""The check gaverify replaces, written by hand the way a user would write it.

GPT-2 small from its config (random init, dropout off), random token sequences
of 16 to 128 tokens padded per batch, batch 8, 2 steps in lockstep: for each
step the full batch's gradient is kept, then every (N, variant) gets its own
accumulation pass from the same weights and is compared with it; the
optimizer then steps with the full batch's gradient. Variants: naive (each
micro-batch's mean loss / N) and fixed (summed loss / the batch's label-token
count, passed as num_items_in_batch). `make bench` times it next to
`gaverify run benchmarks/gpt2-small.yaml`; it imports nothing from gaverify.

    python benchmarks/handwritten.py            # the check: one JSON line of results
    python benchmarks/handwritten.py --floor    # plain training steps, the floor
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch
from transformers import GPT2Config, GPT2LMHeadModel

BATCH, STEPS, ACCUMULATION, MIN_LEN, MAX_LEN = 8, 2, (2, 4, 8), 16, 128


def make_batches(vocab: int, seed: int = 0) -> list[list[list[int]]]:
    """STEPS batches of BATCH random sequences of random length."""
    gen = torch.Generator().manual_seed(seed)
    steps = []
    for _ in range(STEPS):
        lengths = torch.randint(MIN_LEN, MAX_LEN + 1, (BATCH,), generator=gen).tolist()
        steps.append([torch.randint(0, vocab, (n,), generator=gen).tolist() for n in lengths])
    return steps


def collate(seqs: list[list[int]]) -> dict[str, torch.Tensor]:
    """Right-pad to the longest sequence; padded labels are -100."""
    width = max(len(s) for s in seqs)
    ids = torch.zeros(len(seqs), width, dtype=torch.long)
    mask = torch.zeros(len(seqs), width, dtype=torch.long)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = 1
    labels = ids.masked_fill(mask == 0, -100)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def label_tokens(batch: dict[str, torch.Tensor]) -> int:
    """Tokens the causal LM loss counts (labels shift by one)."""
    return int((batch["labels"][:, 1:] != -100).sum())


def accumulate(model, seqs, n: int, variant: str) -> float:
    """One accumulation pass over n micro-batches; returns the logged loss."""
    size = len(seqs) // n
    micro = [collate(seqs[i * size : (i + 1) * size]) for i in range(n)]
    total = sum(label_tokens(mb) for mb in micro)
    logged = 0.0
    for mb in micro:
        if variant == "naive":
            loss = model(**mb).loss / n
        else:
            loss = model(**mb, num_items_in_batch=total).loss
        loss.backward()
        logged += loss.item()
    return logged


def compare(ref: list[torch.Tensor], got: list[torch.Tensor]) -> dict[str, float]:
    """Relative L2 error and cosine of two gradients, tensor by tensor."""
    rr = gg = rg = dd = 0.0
    for r, g in zip(ref, got, strict=True):
        rr += float((r * r).sum(dtype=torch.float64))
        gg += float((g * g).sum(dtype=torch.float64))
        rg += float((r * g).sum(dtype=torch.float64))
        dd += float(((g - r) ** 2).sum(dtype=torch.float64))
    return {"grad_rel_l2": math.sqrt(dd / rr), "cosine": rg / math.sqrt(rr * gg)}


def build():
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(n_embd=768, n_layer=12, n_head=12, vocab_size=50257))
    model.eval()  # dropout off, or the passes cannot be compared
    return model, torch.optim.AdamW(model.parameters(), lr=1e-4)


def check() -> dict:
    model, optimizer = build()
    params = list(model.parameters())
    rows = []
    for step, seqs in enumerate(make_batches(model.config.vocab_size), start=1):
        optimizer.zero_grad(set_to_none=True)
        full = collate(seqs)
        ref_loss = model(**full).loss
        ref_loss.backward()
        ref = [p.grad.clone() for p in params]
        for n in ACCUMULATION:
            for variant in ("naive", "fixed"):
                optimizer.zero_grad(set_to_none=True)
                loss = accumulate(model, seqs, n, variant)
                got = compare(ref, [p.grad for p in params])
                loss_rel = abs(loss - ref_loss.item()) / ref_loss.item()
                rows.append({"step": step, "n": n, "variant": variant, "loss_rel": loss_rel, **got})
        for p, g in zip(params, ref, strict=True):
            p.grad = g
        optimizer.step()
    worst = {
        v: max(r["grad_rel_l2"] for r in rows if r["variant"] == v) for v in ("naive", "fixed")
    }
    return {"rows": rows, "worst_grad_rel_l2": worst}


def floor() -> dict:
    """Plain training steps on the full batch: what one step costs."""
    model, optimizer = build()
    times = []
    for seqs in make_batches(model.config.vocab_size):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        model(**collate(seqs)).loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return {"step_s": times}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--floor", action="store_true", help="plain training steps only")
    args = parser.parse_args()
    print(json.dumps(floor() if args.floor else check()))


if __name__ == "__main__":
    main()
