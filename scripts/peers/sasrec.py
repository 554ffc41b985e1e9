#!/usr/bin/python3
"""A plain PyTorch SASRec (Kang & McAuley, "Self-Attentive Sequential Recommendation", 2018),
trained and scored on an `attnrec preprocess` split, as the peer of scripts/recipe_real_data.sh.

    /usr/bin/python3 scripts/peers/sasrec.py PREPARED_DIR [--epochs 200] [--dim 50]
        [--blocks 2] [--dropout 0.2] [--max-len 50] [--lr 1e-3] [--batch 128] [--seed 42]
        [--threads 2] [--patience 5] [--json OUT.json]

The model: item + learned positional embeddings, `blocks` causal self-attention blocks (one
head, point-wise feed-forward, layer norm and dropout, as in the paper), a shared item
embedding for the output; BCE with one negative resampled every epoch per position, never an
item of the user's training sequence.

The protocol is attnrec's own, on the same files, so the figures compare:
- training sequence of a user: their events in interactions.tsv minus the valid/test targets;
- AUC: every (label, item, history) row of test.tsv, scored from its own history (the last
  max-len items) — the same pairs attnrec and the popularity baseline score;
- full ranking: each test positive against every item of the training vocabulary (the items
  of train.tsv) the user has not interacted with (interactions.tsv), ties pessimistic
  (rank = 1 + #candidates scoring >= the positive), HR@10 and NDCG@10; a positive outside
  the vocabulary is a miss;
- model selection: validation AUC on valid.tsv, evaluated every 5 epochs, patience `patience`.
Needs Debian's python3-torch (and python3-numpy).
"""
import argparse
import json
import math
import os
import sys
import time


def read_tsv(path):
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\r\n").split("\t")
        rows = [line.rstrip("\r\n").split("\t") for line in f if line.strip()]
    return header, rows


def history_of(text):
    return [t for t in text.replace(" ", ",").split(",") if t]


def load(prepared):
    def path(name):
        return os.path.join(prepared, name)
    vocab = {}  # item token -> id (1..N); 0 is padding
    _, train = read_tsv(path("train.tsv"))
    for label, user, item, hist, *_ in train:
        for tok in history_of(hist) + [item]:
            vocab.setdefault(tok, len(vocab) + 1)
    targets = set()
    splits = {}
    for split in ("valid", "test"):
        _, rows = read_tsv(path(split + ".tsv"))
        splits[split] = rows
        for label, user, item, hist, t in rows:
            if label == "1":
                targets.add((user, item, t))
    _, log = read_tsv(path("interactions.tsv"))
    sequences, interacted = {}, {}
    for user, item, t in log:
        interacted.setdefault(user, set()).add(item)
        if (user, item, t) in targets:
            continue
        if item in vocab:
            sequences.setdefault(user, []).append(vocab[item])
    return vocab, sequences, interacted, splits


def build_model(torch, n_items, dim, blocks, dropout, max_len):
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1 = nn.LayerNorm(dim, eps=1e-8)
            self.attn = nn.MultiheadAttention(dim, 1, dropout=dropout, batch_first=True)
            self.ln2 = nn.LayerNorm(dim, eps=1e-8)
            self.ff = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Dropout(dropout),
                                    nn.Linear(dim, dim), nn.Dropout(dropout))

        def forward(self, x, causal, pad):
            q = self.ln1(x)
            a, _ = self.attn(q, x, x, attn_mask=causal, need_weights=False)
            x = q + a
            x = x + self.ff(self.ln2(x))
            return x * pad

    class SASRec(nn.Module):
        def __init__(self):
            super().__init__()
            self.items = nn.Embedding(n_items + 1, dim, padding_idx=0)
            self.pos = nn.Embedding(max_len, dim)
            self.drop = nn.Dropout(dropout)
            self.blocks = nn.ModuleList([Block() for _ in range(blocks)])
            self.ln = nn.LayerNorm(dim, eps=1e-8)

        def forward(self, seq):  # [B, L] left-padded -> [B, L, D]
            pad = (seq > 0).unsqueeze(-1).float()
            positions = torch.arange(seq.size(1)).unsqueeze(0)
            x = self.items(seq) * math.sqrt(dim) + self.pos(positions)
            x = self.drop(x) * pad
            length = seq.size(1)
            causal = torch.triu(torch.ones(length, length, dtype=torch.bool), 1)
            for b in self.blocks:
                x = b(x, causal, pad)
            return self.ln(x)

        def last(self, seq):
            return self.forward(seq)[:, -1, :]

    return SASRec()


def left_pad(torch, seqs, max_len):
    out = torch.zeros(len(seqs), max_len, dtype=torch.long)
    for i, s in enumerate(seqs):
        s = s[-max_len:]
        if s:
            out[i, max_len - len(s):] = torch.tensor(s)
    return out


def auc(scores, labels):
    """Global ROC AUC, ties count 1/2 (attnrec's definition)."""
    pairs = sorted(zip(scores, labels))
    pos = sum(labels)
    neg = len(labels) - pos
    if pos == 0 or neg == 0:
        return None
    rank_sum, i = 0.0, 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        mean_rank = (i + j + 1) / 2.0  # 1-based average rank of the tie group
        rank_sum += mean_rank * sum(l for _, l in pairs[i:j])
        i = j
    return (rank_sum - pos * (pos + 1) / 2.0) / (pos * neg)


def score_rows(torch, model, rows, vocab, max_len, batch=512):
    model.eval()
    scores, labels = [], []
    with torch.no_grad():
        for b in range(0, len(rows), batch):
            part = rows[b:b + batch]
            seqs = [[vocab.get(t, 0) for t in history_of(r[3])] for r in part]
            seqs = [[i for i in s if i > 0] for s in seqs]
            h = model.last(left_pad(torch, seqs, max_len))
            items = torch.tensor([vocab.get(r[2], 0) for r in part])
            s = (h * model.items(items)).sum(-1)
            s = torch.where(items > 0, s, torch.full_like(s, -1e9))  # unknown items rank last
            scores += s.tolist()
            labels += [int(r[0]) for r in part]
    model.train()
    return auc(scores, labels)


def full_ranking(torch, model, rows, vocab, interacted, max_len, k=10):
    model.eval()
    hits, ndcg, n = 0.0, 0.0, 0
    n_items = len(vocab)
    with torch.no_grad():
        table = model.items.weight[1:]  # [N, D], id i+1
        positives = [r for r in rows if r[0] == "1"]
        for b in range(0, len(positives), 256):
            part = positives[b:b + 256]
            seqs = [[i for i in (vocab.get(t, 0) for t in history_of(r[3])) if i > 0] for r in part]
            scores = model.last(left_pad(torch, seqs, max_len)) @ table.T  # [B, N]
            for i, r in enumerate(part):
                n += 1
                target = vocab.get(r[2], 0)
                if target == 0:
                    continue  # outside the vocabulary: a miss
                row = scores[i].clone()
                seen = [vocab[t] for t in interacted.get(r[1], ()) if t in vocab and vocab[t] != target]
                if seen:
                    row[torch.tensor(seen) - 1] = -float("inf")
                s = row[target - 1]
                rank = 1 + int((row >= s).sum().item()) - 1  # pessimistic, itself excluded
                if rank <= k:
                    hits += 1
                    ndcg += 1.0 / math.log2(rank + 1)
    model.train()
    return {"hr@%d" % k: hits / max(n, 1), "ndcg@%d" % k: ndcg / max(n, 1),
            "rows": n, "candidates": n_items}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("prepared")
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--dim", type=int, default=50)
    ap.add_argument("--blocks", type=int, default=2)
    ap.add_argument("--dropout", type=float, default=0.2)
    ap.add_argument("--max-len", type=int, default=50)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--patience", type=int, default=5, help="validations without improvement")
    ap.add_argument("--json", help="write the figures here")
    a = ap.parse_args()
    try:
        import torch
    except ImportError:
        print("sasrec.py: needs Debian's python3-torch (apt-get install python3-torch)",
              file=sys.stderr)
        return 2
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    gen = torch.Generator().manual_seed(a.seed)
    vocab, sequences, interacted, splits = load(a.prepared)
    n_items = len(vocab)
    users = sorted(u for u, s in sequences.items() if len(s) >= 2)
    model = build_model(torch, n_items, a.dim, a.blocks, a.dropout, a.max_len)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr, betas=(0.9, 0.98))
    seen = {u: torch.tensor(sorted(set(s))) for u, s in sequences.items()}
    bce = torch.nn.BCEWithLogitsLoss(reduction="none")
    best, best_state, bad, started = -1.0, None, 0, time.time()
    for epoch in range(a.epochs):
        order = torch.randperm(len(users), generator=gen).tolist()
        for b in range(0, len(order), a.batch):
            batch_users = [users[i] for i in order[b:b + a.batch]]
            inputs = left_pad(torch, [sequences[u][:-1] for u in batch_users], a.max_len)
            pos = left_pad(torch, [sequences[u][1:] for u in batch_users], a.max_len)
            neg = torch.randint(1, n_items + 1, pos.shape, generator=gen)
            for i, u in enumerate(batch_users):  # resample negatives the user has seen
                bad_mask = torch.isin(neg[i], seen[u])
                while bad_mask.any():
                    neg[i][bad_mask] = torch.randint(1, n_items + 1, (int(bad_mask.sum()),),
                                                     generator=gen)
                    bad_mask = torch.isin(neg[i], seen[u])
            h = model(inputs)
            ps = (h * model.items(pos)).sum(-1)
            ns = (h * model.items(neg)).sum(-1)
            mask = (pos > 0).float()
            loss = ((bce(ps, torch.ones_like(ps)) + bce(ns, torch.zeros_like(ns))) * mask).sum()
            loss = loss / mask.sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
        if (epoch + 1) % 5 == 0 or epoch + 1 == a.epochs:
            v = score_rows(torch, model, splits["valid"], vocab, a.max_len)
            print(f"sasrec: epoch {epoch + 1} loss {loss.item():.4f} valid AUC {v:.4f}",
                  file=sys.stderr)
            if v > best:
                best, bad = v, 0
                best_state = {k: t.clone() for k, t in model.state_dict().items()}
            else:
                bad += 1
                if bad >= a.patience:
                    break
    model.load_state_dict(best_state)
    result = {"model": "sasrec (PyTorch peer)", "valid_auc": best,
              "test_auc": score_rows(torch, model, splits["test"], vocab, a.max_len),
              "epochs_run": epoch + 1, "train_seconds": time.time() - started,
              "items": n_items, "users": len(users)}
    result.update({"full_" + k: v for k, v in
                   full_ranking(torch, model, splits["test"], vocab, interacted,
                                a.max_len).items()})
    print(json.dumps(result))
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
