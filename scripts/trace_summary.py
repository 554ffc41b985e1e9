#!/usr/bin/env python3
"""Summarises Chrome traces of LibTorch's profiler (attnrec bench --profile DIR, or
scripts/bench_vs_pytorch.py --profile DIR) as one JSON object per trace.

    scripts/trace_summary.py TRACE.json [TRACE.json ...] [--top N] [--step REGEX]

Per trace: the steps (events named like --step: attnrec::train_step, peer::train_step,
attnrec::score_batch, peer::score_batch) and their mean wall time; per step, the operators
started on the host (all, and top-level ones: not inside another operator of their thread), the
CUDA runtime calls and kernel launches, the kernels, their time and the copies; the share of the
window the GPU ran kernels; and the top operators and kernels by total time. What a GPU step of
a small model is bound by shows here: launches per step against the kernels' own time.
Standard library only.
"""
import argparse
import collections
import json
import re
import sys


def load_events(path):
    try:
        with open(path) as f:
            trace = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"trace_summary: {path}: cannot read a Chrome trace ({e})")
    events = trace.get("traceEvents") if isinstance(trace, dict) else trace
    if not isinstance(events, list):
        sys.exit(f"trace_summary: {path}: no traceEvents list (not a profiler trace)")
    return [e for e in events if isinstance(e, dict) and e.get("ph") == "X" and "dur" in e]


def top_level(ops):
    """Operators not nested in another operator of the same thread."""
    by_thread = collections.defaultdict(list)
    for e in ops:
        by_thread[(e.get("pid"), e.get("tid"))].append(e)
    top = []
    for events in by_thread.values():
        events.sort(key=lambda e: (e["ts"], -e["dur"]))
        end = float("-inf")
        for e in events:
            if e["ts"] >= end:
                top.append(e)
                end = e["ts"] + e["dur"]
    return top


def totals(events, n):
    by_name = collections.defaultdict(lambda: [0, 0.0])
    for e in events:
        by_name[e["name"]][0] += 1
        by_name[e["name"]][1] += e["dur"]
    ranked = sorted(by_name.items(), key=lambda kv: -kv[1][1])[:n]
    return [{"name": k, "count": c, "us": round(us, 1)} for k, (c, us) in ranked]


def summarise(path, top, step_pattern):
    events = load_events(path)
    step = re.compile(step_pattern)
    cat = collections.defaultdict(list)
    step_events = []
    for e in events:
        if e.get("cat") == "gpu_user_annotation":
            continue  # the GPU's copy of a scope: its host event is counted
        if step.search(e["name"]):
            step_events.append(e)
        elif e.get("cat") != "user_annotation":
            # Traces of a profiler without Kineto (Debian's torch 1.13) have no categories: all
            # their events are host operators.
            cat[e.get("cat", "cpu_op")].append(e)
    names = collections.Counter(e["name"] for e in step_events)
    step_name = names.most_common(1)[0][0] if names else ""
    step_events = [e for e in step_events if e["name"] == step_name]
    steps = len(step_events)
    per = max(steps, 1)
    ops = cat["cpu_op"]
    kernels = cat["kernel"]
    runtime = cat["cuda_runtime"] + cat["cuda_driver"]
    launches = [e for e in runtime if "Launch" in e["name"]]
    copies = cat["gpu_memcpy"] + cat["gpu_memset"]
    window = 0.0
    if step_events:
        window = max(e["ts"] + e["dur"] for e in step_events) - min(e["ts"] for e in step_events)
    kernel_us = sum(e["dur"] for e in kernels)
    return {
        "trace": path,
        "step": step_name,
        "steps": steps,
        "step_wall_us": round(sum(e["dur"] for e in step_events) / per, 1),
        "per_step": {
            "host_ops": round(len(ops) / per, 1),
            "host_top_level_ops": round(len(top_level(ops)) / per, 1),
            "cuda_runtime_calls": round(len(runtime) / per, 1),
            "kernel_launches": round(len(launches) / per, 1),
            "kernels": round(len(kernels) / per, 1),
            "kernel_us": round(kernel_us / per, 1),
            "copies": round(len(copies) / per, 1),
            "copy_us": round(sum(e["dur"] for e in copies) / per, 1),
        },
        # The share of the steps' wall time the GPU spent in kernels (low: launch-bound).
        "gpu_busy": round(kernel_us / window, 3) if window > 0 and kernels else None,
        "top_host_ops": totals(top_level(ops), top),
        "top_kernels": totals(kernels, top),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("traces", nargs="+")
    ap.add_argument("--top", type=int, default=10, help="operators and kernels listed (10)")
    ap.add_argument("--step", default=r"::(train_step|score_batch)$",
                    help="regular expression of the step events' names")
    args = ap.parse_args()
    for path in args.traces:
        print(json.dumps(summarise(path, args.top, args.step)))


if __name__ == "__main__":
    main()
