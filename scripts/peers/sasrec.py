#!/usr/bin/python3
"""A plain PyTorch SASRec (Kang & McAuley, "Self-Attentive Sequential Recommendation", 2018),
trained and scored on an `attnrec preprocess` split, as the peer of scripts/recipe_real_data.sh.

    /usr/bin/python3 scripts/peers/sasrec.py PREPARED_DIR [--epochs 200] [--dim 50]
        [--blocks 2] [--dropout 0.2] [--max-len 50] [--lr 1e-3] [--batch 128] [--seed 42]
        [--threads 2] [--patience 5] [--json OUT.json]
        [--windows] [--negatives 1] [--item-bias] [--beta2 0.98] [--eval-every 5]
        [--loss bce|sampled_softmax|softmax] [--pool N] [--select auc|ndcg]
        [--time-budget SECONDS] [--init-std 0.02]

Two training modes:
- default (the paper's): one sequence per user per epoch, their last max-len training events,
  one negative per position, loss summed over the positive and negative and averaged over
  positions; Adam betas (0.9, 0.98), validation every 5 epochs;
- `--windows` (attnrec's maths, for a like-for-like check of configs/sasrec.json): the rows of
  attnrec's train_sequences.tsv, each window's history predicting its next events, `negatives`
  per position, BCE averaged over the positive and negatives (attnrec's `bce`), an item bias
  with `--item-bias`; pass `--dim 64 --negatives 8 --item-bias --beta2 0.999 --eval-every 1
  --patience 10` to match configs/sasrec.json.
`train_loop_seconds` and `sequences_per_second` time the training steps alone (no validation).

Losses (`--loss`, the same maths as attnrec's train.loss of the same name):
- `bce` (default): as above, `negatives` per position;
- `sampled_softmax`: with `--pool N`, one pool of N uniform negatives per batch shared by every
  position, a pool item equal to a position's positive masked out of its softmax (attnrec's
  train.negatives.shared_pool); without it, `negatives` per position;
- `softmax`: cross-entropy over every item (as RecBole's SASRec with loss_type CE).
`--select ndcg` selects the model (and early-stops) on the full-ranking NDCG@10 of the
validation positives against every item the user has not interacted with in training
(attnrec's train.early_stopping.protocol full); `--time-budget` caps the training wall time.
`curve` in the JSON: (seconds since start, validation figure) at every validation.

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


def build_model(torch, n_items, dim, blocks, dropout, max_len, item_bias=False, init_std=0.0):
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
            self.bias = nn.Embedding(n_items + 1, 1) if item_bias else None
            if self.bias is not None:
                nn.init.zeros_(self.bias.weight)
            if init_std > 0:  # attnrec's model.embedding.init_std
                for table in (self.items, self.pos):
                    nn.init.normal_(table.weight, 0.0, init_std)
                with torch.no_grad():
                    self.items.weight[0].zero_()

        def item_bias(self, items):
            if self.bias is None:
                return 0.0
            return self.bias(items).squeeze(-1)

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
            s = (h * model.items(items)).sum(-1) + model.item_bias(items)
            s = torch.where(items > 0, s, torch.full_like(s, -1e9))  # unknown items rank last
            scores += s.tolist()
            labels += [int(r[0]) for r in part]
    model.train()
    return auc(scores, labels)


def full_ranking(torch, model, rows, vocab, interacted, max_len, k=10, by_id=False):
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
            if model.bias is not None:
                scores = scores + model.bias.weight[1:].squeeze(1)
            for i, r in enumerate(part):
                n += 1
                target = vocab.get(r[2], 0)
                if target == 0:
                    continue  # outside the vocabulary: a miss
                row = scores[i].clone()
                if by_id:  # interacted: user -> item ids (the training sequence)
                    seen = [i for i in set(interacted.get(r[1], ())) if i != target]
                else:
                    seen = [vocab[t] for t in interacted.get(r[1], ())
                            if t in vocab and vocab[t] != target]
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
    ap.add_argument("--windows", action="store_true",
                    help="train on train_sequences.tsv with attnrec's loss (see above)")
    ap.add_argument("--negatives", type=int, default=1, help="negatives per position")
    ap.add_argument("--item-bias", action="store_true", help="score + a learned item bias")
    ap.add_argument("--beta2", type=float, default=0.98, help="Adam beta2")
    ap.add_argument("--eval-every", type=int, default=5, help="epochs between validations")
    ap.add_argument("--loss", choices=["bce", "sampled_softmax", "softmax"], default="bce")
    ap.add_argument("--pool", type=int, default=0, help="sampled_softmax: shared pool size")
    ap.add_argument("--select", choices=["auc", "ndcg"], default="auc",
                    help="validation metric for model selection")
    ap.add_argument("--time-budget", type=float, default=0, help="training wall-time cap (s)")
    ap.add_argument("--init-std", type=float, default=0.0,
                    help="embeddings start N(0, std^2) (0: PyTorch's N(0, 1))")
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
    if a.windows:
        # (user, inputs, next events): the history of each window predicts its next events.
        _, rows = read_tsv(os.path.join(a.prepared, "train_sequences.tsv"))
        examples = []
        for label, user, item, hist, *_ in rows:
            window = [vocab.get(t, 0) for t in history_of(hist) + [item]]
            window = [i for i in window if i > 0]
            if len(window) >= 2:
                examples.append((user, window[:-1], window[1:]))
    else:
        examples = [(u, sequences[u][:-1], sequences[u][1:]) for u in users]
    model = build_model(torch, n_items, a.dim, a.blocks, a.dropout, a.max_len, a.item_bias,
                        a.init_std)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr, betas=(0.9, a.beta2))
    seen = {u: torch.tensor(sorted(set(s))) for u, s in sequences.items()}
    bce = torch.nn.BCEWithLogitsLoss(reduction="none")
    k = a.negatives
    best, best_state, bad, started = -1.0, None, 0, time.time()
    loop_seconds, trained, positions, curve = 0.0, 0, 0, []
    for epoch in range(a.epochs):
        epoch_start = time.time()
        order = torch.randperm(len(examples), generator=gen).tolist()
        for b in range(0, len(order), a.batch):
            part = [examples[i] for i in order[b:b + a.batch]]
            inputs = left_pad(torch, [e[1] for e in part], a.max_len)
            pos = left_pad(torch, [e[2] for e in part], a.max_len)
            h = model(inputs)
            ps = (h * model.items(pos)).sum(-1) + model.item_bias(pos)  # [B, L]
            mask = (pos > 0).float()
            if a.loss == "softmax" or (a.loss == "sampled_softmax" and a.pool > 0):
                valid = pos > 0
                hv, pv = h[valid], pos[valid]  # [M, D], [M]
                if a.loss == "softmax":
                    logits = hv @ model.items.weight[1:].T  # [M, N], id i+1
                    if model.bias is not None:
                        logits = logits + model.bias.weight[1:].squeeze(1)
                    loss = torch.nn.functional.cross_entropy(logits, pv - 1)
                else:
                    pool = torch.randint(1, n_items + 1, (a.pool,), generator=gen)
                    ns = hv @ model.items(pool).T + model.item_bias(pool)  # [M, N]
                    ns = ns.masked_fill(pool.unsqueeze(0) == pv.unsqueeze(1), -float("inf"))
                    both = torch.cat([ps[valid].unsqueeze(1), ns], 1)
                    loss = (torch.logsumexp(both, 1) - both[:, 0]).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                trained += len(part)
                positions += int(mask.sum())
                continue
            neg = torch.randint(1, n_items + 1, pos.shape + (k,), generator=gen)
            for i, e in enumerate(part):  # resample negatives the user has seen
                bad_mask = torch.isin(neg[i], seen[e[0]])
                while bad_mask.any():
                    neg[i][bad_mask] = torch.randint(1, n_items + 1, (int(bad_mask.sum()),),
                                                     generator=gen)
                    bad_mask = torch.isin(neg[i], seen[e[0]])
            ns = (h.unsqueeze(2) * model.items(neg)).sum(-1) + model.item_bias(neg)  # [B, L, K]
            if a.loss == "sampled_softmax":  # K negatives of each position's own
                both = torch.cat([ps.unsqueeze(2), ns], 2)
                per = torch.logsumexp(both, 2) - ps
                loss = (per * mask).sum() / mask.sum()
            elif a.windows:  # attnrec's bce: the mean over the positive and its K negatives
                per = (bce(ps, torch.ones_like(ps)) + bce(ns, torch.zeros_like(ns)).sum(-1))
                loss = (per * mask).sum() / (mask.sum() * (k + 1))
            else:
                per = bce(ps, torch.ones_like(ps)) + bce(ns, torch.zeros_like(ns)).sum(-1)
                loss = (per * mask).sum() / mask.sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            trained += len(part)
            positions += int(mask.sum())
        loop_seconds += time.time() - epoch_start
        out_of_time = a.time_budget > 0 and time.time() - started > a.time_budget
        if (epoch + 1) % a.eval_every == 0 or epoch + 1 == a.epochs or out_of_time:
            if a.select == "ndcg":
                v = full_ranking(torch, model, splits["valid"], vocab, sequences, a.max_len,
                                 by_id=True)["ndcg@10"]
            else:
                v = score_rows(torch, model, splits["valid"], vocab, a.max_len)
            curve.append([round(time.time() - started, 1), v])
            print(f"sasrec: epoch {epoch + 1} loss {loss.item():.4f} valid {a.select} {v:.4f} "
                  f"({time.time() - started:.0f} s)", file=sys.stderr)
            if v > best:
                best, bad = v, 0
                best_state = {n: t.clone() for n, t in model.state_dict().items()}
                best_epoch = epoch + 1
            else:
                bad += 1
                if bad >= a.patience:
                    break
        if out_of_time:
            break
    model.load_state_dict(best_state)
    result = {"model": "sasrec (PyTorch peer)", "valid_" + a.select: best,
              "loss": a.loss, "pool": a.pool, "curve": curve,
              "positions_per_second": positions / max(loop_seconds, 1e-9),
              "valid_auc": score_rows(torch, model, splits["valid"], vocab, a.max_len),
              "test_auc": score_rows(torch, model, splits["test"], vocab, a.max_len),
              "epochs_run": epoch + 1, "best_epoch": best_epoch,
              "train_seconds": time.time() - started, "train_loop_seconds": loop_seconds,
              "sequences_per_second": trained / max(loop_seconds, 1e-9),
              "mode": "windows" if a.windows else "paper",
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
