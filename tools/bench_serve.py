#!/usr/bin/env python3
"""Load generator for ls_serve (a benchmark, not a test): starts ls_serve on a trained run once per
--max-batch-size, sends a fixed number of requests from concurrent clients on loopback (each client
a keep-alive HTTP/1.1 connection; the run stops by itself), and prints requests/s, inputs/s and the
p50/p99 latency and the mean inputs per forward pass (from /metrics) per batch size, then the
inputs/s ratio of the largest to the smallest; last, the same at the largest batch size from
--many-clients keep-alive clients at once (256: the p50/p99 a crowd of clients sees).

  tools/bench_serve.py RUN_DIR [--requests 2000] [--clients 16] [--inputs-per-request 1]
                       [--batch-sizes 1,32] [--many-clients 256] [--max-wait-ms 5] [--device cpu]
                       [--bin build/bin] [--compare-bin OTHER_BUILD/bin]
  tools/bench_serve.py --make-run DIR [--hidden 512 --layers 4]   # a larger tiny run to serve

Inputs are the texts of the run's data.validation file (JSONL "text"; CoNLL sentences for token
tasks), cycled. --make-run writes a randomly initialised LLaMA of the given size (HF transformers,
seeded) with the quickstart tokenizer and trains it for a few steps on the quickstart sentiment
data, so the forward pass, not HTTP, dominates a request.
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read_inputs(run):
    with open(os.path.join(run, "config.yaml")) as f:
        config = f.read()
    path = re.search(r"^\s+validation:\s*(\S+)", config, re.M).group(1).strip("'\"")
    token = re.search(r"^\s+type:\s*token", config, re.M) is not None
    inputs = []
    with open(path) as f:
        if token:
            words = []
            for line in f:
                if line.startswith("-DOCSTART-") or not line.strip():
                    if words:
                        inputs.append(" ".join(words))
                    words = []
                else:
                    words.append(line.split()[0])
        else:
            inputs = [json.loads(line)["text"] for line in f if line.strip()]
    return inputs


def start(binary, run, batch_size, args):
    proc = subprocess.Popen([binary, run, "--port", "0", "--max-batch-size", str(batch_size),
                             "--max-wait-ms", str(args.max_wait_ms),
                             *(["--device", args.device] if args.device else [])],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    match = re.search(r"http://127\.0\.0\.1:(\d+) ", line)
    if not match:
        proc.kill()
        sys.exit(f"ls_serve did not start: {line!r}")
    return proc, int(match.group(1))


def load(port, inputs, args):
    """args.requests requests from args.clients concurrent keep-alive connections (asyncio, one
    thread: the client must cost far less than the server, on the same cores); returns (seconds,
    sorted latencies)."""
    import asyncio

    bodies = []
    for i in range(min(args.requests, len(inputs))):
        batch = [inputs[(i * args.inputs_per_request + k) % len(inputs)] for k in range(args.inputs_per_request)]
        body = json.dumps({"inputs": batch}).encode()
        bodies.append(b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(body) + body)
    counter = iter(range(args.requests))
    latencies, failures = [], []

    async def client():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for i in counter:
            t0 = time.perf_counter()
            writer.write(bodies[i % len(bodies)])
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
            payload = await reader.readexactly(length)
            latencies.append(time.perf_counter() - t0)
            if status != 200:
                failures.append((status, payload[:200]))
            if re.search(rb"(?i)connection: *close", head):  # the server's keep-alive limit
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.close()

    async def run_all():
        await asyncio.gather(*(client() for _ in range(args.clients)))

    t0 = time.perf_counter()
    asyncio.run(run_all())
    seconds = time.perf_counter() - t0
    if failures:
        sys.exit(f"{len(failures)} requests failed, first: {failures[0]}")
    return seconds, sorted(latencies)


def mean_batch_size(port):
    """Inputs per forward pass over the server's life, from its /metrics batch-size histogram."""
    import urllib.request
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30).read().decode()
    total = float(re.search(r"^ls_serve_batch_size_sum (\S+)", text, re.M).group(1))
    count = float(re.search(r"^ls_serve_batch_size_count (\S+)", text, re.M).group(1))
    return total / max(count, 1.0)


def make_run(out, hidden, layers):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    assets = os.path.join(ROOT, "build", "quickstart")
    subprocess.run([sys.executable, os.path.join(ROOT, "tools", "make_quickstart_assets.py"), assets], check=True)
    model = os.path.join(out, "model")
    os.makedirs(model, exist_ok=True)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=400, hidden_size=hidden, intermediate_size=hidden * 8 // 3,
                         num_hidden_layers=layers, num_attention_heads=max(1, hidden // 64),
                         num_key_value_heads=max(1, hidden // 128), max_position_embeddings=256,
                         bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False)
    LlamaForCausalLM(config).save_pretrained(model, safe_serialization=True)
    with open(os.path.join(assets, "model", "tokenizer.model"), "rb") as src, \
            open(os.path.join(model, "tokenizer.model"), "wb") as dst:
        dst.write(src.read())
    cfg = {"model": {"path": model, "attention": "causal", "dtype": "f32"},
           "task": {"type": "sequence", "labels": ["negative", "positive"]},
           "lora": {"r": 8, "alpha": 16, "targets": ["q_proj", "v_proj"]},
           "data": {"train": f"{assets}/data/sentiment_train.jsonl",
                    "validation": f"{assets}/data/sentiment_validation.jsonl", "max_length": 32},
           "train": {"epochs": 1, "max_steps": 4, "batch_size": 8, "eval_every": "4"},
           "output": {"dir": os.path.join(out, "run"), "tensorboard": False, "plot": False}}
    with open(os.path.join(out, "cfg.yaml"), "w") as f:
        json.dump(cfg, f)  # JSON is YAML
    subprocess.run([os.path.join(ROOT, "build", "bin", "ls_train"), os.path.join(out, "cfg.yaml")], check=True)
    print(f"run: {os.path.join(out, 'run')}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", nargs="?")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--inputs-per-request", type=int, default=1)
    parser.add_argument("--batch-sizes", default="1,32")
    parser.add_argument("--many-clients", type=int, default=256,
                        help="a last row at the largest batch size with this many clients (0: none)")
    parser.add_argument("--max-wait-ms", type=int, default=5)
    parser.add_argument("--device", default="")
    parser.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    parser.add_argument("--compare-bin", metavar="DIR",
                        help="the same rows, in the same run, for another build's ls_serve (e.g. an older commit)")
    parser.add_argument("--make-run", metavar="DIR")
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=4)
    args = parser.parse_args()
    if args.make_run:
        return make_run(args.make_run, args.hidden, args.layers)
    if not args.run:
        parser.error("RUN_DIR or --make-run DIR")

    inputs = read_inputs(args.run)
    print(f"{args.requests} requests x {args.inputs_per_request} input(s), {args.clients} clients, "
          f"--max-wait-ms {args.max_wait_ms}, {len(inputs)} distinct inputs from {args.run}")
    def row(bin_dir, batch_size, clients):
        run_args = argparse.Namespace(**{**vars(args), "clients": clients,
                                         "requests": max(args.requests, 4 * clients)})
        proc, port = start(os.path.join(bin_dir, "ls_serve"), args.run, batch_size, run_args)
        try:
            warm = argparse.Namespace(**{**vars(run_args), "requests": 2 * clients})
            load(port, inputs, warm)
            seconds, latencies = load(port, inputs, run_args)
            mean_batch = mean_batch_size(port)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        rate = run_args.requests * args.inputs_per_request / seconds
        p50 = latencies[len(latencies) // 2] * 1e3
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1e3
        name = "this" if bin_dir == args.bin else "compare"
        print(f"{name:>8} {batch_size:>9} {clients:>7} {run_args.requests / seconds:>11.1f} {rate:>10.1f} {p50:>8.2f} "
              f"{p99:>8.2f} {mean_batch:>10.2f}", flush=True)
        return rate

    print(f"{'server':>8} {'max batch':>9} {'clients':>7} {'requests/s':>11} {'inputs/s':>10} {'p50 ms':>8} "
          f"{'p99 ms':>8} {'mean batch':>10}")
    for bin_dir in [args.bin] + ([args.compare_bin] if args.compare_bin else []):
        rates = {}
        for batch_size in [int(b) for b in args.batch_sizes.split(",")]:
            rates[batch_size] = row(bin_dir, batch_size, args.clients)
        smallest, largest = min(rates), max(rates)
        if args.many_clients:
            row(bin_dir, largest, args.many_clients)
        if largest != smallest:
            print(f"{'this' if bin_dir == args.bin else 'compare'}: inputs/s ratio, max batch {largest} / {smallest}: "
                  f"{rates[largest] / rates[smallest]:.2f}x", flush=True)

if __name__ == "__main__":
    main()
