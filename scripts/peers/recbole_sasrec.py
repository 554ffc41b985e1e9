"""RecBole's SASRec (CE loss, full ranking) trained and scored on an `attnrec preprocess` split,
as a peer of scripts/recipe_real_data.sh.

    scripts/peers/recbole_venv.sh   # once: a virtual environment with RecBole 1.2.1
    .venv-peers/bin/python scripts/peers/recbole_sasrec.py PREPARED_DIR [--epochs 200]
        [--time-budget SECONDS] [--threads 2] [--seed 42] [--json OUT.json] [--work DIR]
        [--dim 64] [--layers 2] [--heads 2] [--dropout 0.5] [--batch 2048] [--patience 10]

How the split corresponds: the atomic file `attnrec.inter` holds every event of
PREPARED_DIR/interactions.tsv (the events attnrec kept, in attnrec's timeline order), with the
timestamp replaced by the event's position in its user's timeline, so ties cannot reorder it.
RecBole's leave-one-out split (`LS: valid_and_test`, ordered by time, grouped by user) then
puts each user's last event in test and the one before in validation: exactly attnrec's
leave_last_out test.tsv and valid.tsv positives. Full ranking (`mode: full`) ranks each
positive against every item, the user's earlier events removed (training events for
validation, training and validation events for test), as attnrec's full protocol does. The
model is selected on validation NDCG@10 (RecBole's `valid_metric`), early-stopped after
`patience` validations without improvement, or stopped at the time budget (the best model so
far is kept).

RecBole 1.2.1 on current NumPy: `np.float`, `np.int` and `np.bool` were removed in NumPy 1.24
and are restored here as aliases before RecBole is imported; nothing else is patched (the
`torch.load(weights_only=...)` break of PyTorch >= 2.6 does not apply to Debian's 1.13, which
the environment uses through --system-site-packages).
"""
import argparse
import json
import os
import sys
import time


def write_atomic(prepared, work):
    """attnrec's interactions.tsv -> WORK/attnrec/attnrec.inter; returns the event count."""
    os.makedirs(os.path.join(work, "attnrec"), exist_ok=True)
    position = {}
    n = 0
    with open(os.path.join(prepared, "interactions.tsv"), encoding="utf-8") as f, \
            open(os.path.join(work, "attnrec", "attnrec.inter"), "w", encoding="utf-8") as out:
        header = f.readline().rstrip("\r\n").split("\t")
        assert header[:2] == ["user", "item"], f"unexpected header {header}"
        out.write("user_id:token\titem_id:token\ttimestamp:float\n")
        for line in f:
            user, item = line.rstrip("\r\n").split("\t")[:2]
            k = position.get(user, 0)
            position[user] = k + 1
            out.write(f"{user}\t{item}\t{k}\n")
            n += 1
    return n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("prepared")
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--time-budget", type=float, default=0, help="training wall-time cap (s)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=2)
    ap.add_argument("--dropout", type=float, default=0.5)
    ap.add_argument("--batch", type=int, default=2048)
    ap.add_argument("--lr", type=float, default=0.001)
    ap.add_argument("--max-len", type=int, default=50)
    ap.add_argument("--patience", type=int, default=10)
    ap.add_argument("--work", default=None, help="atomic files and checkpoints (default: "
                    "PREPARED_DIR/../recbole)")
    ap.add_argument("--json", help="write the figures here")
    a = ap.parse_args()
    import numpy as np
    for name, alias in (("float", float), ("int", int), ("bool", bool)):
        if not hasattr(np, name):
            setattr(np, name, alias)  # removed in NumPy 1.24, still used by RecBole 1.2.1
    try:
        import torch
        from recbole.config import Config
        from recbole.data import create_dataset, data_preparation
        from recbole.model.sequential_recommender import SASRec
        from recbole.trainer import Trainer
        from recbole.utils import init_seed
    except ImportError as e:
        print(f"recbole_sasrec.py: {e}; run scripts/peers/recbole_venv.sh and use its python",
              file=sys.stderr)
        return 2
    torch.set_num_threads(a.threads)
    prepared = os.path.abspath(a.prepared)
    work = os.path.abspath(a.work or os.path.join(os.path.dirname(prepared), "recbole"))
    events = write_atomic(prepared, work)
    os.chdir(work)  # RecBole writes log/ and log_tensorboard/ into the working directory
    config = Config(model="SASRec", dataset="attnrec", config_dict={
        "data_path": work, "checkpoint_dir": os.path.join(work, "saved"),
        "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "TIME_FIELD": "timestamp",
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "MAX_ITEM_LIST_LENGTH": a.max_len, "loss_type": "CE", "train_neg_sample_args": None,
        "hidden_size": a.dim, "inner_size": 4 * a.dim, "n_layers": a.layers, "n_heads": a.heads,
        "hidden_dropout_prob": a.dropout, "attn_dropout_prob": a.dropout,
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user",
                      "mode": "full"},
        "metrics": ["Hit", "NDCG"], "topk": [10], "valid_metric": "NDCG@10",
        "epochs": a.epochs, "stopping_step": a.patience, "eval_step": 1,
        "train_batch_size": a.batch, "eval_batch_size": 4096, "learning_rate": a.lr,
        "seed": a.seed, "reproducibility": True, "use_gpu": False, "device": "cpu",
        "show_progress": False, "worker": 0, "log_wandb": False, "state": "WARNING",
    })
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    model = SASRec(config, train_data.dataset).to(config["device"])
    trainer = Trainer(config, model)

    started = time.time()
    curve = []
    valid_epoch = trainer._valid_epoch

    def timed_valid(*args, **kwargs):  # records (seconds, NDCG@10) at every validation
        score, result = valid_epoch(*args, **kwargs)
        curve.append([round(time.time() - started, 1), float(score)])
        print(f"recbole: validation {len(curve)} ndcg@10 {score:.4f} "
              f"({time.time() - started:.0f} s)", file=sys.stderr, flush=True)
        return score, result

    class OutOfTime(Exception):
        pass

    train_epoch = trainer._train_epoch
    train_seconds = [0.0]

    def capped_train(*args, **kwargs):  # stops before an epoch that starts past the budget
        if a.time_budget > 0 and time.time() - started > a.time_budget:
            raise OutOfTime()
        t0 = time.time()
        out = train_epoch(*args, **kwargs)
        train_seconds[0] += time.time() - t0
        return out

    trainer._valid_epoch = timed_valid
    trainer._train_epoch = capped_train
    try:
        trainer.fit(train_data, valid_data, saved=True, show_progress=False)
        stopped = "converged or epochs"
    except OutOfTime:
        stopped = "time budget"
    wall = time.time() - started
    test = trainer.evaluate(test_data, load_best_model=True, model_file=trainer.saved_model_file,
                            show_progress=False)
    valid_best = max((v for _, v in curve), default=None)
    result = {"model": "SASRec (RecBole 1.2.1, CE)", "events": events,
              "valid_ndcg@10": valid_best, "curve": curve, "stopped": stopped,
              "train_seconds": wall, "train_loop_seconds": train_seconds[0],
              "full_hr@10": float(test["hit@10"]), "full_ndcg@10": float(test["ndcg@10"]),
              "users": int(dataset.user_num - 1), "items": int(dataset.item_num - 1)}
    print(json.dumps(result))
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
