#!/usr/bin/env python3
"""The PyTorch peer of `attnrec recommend` for a factorised model (SASRec: dot head, self query).

    recommend_topk.py EXPORT_DIR INTERACTIONS.tsv [--k 10] [--threads 2] [--block 1024]

Loads the model that `attnrec export` wrote with scripts/attnrec_reference.py, builds each
user's history as `recommend --all` does (the last max_history events of the log by time, then
line), and computes the same lists: user states in blocks, scores = states x item table + bias,
the user's seen items and the reserved ids set to -inf, torch.topk. Prints one JSON object:
users, items, seconds (scoring only, after the log is read), users/s, pairs/s and peak RSS.
"""

import argparse
import json
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from attnrec_reference import load_export  # noqa: E402


def read_log(path, items, max_history):
    """Per user (in order of first appearance): history ids (last max_history by time) and seen ids."""
    events = {}
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        timed = len(header) >= 3 and header[2] == "time"
        for line_number, line in enumerate(f):
            fields = line.rstrip("\n").split("\t")
            t = int(fields[2]) if timed else 0
            events.setdefault(fields[0], []).append((t, line_number, items.get(fields[1], 1)))
    histories, seen = [], []
    for ev in events.values():
        ev.sort(key=lambda e: (e[0], e[1]))
        histories.append([e[2] for e in ev[-max_history:]])
        seen.append(sorted({e[2] for e in ev}))
    return histories, seen


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("export")
    parser.add_argument("interactions")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--block", type=int, default=1024)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, items, _ = load_export(args.export)
    histories, seen = read_log(args.interactions, items, model.arch["max_history"])
    n = len(histories)
    started = time.perf_counter()
    with torch.inference_mode():
        table, bias = model.item_vectors()
        table_t = table.t().contiguous()
        vocab = table.size(0)
        kept = 0
        for b in range(0, n, args.block):
            rows = histories[b:b + args.block]
            t = max([len(h) for h in rows] + [1])
            history = torch.zeros(len(rows), t, dtype=torch.int64)
            for i, h in enumerate(rows):
                history[i, :len(h)] = torch.tensor(h, dtype=torch.int64)
            lengths = torch.tensor([len(h) for h in rows], dtype=torch.int64)
            scores = torch.addmm(bias.unsqueeze(0), model.user_states(history, lengths), table_t)
            scores[:, :2] = float("-inf")  # padding and unknown
            r = [i for i, s in enumerate(seen[b:b + args.block]) for _ in s]
            c = [x for s in seen[b:b + args.block] for x in s]
            scores[torch.tensor(r, dtype=torch.int64), torch.tensor(c, dtype=torch.int64)] = float("-inf")
            top = torch.topk(scores, min(args.k, vocab), dim=1)
            kept += top.indices.size(0)
    seconds = time.perf_counter() - started
    items_count = vocab - 2
    print(json.dumps({
        "users": n, "items": items_count, "k": args.k, "threads": args.threads,
        "seconds": seconds, "users_per_second": n / seconds,
        "pairs_per_second": n * items_count / seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "torch": torch.__version__}))


if __name__ == "__main__":
    main()
