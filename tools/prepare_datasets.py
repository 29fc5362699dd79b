#!/usr/bin/env python3
"""Writes the files the paper recipes in configs/ read, from the Hugging Face hub (needs network
and `pip install datasets`). Selection happens on validation, never on test, so:

  sst2      train.jsonl (95% of GLUE train), validation.jsonl (the other 5%, seeded),
            test.jsonl (GLUE validation: GLUE's test labels are hidden). Fields: sentence, label (0/1).
  conll2003 train/validation/test.jsonl as HF exports them: tokens, ner_tags (integers indexing the
            label list in configs/conll03_ls_unllama2_7b.yaml).

Usage: prepare_datasets.py sst2|conll2003 OUT_DIR
"""
import os
import sys


def main(name, out):
    from datasets import load_dataset

    os.makedirs(out, exist_ok=True)
    if name == "sst2":
        glue = load_dataset("nyu-mll/glue", "sst2")
        split = glue["train"].train_test_split(test_size=0.05, seed=42)
        parts = {"train": split["train"], "validation": split["test"], "test": glue["validation"]}
        columns = ["sentence", "label"]
    elif name == "conll2003":
        conll = load_dataset("eriktks/conll2003")
        parts = {k: conll[k] for k in ("train", "validation", "test")}
        columns = ["tokens", "ner_tags"]
    else:
        sys.exit(__doc__)
    for split_name, data in parts.items():
        path = os.path.join(out, f"{split_name}.jsonl")
        data.select_columns(columns).to_json(path, lines=True)
        print(f"{path}: {len(data)} examples")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
