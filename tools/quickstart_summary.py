#!/usr/bin/env python3
"""Prints the quickstart's results as a table and writes them to SUMMARY.json.

Usage: quickstart_summary.py SUMMARY.json NAME=RUN_DIR ...
Each run's selected-checkpoint validation metrics and its test metrics come from metrics.jsonl."""
import json
import os
import sys


def results(run_dir):
    """The selected checkpoint's validation value and its test value, under the selection metric
    and direction ls_train recorded in each validation record (selection_metric, selection_mode)."""
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f if line.strip()]
    test = next(r for r in reversed(records) if r["split"] == "test")
    validation = [r for r in records if r["split"] == "validation"]
    metric = validation[0]["selection_metric"] if validation else "loss"
    pick = min if validation and validation[0]["selection_mode"] == "min" else max
    best = pick(validation, key=lambda r: r[metric]) if validation else {}
    config = open(os.path.join(run_dir, "config.yaml")).read()
    attention = "bidirectional" if "attention: bidirectional" in config else "causal"
    task = "token" if "type: token" in config else "sequence"
    if "problem_type: multi_label" in config:
        task = "multi"
    elif "problem_type: regression" in config:
        task = "regress"
    return {"task": task, "attention": attention, "metric": metric,
            "validation": best.get(metric), "test": test[metric], "run": run_dir}


def main():
    out = sys.argv[1]
    summary = {}
    for item in sys.argv[2:]:
        name, run_dir = item.split("=", 1)
        summary[name] = results(run_dir)
    print(f"\n{'run':<28} {'task':<9} {'attention':<14} {'metric':<10} {'validation':>10} {'test':>8}")
    for name, r in summary.items():
        print(f"{name:<28} {r['task']:<9} {r['attention']:<14} {r['metric']:<10} {r['validation']:>10.4f} {r['test']:>8.4f}")
    with open(out, "w") as f:
        json.dump(summary, f, indent=2)
    print(f"\nsummary: {out}")


if __name__ == "__main__":
    main()
