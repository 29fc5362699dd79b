#!/usr/bin/env python3
"""Time and peak memory of loading a large bf16 LLaMA checkpoint with ls_forward on CPU, and the
time to a first prediction against HF transformers.

Writes (once) a synthetic TinyLlama-1.1B-shaped checkpoint (22 layers, hidden 2048, GQA 32/4 heads,
~2.2 GB bf16 in two shards with an index, as HF saves them) under --dir, then runs
`ls_forward --dtype bf16 --verbose` on a three-token batch and reports: bytes loaded, load time and
rate (from ls_forward), the plain read rate of the same files (cat to /dev/null, same cache state),
and ls_forward's peak RSS (GNU time). Loading should run near the read rate and peak RSS should be
about one copy of the weights plus the runtime, not two.

Then the time to a first prediction, whole processes started one after the other on the same
machine, one run each: `ls_forward` (load + forward + writing the logits) against a Python process
that imports transformers, runs `LlamaForSequenceClassification.from_pretrained(dir,
dtype=torch.bfloat16)` and one forward on the same batch (with --f32, both in float32:
conversion on load).

  tools/bench_load.py --build build --dir /tmp/ls_bench_ckpt [--drop-caches]
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

CONFIG = dict(vocab_size=32000, hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
              num_attention_heads=32, num_key_value_heads=4, head_dim=64, rms_norm_eps=1e-5,
              max_position_embeddings=2048, model_type="llama", hidden_act="silu",
              rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, tie_word_embeddings=False)


def tensor_shapes(c):
    h, i, v, d = c["hidden_size"], c["intermediate_size"], c["vocab_size"], c["head_dim"]
    q, kv = c["num_attention_heads"] * d, c["num_key_value_heads"] * d
    yield "model.embed_tokens.weight", (v, h)
    for n in range(c["num_hidden_layers"]):
        p = f"model.layers.{n}."
        yield p + "input_layernorm.weight", (h,)
        yield p + "post_attention_layernorm.weight", (h,)
        yield p + "self_attn.q_proj.weight", (q, h)
        yield p + "self_attn.k_proj.weight", (kv, h)
        yield p + "self_attn.v_proj.weight", (kv, h)
        yield p + "self_attn.o_proj.weight", (h, q)
        yield p + "mlp.gate_proj.weight", (i, h)
        yield p + "mlp.up_proj.weight", (i, h)
        yield p + "mlp.down_proj.weight", (h, i)
    yield "model.norm.weight", (h,)
    yield "lm_head.weight", (v, h)  # in the file, never loaded


def write_checkpoint(directory):
    import torch
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(CONFIG, indent=2))
    shapes = list(tensor_shapes(CONFIG))
    half = len(shapes) // 2
    shards = {"model-00001-of-00002.safetensors": shapes[:half], "model-00002-of-00002.safetensors": shapes[half:]}
    generator = torch.Generator().manual_seed(0)
    weight_map = {}
    for shard, entries in shards.items():  # one shard in memory at a time
        tensors = {name: (torch.randn(shape, generator=generator) * 0.02).to(torch.bfloat16) for name, shape in entries}
        save_file(tensors, directory / shard, metadata={"format": "pt"})
        weight_map.update({name: shard for name in tensors})
        del tensors
    index = {"metadata": {"total_size": sum((directory / s).stat().st_size for s in shards)}, "weight_map": weight_map}
    (directory / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))


def gnu_time(stderr):
    """(peak RSS KiB, CPU seconds) from the line /usr/bin/time -f "peak_rss_kib=%M cpu_s=%U+%S" adds."""
    line = next(l for l in stderr.splitlines() if l.startswith("peak_rss_kib="))
    fields = dict(field.split("=") for field in line.split())
    user, system = fields["cpu_s"].split("+")
    return int(fields["peak_rss_kib"]), float(user) + float(system)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default="build", help="build directory with bin/ls_forward")
    parser.add_argument("--dir", default="/tmp/ls_bench_ckpt", help="where the synthetic checkpoint lives")
    parser.add_argument("--drop-caches", action="store_true", help="drop the page cache before each run (root)")
    parser.add_argument("--f32", action="store_true", help="load as float32 (a dtype conversion on load)")
    parser.add_argument("--no-hf", action="store_true", help="skip the HF time to first prediction")
    args = parser.parse_args()

    import torch
    from safetensors.torch import save_file

    directory = Path(args.dir)
    if not (directory / "model.safetensors.index.json").exists():
        print(f"writing synthetic checkpoint to {directory} ...", file=sys.stderr)
        write_checkpoint(directory)
    shards = sorted(directory.glob("model-*.safetensors"))
    file_bytes = sum(s.stat().st_size for s in shards)

    def drop():
        if args.drop_caches:
            subprocess.run(["sync"], check=True)
            Path("/proc/sys/vm/drop_caches").write_text("3\n")

    drop()
    start = time.perf_counter()
    subprocess.run(["cat", *map(str, shards)], stdout=subprocess.DEVNULL, check=True)
    read_seconds = time.perf_counter() - start

    inputs = directory / "inputs.safetensors"
    save_file({"input_ids": torch.tensor([[1, 5, 9]]), "attention_mask": torch.ones(1, 3, dtype=torch.long)}, inputs)
    drop()
    # GNU time measures the ls_forward process alone (getrusage would also count this Python's
    # forked image before exec).
    dtype = "f32" if args.f32 else "bf16"
    start = time.perf_counter()
    result = subprocess.run(["/usr/bin/time", "-f", "peak_rss_kib=%M cpu_s=%U+%S", str(Path(args.build) / "bin" / "ls_forward"), "--model", str(directory), "--task", "sequence",
                             "--dtype", dtype, "--inputs", str(inputs), "--out", str(directory / "out.safetensors"),
                             "--verbose"], capture_output=True, text=True)
    ls_process_seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(result.stderr)
    peak_kib, ls_cpu = gnu_time(result.stderr)
    line = next(l for l in result.stderr.splitlines() if "loaded" in l)
    load_seconds = float(line.rsplit(" in ", 1)[1].split()[0])
    loaded_gb = float(line.split("(")[1].split()[0])
    print(f"checkpoint files: {file_bytes / 1e9:.2f} GB in {len(shards)} shards (lm_head included, not loaded)")
    print(f"plain read (cat): {read_seconds:.2f} s = {file_bytes / 1e9 / read_seconds:.2f} GB/s")
    print(f"ls_forward load : {loaded_gb:.2f} GB of weights in {load_seconds:.2f} s = {loaded_gb / load_seconds:.2f} GB/s")
    print(f"peak RSS        : {peak_kib * 1024 / 1e9:.2f} GB (ls_forward, whole run incl. libtorch and the forward)")
    print(f"time to first prediction, ls_forward ({dtype}, whole process): {ls_process_seconds:.2f} s "
          f"(CPU {ls_cpu:.2f} s, user + system)")
    if args.no_hf:
        return
    drop()
    torch_dtype = "float32" if args.f32 else "bfloat16"
    hf = ("import sys, time, torch\n"
          "from transformers import LlamaForSequenceClassification, logging\n"
          "logging.set_verbosity_error()\n"
          "start = time.perf_counter()\n"
          f"model = LlamaForSequenceClassification.from_pretrained({str(directory)!r}, dtype=torch.{torch_dtype}, num_labels=2)\n"
          "model.eval()\n"
          "loaded = time.perf_counter() - start\n"
          "with torch.no_grad():\n"
          "    logits = model(input_ids=torch.tensor([[1, 5, 9]]), attention_mask=torch.ones(1, 3, dtype=torch.long)).logits\n"
          "print(f'hf_load_s={loaded:.3f} logits={logits.float().tolist()}', file=sys.stderr)\n")
    start = time.perf_counter()
    result = subprocess.run(["/usr/bin/time", "-f", "peak_rss_kib=%M cpu_s=%U+%S", sys.executable, "-c", hf], capture_output=True, text=True)
    hf_process_seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(result.stderr)
    hf_peak_kib, hf_cpu = gnu_time(result.stderr)
    hf_load = float(next(l for l in result.stderr.splitlines() if l.startswith("hf_load_s=")).split()[0].split("=")[1])
    print(f"time to first prediction, HF ({torch_dtype}, whole process): {hf_process_seconds:.2f} s "
          f"(CPU {hf_cpu:.2f} s; from_pretrained {hf_load:.2f} s; peak RSS {hf_peak_kib * 1024 / 1e9:.2f} GB)")
    print(f"ratio ls / HF   : {ls_process_seconds / hf_process_seconds:.2f} wall, {ls_cpu / hf_cpu:.2f} CPU "
          f"(on a busy machine CPU time is the steadier measure)")


if __name__ == "__main__":
    main()
