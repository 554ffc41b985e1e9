#!/usr/bin/python3
"""attnrec vs a plain PyTorch loop on the same workload (see include/attnrec/train/bench.hpp).

Runs `attnrec bench --json` and the PyTorch peer alternately, each in its own process (so peak
RSS is per run), several times; prints the median of each figure and the ratio
attnrec / PyTorch, and checks that both reach the same loss trajectory (same model maths).

    /usr/bin/python3 scripts/bench_vs_pytorch.py [--workloads W1,W2,T1] [--runs 3] [--samples N]
        [--w2-samples N]

Needs Debian's python3-torch and python3-numpy (`apt-get install python3-torch`), and a built
`build/attnrec`. The peer is what a user would write: nn.Embedding + nn.LSTM + the additive
attention + nn.Linear, torch.optim.Adam, and the best of 1 and 2 threads. For W2 it also runs
the nn.Embedding(sparse=True) + SparseAdam variant. For T1 the peer is SASRec written the same
way (make_sasrec).
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VOCAB = {"W1": 50000, "W2": 2000000, "T1": 12002}  # T1: 12,000 items + padding and OOV
BATCH = 256
# The peer's inference batch: its fastest here (measured 3,800-4,000 samples/s at 4096 vs
# 2,300-2,600 at 1024, 2 threads), at the cost of memory (peak RSS ~780 vs ~500 MB). attnrec
# infers with its own eval.batch_size default (1024), its fastest.
INFER_BATCH = int(os.environ.get("PEER_INFER_BATCH", "4096"))
TOPICS = 100


def make_data(n, vocab, seed):
    """The workload's distribution (bench.hpp), vectorised with numpy."""
    import numpy as np
    rng = np.random.default_rng(seed)
    topic = rng.integers(0, TOPICS, n)
    length = rng.integers(5, 51, n)

    def topic_items(k):
        count = (vocab - 2 - k) // TOPICS + 1
        return 1 + k + TOPICS * (rng.random(k.shape) * count).astype(np.int64)

    hist = np.zeros((n, 50), dtype=np.int64)
    pos = np.arange(50)[None, :]
    valid = pos < length[:, None]
    ktile = np.broadcast_to(topic[:, None], (n, 50))
    on = rng.random((n, 50)) < 0.8
    hist = np.where(on, topic_items(ktile), rng.integers(1, vocab, (n, 50)))
    hist = np.where(valid, hist, 0)
    on_topic = rng.random(n) < 0.5
    cand = np.where(on_topic, topic_items(topic), rng.integers(1, vocab, n))
    label = (rng.random(n) < np.where(on_topic, 0.9, 0.1)).astype(np.float32)
    return hist, length, cand, label


def make_lstm(vocab, sparse):
    """W1 and W2: embedding 64 shared by history and candidate -> LSTM 64 -> additive target
    attention (hidden 64) -> Linear over [context, candidate]."""
    import torch
    from torch import nn

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(vocab, 64, padding_idx=0, sparse=sparse)
            self.lstm = nn.LSTM(64, 64, batch_first=True)
            self.query_proj = nn.Linear(64, 64)
            self.w_key = nn.Linear(64, 64, bias=False)
            self.w_query = nn.Linear(64, 64)
            self.v = nn.Linear(64, 1, bias=False)
            self.head = nn.Linear(128, 1)

        def forward(self, h, mask, c):
            keys, _ = self.lstm(self.emb(h))
            keys = keys * mask.unsqueeze(2)
            ce = self.emb(c)
            q = self.query_proj(ce)
            s = self.v(torch.tanh(self.w_key(keys) + self.w_query(q).unsqueeze(1))).squeeze(2)
            s = s.masked_fill(~mask, float("-inf"))
            w = torch.softmax(s, dim=1)
            ctx = torch.bmm(w.unsqueeze(1), keys).squeeze(1)
            return self.head(torch.cat([ctx, ce], 1)).squeeze(1)

    return Model()


def make_sasrec(vocab, d=64, layers=2, max_length=50, dropout=0.2, eps=1e-8):
    """T1, attnrec's bench_config("T1") (configs/sasrec.json's model): embedding 64 shared by
    history and candidate, scaled by sqrt(64), learned positions counted back from the newest
    event, dropout 0.2, 2 causal SASRec blocks (1 head, normalised queries, raw keys and values,
    ReLU feed-forward of width 64, dropout 0.2 on the attention weights and each residual
    branch), a final LayerNorm, the newest position's state, dot product with the candidate."""
    import math
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.query, self.key, self.value, self.out = (nn.Linear(d, d) for _ in range(4))
            self.ff_in, self.ff_out = nn.Linear(d, d), nn.Linear(d, d)
            self.norm_attention, self.norm_ff = nn.LayerNorm(d, eps=eps), nn.LayerNorm(d, eps=eps)
            self.dropout, self.attention_dropout = nn.Dropout(dropout), nn.Dropout(dropout)

        def forward(self, x, allowed):
            q = self.norm_attention(x)
            scores = self.query(q) @ self.key(x).transpose(1, 2) / math.sqrt(d)
            weights = self.attention_dropout(torch.softmax(scores.masked_fill(~allowed, -1e9), -1))
            y = q + self.dropout(self.out(weights @ self.value(x)))
            ff = self.ff_out(self.dropout(torch.relu(self.ff_in(self.norm_ff(y)))))
            return y + self.dropout(ff)

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(vocab, d, padding_idx=0)
            self.positions = nn.Embedding(max_length, d)
            self.blocks = nn.ModuleList(Block() for _ in range(layers))
            self.final_norm = nn.LayerNorm(d, eps=eps)
            self.dropout = nn.Dropout(dropout)

        def forward(self, h, mask, c):
            b, t = h.shape
            lengths = mask.sum(1)
            valid = mask.unsqueeze(2).to(self.emb.weight.dtype)
            steps = torch.arange(t, device=h.device)
            pos = (lengths.unsqueeze(1) - 1 - steps).clamp_min(0) * mask
            x = self.dropout(self.emb(h) * math.sqrt(d) + self.positions(pos)) * valid
            causal = torch.ones(t, t, dtype=torch.bool, device=h.device).tril()
            allowed = mask.unsqueeze(1) & causal
            for block in self.blocks:
                x = block(x, allowed) * valid
            x = self.final_norm(x) * valid
            last = x[torch.arange(b, device=h.device), (lengths - 1).clamp_min(0)]
            return (last * (lengths > 0).unsqueeze(1) * self.emb(c)).sum(1)

    return Model()


def peer(workload, threads, samples, sparse, device="cpu", precision="fp32", profile=None):
    import numpy as np
    import torch
    from torch import nn
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    vocab = VOCAB[workload]
    hist, length, cand, label = make_data(samples, vocab, 1)

    model = (make_sasrec(vocab) if workload == "T1" else make_lstm(vocab, sparse)).to(device)
    dev = torch.device(device)
    autocast = lambda: torch.autocast(dev.type, dtype=torch.bfloat16,
                                      enabled=precision == "bf16")
    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)
    if sparse:
        dense = [p for n, p in model.named_parameters() if not n.startswith("emb.")]
        opts = [torch.optim.SparseAdam(list(model.emb.parameters()), lr=1e-3),
                torch.optim.Adam(dense, lr=1e-3)]
    else:
        opts = [torch.optim.Adam(model.parameters(), lr=1e-3)]
    loss_fn = nn.BCEWithLogitsLoss()

    def batches():
        for b in range(0, samples, BATCH):
            e = min(samples, b + BATCH)
            t = int(length[b:e].max())
            h = torch.from_numpy(hist[b:e, :t]).to(dev, non_blocking=True)
            yield (h, h != 0, torch.from_numpy(cand[b:e]).to(dev, non_blocking=True),
                   torch.from_numpy(label[b:e]).to(dev, non_blocking=True))

    t0 = time.perf_counter()
    for _ in batches():
        pass
    data_s = time.perf_counter() - t0
    steps = (samples + BATCH - 1) // BATCH
    seg_sum, seg_n = [0.0] * 10, [0] * 10

    def train_step(h, m, c, y):
        for o in opts:
            o.zero_grad()
        with autocast():
            logits = model(h, m, c)
        loss = loss_fn(logits.float(), y)
        loss.backward()
        for o in opts:
            o.step()
        return loss

    def infer_batch(b):
        e = min(samples, b + INFER_BATCH)
        t = int(length[b:e].max())
        h = torch.from_numpy(hist[b:e, :t]).to(dev)
        with autocast():
            torch.sigmoid(model(h, h != 0, torch.from_numpy(cand[b:e]).to(dev)))

    t0 = time.perf_counter()
    for i, (h, m, c, y) in enumerate(batches()):
        loss = train_step(h, m, c, y)
        seg = min(9, i * 10 // steps)
        seg_sum[seg] += loss.item()
        seg_n[seg] += 1
    sync()
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    with torch.inference_mode():
        model.eval()
        for b in range(0, samples, INFER_BATCH):
            infer_batch(b)
        sync()
    infer_s = time.perf_counter() - t0
    traces = {}
    if profile:
        # As attnrec bench --profile: 20 training steps, then 20 inference batches (the steps
        # are marked as attnrec's are, for scripts/trace_summary.py).
        from torch.profiler import ProfilerActivity, profile as record, record_function
        os.makedirs(profile, exist_ok=True)
        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
        model.train()
        with record(activities=acts) as prof:
            for _, (h, m, c, y) in zip(range(20), batches()):
                with record_function("peer::train_step"):
                    train_step(h, m, c, y).item()
            sync()
        traces["train_trace"] = os.path.join(profile, "train.json")
        prof.export_chrome_trace(traces["train_trace"])
        model.eval()
        with torch.inference_mode(), record(activities=acts) as prof:
            for b in range(0, min(samples, 20 * INFER_BATCH), INFER_BATCH):
                with record_function("peer::score_batch"):
                    infer_batch(b)
            sync()
        traces["infer_trace"] = os.path.join(profile, "infer.json")
        prof.export_chrome_trace(traces["infer_trace"])
    return {"workload": workload, "threads": threads, "sparse": sparse, "samples": samples,
            "device": device, "precision": precision,
            "data_samples_per_s": samples / data_s, "train_samples_per_s": samples / train_s,
            "infer_samples_per_s": samples / infer_s,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
            "loss_segments": [s / max(n, 1) for s, n in zip(seg_sum, seg_n)],
            **({"profile": traces} if traces else {})}


def run_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workloads", default="W1")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--samples", type=int, default=200000)
    ap.add_argument("--w2-samples", type=int, default=5000,
                    help="samples for W2 (the peer's dense Adam runs ~90 samples/s there)")
    ap.add_argument("--peer", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--sparse", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"],
                    help=argparse.SUPPRESS)
    ap.add_argument("--profile", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.peer:
        print(json.dumps(peer(a.peer, a.threads, a.samples, a.sparse, a.device, a.precision,
                              a.profile)))
        return 0
    attnrec = os.path.join(ROOT, "build", "attnrec")
    keys = ["train_samples_per_s", "infer_samples_per_s", "data_samples_per_s", "peak_rss_mb"]
    ok = True
    lazy_train = {}  # workload -> attnrec lazy_adam training runs (for the W2 / W1 ratio)
    for w in a.workloads.split(","):
        ours, theirs, sparse_runs = [], {1: [], 2: []}, []
        n = a.w2_samples if w == "W2" else a.samples
        # W2 needs sparse rows (lazy_adam) on attnrec's side; W1 uses dense Adam like the peer.
        optimizer = "lazy_adam" if w == "W2" else "adam"
        for r in range(a.runs):
            ours.append(run_json([attnrec, "--log-level", "warn", "bench", "--workload", w,
                                  "--samples", str(n), "--set", "train.optimizer=" + optimizer, "--json"]))
            if w == "W2":
                # The same optimizer on W1 with W2's sample count: does a step cost more with a
                # 40x larger vocabulary? Steady-state steps (train_loop: after the first step,
                # which also allocates Adam's moments, 1 GiB for W2's table).
                lazy_train.setdefault("W1", []).append(run_json(
                    [attnrec, "--log-level", "warn", "bench", "--workload", "W1", "--samples",
                     str(n), "--set", "train.optimizer=lazy_adam", "--json"])["train_loop_samples_per_s"])
                lazy_train.setdefault("W2", []).append(ours[-1]["train_loop_samples_per_s"])
            for t in (1, 2):
                theirs[t].append(run_json([sys.executable, __file__, "--peer", w, "--threads",
                                           str(t), "--samples", str(n)]))
            if w == "W2":
                sparse_runs.append(run_json([sys.executable, __file__, "--peer", w, "--threads",
                                             "1", "--samples", str(n), "--sparse"]))
        med = lambda runs, k: statistics.median(x[k] for x in runs)
        best_t = max((1, 2), key=lambda t: med(theirs[t], "train_samples_per_s"))
        peer_runs = theirs[best_t]
        print(f"== {w}: {n} samples, {a.runs} alternating runs, medians "
              f"(attnrec: {optimizer}; PyTorch: Adam, best of 1/2 threads = {best_t})")
        print(f"{'figure':<24}{'attnrec':>14}{'pytorch':>14}{'ratio':>9}")
        for k in keys:
            x, y = med(ours, k), med(peer_runs, k)
            print(f"{k:<24}{x:>14.0f}{y:>14.0f}{x / y:>9.2f}")
        if sparse_runs:
            x, y = med(ours, "train_samples_per_s"), med(sparse_runs, "train_samples_per_s")
            print(f"{'train vs SparseAdam':<24}{x:>14.0f}{y:>14.0f}{x / y:>9.2f}")
        if w == "W2":
            w1, w2 = statistics.median(lazy_train["W1"]), statistics.median(lazy_train["W2"])
            print(f"attnrec lazy_adam steady-state training, W2 / W1: {w2:.0f} / {w1:.0f} = "
                  f"{w2 / w1:.2f} (target >= 0.85)")
        a_loss = [statistics.median(r["loss_segments"][i] for r in ours) for i in range(10)]
        p_loss = [statistics.median(r["loss_segments"][i] for r in peer_runs) for i in range(10)]
        print("loss by tenth of the epoch (attnrec / pytorch):")
        print("  " + "  ".join(f"{x:.3f}/{y:.3f}" for x, y in zip(a_loss, p_loss)))
        # Same maths, different initial weights and sample bits: trajectories agree within noise.
        gap = max(abs(x - y) for x, y in zip(a_loss[2:], p_loss[2:]))
        same = gap < 0.05
        ok &= same
        print(f"loss trajectories {'match' if same else 'DIFFER'} (max gap {gap:.3f} after the "
              "first fifth)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
