#!/usr/bin/env python3
"""A plain PyTorch module for a model written by `attnrec export --format safetensors`.

The export directory holds model.safetensors (every parameter and buffer under its PyTorch
state_dict name; in its metadata the architecture this module is built from) and the
vocabularies items.vocab and users.vocab (one `token<TAB>count` line per id, 0 = padding,
1 = unknown).

As a library:

    from attnrec_reference import load_export
    model, items, users = load_export("export/")        # model in eval mode, on the CPU
    logits = model(history, lengths, item, user)          # int64 tensors, histories right-padded

A TorchScript export (`attnrec export --format torchscript`: model.pt) loads the same way
(torch.jit.load, wrapped so that it takes the same arguments).

From the command line (scores sample files as `attnrec predict` does; one or more triples):

    python3 scripts/attnrec_reference.py score EXPORT_DIR DATA.tsv OUTPUT.tsv [...]

DATA.tsv has a header naming its columns (`item`, `history`, and `user` when the model has a
user embedding; others are ignored); OUTPUT.tsv gets `logit<TAB>probability` per sample.

The file is read with the `safetensors` package when it is installed, otherwise with the
standard library (set ATTNREC_REFERENCE_STDLIB=1 to force the latter).
"""

import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F
from torch import nn

EXPORT_FORMAT_VERSION = 1

_DTYPES = {
    "F32": torch.float32, "F64": torch.float64, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U8": torch.uint8, "BOOL": torch.bool,
}


def read_safetensors(path):
    """Tensors (a dict) and metadata (a dict of strings) of a safetensors file."""
    if os.environ.get("ATTNREC_REFERENCE_STDLIB") != "1":
        try:
            from safetensors import safe_open
        except ImportError:
            safe_open = None
        if safe_open is not None:
            with safe_open(path, framework="pt") as f:
                return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
    with open(path, "rb") as f:
        data = f.read()
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + size].decode("utf-8"))
    body = data[8 + size:]
    metadata = header.pop("__metadata__", {})
    tensors = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        raw = bytearray(body[begin:end])
        dtype = _DTYPES[entry["dtype"]]
        flat = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        tensors[name] = flat.reshape(entry["shape"]).clone()
    return tensors, metadata


_ACTIVATIONS = {"relu": torch.relu, "gelu": F.gelu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}


def masked_softmax(scores, mask):
    """Softmax over the positions where mask is true; all-zero rows for rows with none."""
    any_valid = mask.any(dim=1, keepdim=True)
    masked = scores.masked_fill(~mask, float("-inf")).masked_fill(~any_valid, 0.0)
    return torch.softmax(masked, dim=-1) * mask.to(scores.dtype)


class Attention(nn.Module):
    """The attention variants of attnrec (model.attention.type)."""

    def __init__(self, a):
        super().__init__()
        self.type, dim = a["type"], a["dim"]
        self.heads, self.temperature = a["heads"], a["temperature"]
        if self.type == "additive":
            self.w_query = nn.Linear(dim, a["hidden"])
            self.w_key = nn.Linear(dim, a["hidden"], bias=False)
            self.v = nn.Linear(a["hidden"], 1, bias=False)
        elif self.type == "multi_head":
            for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
                setattr(self, name, nn.Linear(dim, dim))
        elif self.type not in ("dot", "scaled_dot", "cosine", "none", "last"):
            raise ValueError(f"attention type {self.type!r} is not known to this reference")

    def forward(self, query, keys, mask):
        """query [B, D] (unused by none and last), keys [B, T, D], mask [B, T] -> [B, D]."""
        if self.type == "last":  # the newest valid position (right padding)
            lengths = mask.sum(1)
            weights = torch.zeros(mask.shape, dtype=keys.dtype)
            weights.scatter_(1, (lengths - 1).clamp_min(0).unsqueeze(1), 1.0)
            weights = weights * (lengths > 0).unsqueeze(1).to(weights.dtype)
            return torch.bmm(weights.unsqueeze(1), keys).squeeze(1)
        if self.type == "multi_head":
            b, t, dim = keys.shape
            h = self.heads
            dh = dim // h
            q = self.q_proj(query).view(b, h, 1, dh)
            k = self.k_proj(keys).view(b, t, h, dh).transpose(1, 2)
            v = self.v_proj(keys).view(b, t, h, dh).transpose(1, 2)
            s = torch.matmul(q, k.transpose(2, 3)).squeeze(2) / math.sqrt(dh)
            w = masked_softmax(s.reshape(b * h, t),
                               mask.unsqueeze(1).expand(b, h, t).reshape(b * h, t))
            return self.o_proj(torch.matmul(w.view(b, h, 1, t), v).view(b, dim))
        if self.type == "additive":
            scores = self.v(torch.tanh(self.w_key(keys) + self.w_query(query).unsqueeze(1)))
            scores = scores.squeeze(2)
        elif self.type in ("dot", "scaled_dot"):
            scores = (keys * query.unsqueeze(1)).sum(2)
            if self.type == "scaled_dot":
                scores = scores / math.sqrt(keys.size(2))
        elif self.type == "cosine":
            qn = query / query.norm(2, -1, True).clamp_min(1e-8)
            kn = keys / keys.norm(2, -1, True).clamp_min(1e-8)
            scores = (kn * qn.unsqueeze(1)).sum(2) / self.temperature
        else:  # none: uniform over the valid positions
            scores = torch.zeros(mask.shape, dtype=keys.dtype)
        weights = masked_softmax(scores, mask)
        return (weights.unsqueeze(2) * keys).sum(1)


class TransformerBlock(nn.Module):
    def __init__(self, t):
        super().__init__()
        d = t["dim"]
        ff = t["ff_size"] if t["ff_size"] > 0 else d
        self.heads, self.norm, self.activation = t["heads"], t["norm"], _ACTIVATIONS[t["activation"]]
        self.query, self.key, self.value, self.out = (nn.Linear(d, d) for _ in range(4))
        self.ff_in, self.ff_out = nn.Linear(d, ff), nn.Linear(ff, d)
        self.norm_attention = nn.LayerNorm(d, eps=t["norm_eps"])
        self.norm_ff = nn.LayerNorm(d, eps=t["norm_eps"])

    def attend(self, query_input, key_input, allowed):
        b, t, d = query_input.shape
        h = self.heads
        dh = d // h

        def split(x):
            return x.view(b, -1, h, dh).transpose(1, 2)

        q, k, v = split(self.query(query_input)), split(self.key(key_input)), split(self.value(key_input))
        scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(dh)
        scores = scores.masked_fill(~allowed.unsqueeze(1), -1e9)
        context = torch.matmul(torch.softmax(scores, -1), v).transpose(1, 2).reshape(b, t, d)
        return self.out(context)

    def feed_forward(self, x):
        return self.ff_out(self.activation(self.ff_in(x)))

    def forward(self, x, allowed):
        if self.norm == "pre":
            n = self.norm_attention(x)
            y = x + self.attend(n, n, allowed)
            return y + self.feed_forward(self.norm_ff(y))
        if self.norm == "post":
            y = self.norm_attention(x + self.attend(x, x, allowed))
            return self.norm_ff(y + self.feed_forward(y))
        q = self.norm_attention(x)  # sasrec: normalised queries, raw keys and values
        y = q + self.attend(q, x, allowed)
        return y + self.feed_forward(self.norm_ff(y))


class TransformerEncoder(nn.Module):
    def __init__(self, t):
        super().__init__()
        self.dim, self.causal, self.scale_input = t["dim"], t["causal"], t["scale_input"]
        self.blocks = nn.ModuleList(TransformerBlock(t) for _ in range(t["layers"]))
        self.positions = None
        if t["positional"] == "learned":
            self.positions = nn.Embedding(t["max_length"], t["dim"])
        # A buffer, or None (register_buffer with None: not in the state_dict).
        self.register_buffer("sinusoid", torch.zeros(t["max_length"], t["dim"])
                             if t["positional"] == "sinusoidal" else None)
        self.final_norm = None if t["norm"] == "post" else nn.LayerNorm(t["dim"], eps=t["norm_eps"])

    def forward(self, inputs, mask, lengths):
        b, t, _ = inputs.shape
        valid = mask.unsqueeze(2).to(inputs.dtype)
        x = inputs * math.sqrt(self.dim) if self.scale_input else inputs
        if self.positions is not None or self.sinusoid is not None:
            # Positions count back from the newest event (0 = newest).
            pos = (lengths.unsqueeze(1) - 1 - torch.arange(t).unsqueeze(0)).clamp_min(0) * mask.long()
            x = x + (self.positions(pos) if self.positions is not None else self.sinusoid[pos])
        x = x * valid
        allowed = mask.unsqueeze(1).expand(b, t, t)
        if self.causal:
            allowed = allowed & torch.ones(t, t, dtype=torch.bool).tril().unsqueeze(0)
        for block in self.blocks:
            x = block(x, allowed) * valid
        if self.final_norm is not None:
            x = self.final_norm(x) * valid
        return x


class Encoder(nn.Module):
    def __init__(self, e):
        super().__init__()
        self.type, self.bidirectional = e["type"], e["bidirectional"]
        rnn_args = dict(input_size=e["input_size"], hidden_size=e["hidden_size"],
                        num_layers=e["layers"], bidirectional=e["bidirectional"], batch_first=True)
        if self.type == "lstm":
            self.lstm = nn.LSTM(**rnn_args)
        elif self.type == "gru":
            self.gru = nn.GRU(**rnn_args)
        elif self.type == "transformer":
            self.transformer = TransformerEncoder(e["transformer"])
        elif self.type != "none":
            raise ValueError(f"encoder type {self.type!r} is not known to this reference")
        if self.type == "none" or self.type == "transformer":
            self.output_size = e["input_size"]
        else:
            self.output_size = e["hidden_size"] * (2 if e["bidirectional"] else 1)

    def forward(self, inputs, mask, lengths):
        m = mask.unsqueeze(2).to(inputs.dtype)
        if self.type == "none":
            return inputs * m
        if self.type == "transformer":
            return self.transformer(inputs, mask, lengths)
        rnn = self.lstm if self.type == "lstm" else self.gru
        if self.bidirectional:  # the backward direction starts at each sequence's last item
            packed = nn.utils.rnn.pack_padded_sequence(inputs, lengths.clamp_min(1).cpu(),
                                                       batch_first=True, enforce_sorted=False)
            out, _ = nn.utils.rnn.pad_packed_sequence(rnn(packed)[0], batch_first=True,
                                                      total_length=inputs.size(1))
        else:
            out = rnn(inputs)[0]
        return out * m


class AttnrecReference(nn.Module):
    """Embedding -> encoder -> attention -> head, as attnrec's RecommenderImpl computes it."""

    def __init__(self, arch):
        super().__init__()
        self.arch = arch
        ed, vocab = arch["embedding_dim"], arch["item_vocab"]
        self.item_embedding = nn.Embedding(vocab, ed, padding_idx=0)
        self.candidate_embedding = None
        if arch["has_item"] and not arch["share_candidate"]:
            self.candidate_embedding = nn.Embedding(vocab, ed, padding_idx=0)
        self.category_embedding = None
        e = ed
        if arch["category_vocab"] > 0:
            self.category_embedding = nn.Embedding(arch["category_vocab"], arch["category_dim"],
                                                   padding_idx=0)
            self.register_buffer("item_category", torch.zeros(vocab, dtype=torch.int64))
            e += arch["category_dim"]
        self.user_embedding = None
        if arch["user_vocab"] > 0:
            self.user_embedding = nn.Embedding(arch["user_vocab"], ed, padding_idx=0)
        self.encoder = Encoder(arch["encoder"])
        d = self.encoder.output_size
        self.attention = Attention(arch["attention"])
        self.position_embedding = None
        if arch["positional"] == "learned":
            self.position_embedding = nn.Embedding(arch["max_history"], d)
        self.register_buffer("sinusoid", torch.zeros(arch["max_history"], d)
                             if arch["positional"] == "sinusoidal" else None)
        all_inputs = arch["head_inputs"] == "all"
        self.target = arch["query"] == "target"
        features = d
        if self.target:
            self.query_proj = nn.Linear(e, d)
            features += e + d if all_inputs else e
        else:
            self.self_query = nn.Parameter(torch.zeros(d))
            features += e if arch["has_item"] else 0
        if self.user_embedding is not None and all_inputs:
            features += ed
        self.head = nn.ModuleList()
        if arch["head_type"] == "mlp":
            for h in arch["head_hidden"]:
                self.head.append(nn.Linear(features, h))
                features = h
            self.head.append(nn.Linear(features, 1))
        self.item_bias = nn.Embedding(vocab, 1, padding_idx=0) if arch["item_bias"] else None
        self.activation = _ACTIVATIONS[arch["activation"]]

    def embed_items(self, ids, table):
        x = table(ids)
        if self.category_embedding is None:
            return x
        return torch.cat([x, self.category_embedding(self.item_category[ids])], dim=-1)

    def encode(self, history, lengths):
        """The candidate-independent part: encoded history [B, T, D] (positions added), mask."""
        t = history.size(1)
        mask = torch.arange(t).unsqueeze(0) < lengths.unsqueeze(1)
        keys = self.encoder(self.embed_items(history, self.item_embedding), mask, lengths)
        if self.position_embedding is not None or self.sinusoid is not None:
            table = self.position_embedding.weight if self.position_embedding is not None else self.sinusoid
            keys = keys + table[:t].unsqueeze(0) * mask.unsqueeze(2).to(keys.dtype)
        return keys, mask

    def user_states(self, history, lengths):
        """Factorised models (dot head, self query): score = state . item_vector + bias."""
        keys, mask = self.encode(history, lengths)
        return self.attention(self.self_query.unsqueeze(0).expand(history.size(0), -1), keys, mask)

    def item_vectors(self):
        """Factorised models: every item id's vector [V, D] and bias [V] (zeros without one)."""
        ids = torch.arange(self.arch["item_vocab"])
        table = self.candidate_embedding if self.candidate_embedding is not None else self.item_embedding
        bias = self.item_bias(ids).squeeze(1) if self.item_bias is not None else torch.zeros(ids.size(0))
        return self.embed_items(ids, table), bias

    def forward(self, history, lengths, item, user=None):
        """history [B, T] right-padded item ids, lengths [B], item [B], user [B] -> logits [B]."""
        keys, mask = self.encode(history, lengths)
        table = self.candidate_embedding if self.candidate_embedding is not None else self.item_embedding
        candidate = self.embed_items(item, table)
        if self.target:
            query = self.query_proj(candidate)
        else:
            query = self.self_query.unsqueeze(0).expand(history.size(0), -1)
        context = self.attention(query, keys, mask)
        if self.arch["head_type"] == "dot":
            logits = (context * candidate).sum(1)
        else:
            features = [context]
            all_inputs = self.arch["head_inputs"] == "all"
            if self.arch["has_item"]:
                features.append(candidate)
            if self.target and all_inputs:
                features.append(query * context)
            if self.user_embedding is not None and all_inputs:
                features.append(self.user_embedding(user))
            x = torch.cat(features, dim=1)
            for i, layer in enumerate(self.head):
                x = layer(x if i == 0 else self.activation(x))
            logits = x.squeeze(1)
        if self.item_bias is not None:
            logits = logits + self.item_bias(item).squeeze(1)
        return logits


def read_vocab(path):
    """token -> id (the line number) of an attnrec vocabulary file."""
    ids = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            ids.setdefault(line.rstrip("\n").split("\t")[0], len(ids))
    return ids


class ScriptedExport(nn.Module):
    """A TorchScript export (model.pt) with the architecture of its attnrec.json."""

    def __init__(self, module, arch):
        super().__init__()
        self.module, self.arch = module, arch

    def forward(self, history, lengths, item, user=None):
        return self.module(history, lengths, item, user)


def _check_format(directory, meta):
    if meta.get("format") != "attnrec-export" or int(meta.get("format_version", 0)) != EXPORT_FORMAT_VERSION:
        raise ValueError(f"{directory}: not an attnrec export of format version {EXPORT_FORMAT_VERSION}")


def load_export(directory):
    """(model in eval mode, item vocabulary, user vocabulary) of an export directory: the module
    of this file for model.safetensors, torch.jit.load for model.pt (--format torchscript)."""
    vocabs = (read_vocab(os.path.join(directory, "items.vocab")),
              read_vocab(os.path.join(directory, "users.vocab")))
    scripted = os.path.join(directory, "model.pt")
    if os.path.exists(scripted):
        extra = {"attnrec.json": ""}
        module = torch.jit.load(scripted, map_location="cpu", _extra_files=extra)
        meta = json.loads(extra["attnrec.json"])
        _check_format(directory, meta)
        return ScriptedExport(module, json.loads(meta["architecture"])).eval(), *vocabs
    tensors, meta = read_safetensors(os.path.join(directory, "model.safetensors"))
    _check_format(directory, meta)
    model = AttnrecReference(json.loads(meta["architecture"]))
    model.load_state_dict(tensors, strict=True)
    model.eval()
    return model, *vocabs


def score_file(directory, data, output):
    """Writes logit and probability of every sample of `data` (a TSV with a header)."""
    model, items, users = load_export(directory)
    max_history = model.arch["max_history"]
    with open(data, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    col = {name: i for i, name in enumerate(header)}
    histories, its, us = [], [], []
    for r in rows:
        tokens = [x for x in r[col["history"]].split(",") if x] if "history" in col else []
        histories.append([items.get(x, 1) for x in tokens[-max_history:]])
        its.append(items.get(r[col["item"]], 1))
        us.append(users.get(r[col["user"]], 1) if "user" in col else 1)
    t = max([len(h) for h in histories] + [1])
    history = torch.zeros(len(rows), t, dtype=torch.int64)
    for i, h in enumerate(histories):
        history[i, :len(h)] = torch.tensor(h, dtype=torch.int64)
    lengths = torch.tensor([len(h) for h in histories], dtype=torch.int64)
    with torch.no_grad():
        logits = model(history, lengths, torch.tensor(its), torch.tensor(us))
    with open(output, "w", encoding="utf-8") as out:
        out.write("logit\tprobability\n")
        for z in logits.tolist():
            out.write(f"{z:.9g}\t{1.0 / (1.0 + math.exp(-z)):.9g}\n")


def main(argv):
    if len(argv) < 4 or argv[0] != "score" or (len(argv) - 1) % 3 != 0:
        sys.stderr.write(__doc__)
        return 2
    torch.set_num_threads(1)
    for i in range(1, len(argv), 3):
        score_file(argv[i], argv[i + 1], argv[i + 2])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
