#!/usr/bin/env python3
"""Tokenizer throughput on one core: ls_tokenize against pip `tokenizers`' encode_batch, on the
same generated text and the same tokenizer.json, in one run. Not a test (docs/TOKENIZERS.md has
the numbers).

The text is deterministic: lines of Zipf-distributed words (Latin, accented, Cyrillic, CJK,
digits, punctuation, emoji) from a fixed seed. The tokenizer is a byte-level BPE trained here
with LLaMA-3's pre-tokenizer regex (or --tokenizer FILE, e.g. a real LLaMA-3 tokenizer.json).
ls_tokenize is timed end to end on the file minus a run on empty input (loading the
tokenizer.json), pinned to one core; tokenizers' encode_batch with RAYON_NUM_THREADS=1 and
TOKENIZERS_PARALLELISM=false, loading excluded. Best of --repeat runs; ids are checked equal.

  tools/bench_tokenizer.py [--mb 4] [--tokenizer tokenizer.json] [--build-dir build]
"""
import os

os.environ["RAYON_NUM_THREADS"] = "1"  # before tokenizers is imported
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import argparse
import json
import random
import subprocess
import tempfile
import time

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def make_lines(megabytes, seed=0):
    rng = random.Random(seed)
    syllables = ["ka", "to", "ri", "en", "the", "ing", "str", "qu", "é", "ö", "ñ", "ся", "ни",
                 "ко", "αβ", "ία", "中", "文", "語", "の", "한", "국"]
    words = ["".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))) for _ in range(20000)]
    words += ["the", "of", "and", "to", "in", "is", "it's", "don't", "THEY'LL"]
    weights = [1.0 / (rank + 1) for rank in range(len(words))]
    extras = [",", ".", " 2024", " 3.14159", " 1,000,000", " 😀", " (x)", "  ", "\t", " —"]
    lines, size = [], 0
    while size < megabytes * 1e6:
        n = rng.randint(5, 40)
        parts = rng.choices(words, weights, k=n)
        line = " ".join(parts)
        if rng.random() < 0.5:
            line += rng.choice(extras)
        if rng.random() < 0.3:
            line = line.capitalize()
        lines.append(line)
        size += len(line.encode()) + 1
    return lines


def train_tokenizer(lines, path):
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=16000, special_tokens=["<|begin_of_text|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(lines[:20000], trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", 0)])
    tok.save(path)


def time_ls_tokenize(binary, tokenizer, text_path, repeat):
    def run(stdin_path):
        with open(stdin_path, "rb") as stdin:
            start = time.perf_counter()
            subprocess.run(["taskset", "-c", "0", binary, "--tokenizer", tokenizer],
                           stdin=stdin, stdout=subprocess.DEVNULL, check=True)
            return time.perf_counter() - start
    empty = text_path + ".empty"
    open(empty, "w").close()
    load = min(run(empty) for _ in range(repeat))
    total = min(run(text_path) for _ in range(repeat))
    return total - load, load


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=float, default=4.0, help="megabytes of text (default 4)")
    parser.add_argument("--tokenizer", help="a tokenizer.json (default: one trained here)")
    parser.add_argument("--build-dir", default="build")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--word-mb", type=float, default=1.0,
                        help="megabytes of the one-long-word row (letters, no space; default 1)")
    args = parser.parse_args()

    os.sched_setaffinity(0, {0})  # tokenizers on one core too
    lines = make_lines(args.mb)
    nbytes = sum(len(line.encode()) + 1 for line in lines)
    with tempfile.TemporaryDirectory(prefix="ls_bench_tok_") as tmp:
        tokenizer = args.tokenizer or os.path.join(tmp, "tokenizer.json")
        if not args.tokenizer:
            train_tokenizer(lines, tokenizer)
        text_path = os.path.join(tmp, "text.txt")
        with open(text_path, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        binary = os.path.join(args.build_dir, "bin", "ls_tokenize")

        hf = Tokenizer.from_file(tokenizer)
        hf_seconds = float("inf")
        for _ in range(args.repeat):
            start = time.perf_counter()
            encodings = hf.encode_batch(lines)
            hf_seconds = min(hf_seconds, time.perf_counter() - start)
        ls_seconds, ls_load = time_ls_tokenize(binary, tokenizer, text_path, args.repeat)

        sample = lines[:2000]
        out = subprocess.run([binary, "--tokenizer", tokenizer], input="\n".join(sample) + "\n",
                             capture_output=True, text=True, check=True).stdout.splitlines()
        same = all(json.loads(o) == e.ids for o, e in zip(out, encodings[:len(sample)]))
        tokens = sum(len(e.ids) for e in encodings)

        # One pre-token of word_mb megabytes: BPE's merge loop alone, on a long word.
        syllables = ["ka", "to", "ri", "en", "the", "ing", "str", "qu"]
        rng = random.Random(1)
        parts, size = [], 0
        while size < args.word_mb * 1e6:
            parts.append(rng.choice(syllables))
            size += len(parts[-1])
        word = "".join(parts)
        word_path = os.path.join(tmp, "word.txt")
        with open(word_path, "w", encoding="utf-8") as f:
            f.write(word + "\n")
        word_hf = float("inf")
        for _ in range(args.repeat):
            start = time.perf_counter()
            word_ids = hf.encode(word).ids
            word_hf = min(word_hf, time.perf_counter() - start)
        word_ls, _ = time_ls_tokenize(binary, tokenizer, word_path, args.repeat)
        word_out = subprocess.run([binary, "--tokenizer", tokenizer], input=word + "\n",
                                  capture_output=True, text=True, check=True).stdout
        same_word = json.loads(word_out) == word_ids

    print(f"text: {len(lines)} lines, {nbytes / 1e6:.2f} MB, {tokens} tokens; tokenizer "
          f"{args.tokenizer or 'byte-level BPE (LLaMA-3 regex, 16k vocab) trained here'}; "
          f"ids equal on the first {len(sample)} lines: {same}")
    for name, seconds in (("ls_tokenize", ls_seconds), ("tokenizers encode_batch", hf_seconds)):
        print(f"{name:24s} {len(lines) / seconds:10.0f} lines/s {nbytes / 1e6 / seconds:7.2f} MB/s"
              f"  ({seconds:.2f} s)")
    print(f"ls_tokenize load (tokenizer.json parse, not in the rate above): {ls_load:.2f} s")
    print(f"ratio ls_tokenize / tokenizers: {hf_seconds / ls_seconds:.2f}x")
    print(f"one {len(word) / 1e6:.2f} MB word ({len(word_ids)} tokens, ids equal: {same_word}): "
          f"ls_tokenize {word_ls:.3f} s, tokenizers encode {word_hf:.3f} s")
    if not same or not same_word:
        raise SystemExit("ids differ")


if __name__ == "__main__":
    main()
