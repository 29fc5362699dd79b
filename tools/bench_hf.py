#!/usr/bin/env python3
"""The ls_bench step in HF transformers + PEFT: what a user would run instead, timed the same way.

LlamaForSequenceClassification (or ForTokenClassification) from a LlamaConfig at the same shape,
random weights made directly on the device in the base dtype (so a 7B model fits), SDPA
attention, PEFT LoRA (r, alpha, dropout, target_modules; task_type SEQ_CLS / TOKEN_CLS so the
head `score` is trained), torch.optim.AdamW(lr=1e-4) over the trainable tensors, gradient
clipping as ls_train (--max-grad-norm, 0 = none). A step is forward + backward + clip +
optimizer step, synchronized; warm-up steps, then the median of the timed steps. `compiled`
runs each decoder layer through torch.compile (use_cache=False). Writes the JSON fields ls_bench
writes (docs/BENCH.md).

  tools/bench_hf.py --shape tiny --batch 8 --length 64 --threads 2 --json hf.json
  tools/bench_hf.py --shape 7b --batch 8 --length 512 --modes eager,compiled --out-dir DIR
"""
import argparse
import datetime
import json
import os
import resource
import statistics
import sys
import time

SHAPES = {  # hidden, layers, heads, kv_heads, intermediate, vocab (as ls_bench)
    "tiny": (256, 4, 8, 4, 688, 32000),
    "1b": (2048, 22, 32, 4, 5632, 32000),
    "7b": (4096, 32, 32, 32, 11008, 32000),
    "13b": (5120, 40, 40, 40, 13824, 32000),
}
PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def projection_shape(c, name):
    q, kv = c["heads"] * c["head_dim"], c["kv_heads"] * c["head_dim"]
    return {"q_proj": (c["hidden"], q), "k_proj": (c["hidden"], kv), "v_proj": (c["hidden"], kv),
            "o_proj": (q, c["hidden"]), "gate_proj": (c["hidden"], c["intermediate"]),
            "up_proj": (c["hidden"], c["intermediate"]), "down_proj": (c["intermediate"], c["hidden"])}[name]


def model_flops(c, batch, length, r, targets, causal):
    """The formula of docs/BENCH.md, as ls_bench computes it."""
    tokens = batch * length
    linear = sum(a * b for a, b in (projection_shape(c, n) for n in PROJECTIONS))
    lora = sum(r * sum(projection_shape(c, n)) for n in PROJECTIONS if n in targets or "all-linear" in targets)
    attention_forward = 4.0 * batch * length * length * c["heads"] * c["head_dim"] * (0.5 if causal else 1.0)
    split = {"base_gemm": 4.0 * tokens * linear * c["layers"], "attention": 3 * attention_forward * c["layers"],
             "lora": 3 * 2.0 * tokens * lora * c["layers"]}
    return sum(split.values()), split


def lookup_peak_tflops(name, dtype):
    if dtype == "f32":
        return 0.0
    for key, peak in (("H200", 989), ("H100", 989), ("A100", 312), ("L40S", 362), ("RTX 4090", 165)):
        if key in name:
            return 756.0 if key == "H100" and "PCIe" in name else float(peak)
    return 0.0


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "cpu"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", default="tiny", choices=sorted(SHAPES))
    parser.add_argument("--task", default="sequence", choices=["sequence", "token"])
    parser.add_argument("--num-labels", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--lora-r", type=int, default=12)
    parser.add_argument("--lora-alpha", type=float, default=32)
    parser.add_argument("--lora-dropout", type=float, default=0.1)
    parser.add_argument("--lora-targets", default="q_proj,v_proj")
    parser.add_argument("--attention", default="causal", choices=["causal", "bidirectional"])
    parser.add_argument("--gradient-checkpointing", action="store_true", help="HF gradient checkpointing (non-reentrant)")
    parser.add_argument("--dtype", default="auto", choices=["auto", "f32", "bf16", "f16"])
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (CPU; 0 = torch's default)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--max-grad-norm", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--compile", action="store_true", help="same as --modes compiled")
    parser.add_argument("--modes", default=None, help="eager, compiled or both (eager,compiled): one model, run in turn")
    parser.add_argument("--peak-tflops", type=float, default=0)
    parser.add_argument("--json", help="write the result here (one mode)")
    parser.add_argument("--out-dir", help="write hf_<mode>.json here for every mode")
    args = parser.parse_args()
    modes = (args.modes or ("compiled" if args.compile else "eager")).split(",")
    if any(m not in ("eager", "compiled") for m in modes):
        parser.error(f"--modes: {args.modes!r}: eager and/or compiled")
    if args.json and len(modes) != 1:
        parser.error("--json takes one mode; use --out-dir for several")
    if args.attention == "bidirectional":
        parser.error("--attention bidirectional: HF LLaMA is causal only (LS-unLLaMA needs a patched mask)")

    import torch
    import transformers
    import peft
    from transformers import LlamaConfig, LlamaForSequenceClassification, LlamaForTokenClassification

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", 0)
    dtype_name = args.dtype if args.dtype != "auto" else ("bf16" if device.type == "cuda" else "f32")
    dtype = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}[dtype_name]
    targets = [t for t in args.lora_targets.split(",") if t]

    hidden, layers, heads, kv_heads, intermediate, vocab = SHAPES[args.shape]
    shape = dict(hidden=hidden, layers=layers, heads=heads, kv_heads=kv_heads, head_dim=hidden // heads,
                 intermediate=intermediate, vocab=vocab)
    config = LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=intermediate,
                         num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
                         head_dim=hidden // heads, max_position_embeddings=max(4096, args.length),
                         rms_norm_eps=1e-5, num_labels=args.num_labels, pad_token_id=0, use_cache=False,
                         attn_implementation="sdpa")
    config._attn_implementation = "sdpa"

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    torch.manual_seed(args.seed)
    start = time.perf_counter()
    cls = LlamaForSequenceClassification if args.task == "sequence" else LlamaForTokenClassification
    # Weights made on the device, in the base dtype: no float32 copy on the host.
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    with torch.device(device):
        model = cls(config)
    torch.set_default_dtype(previous)
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    lora = peft.LoraConfig(r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
                           target_modules=targets, task_type="SEQ_CLS" if args.task == "sequence" else "TOKEN_CLS")
    model = peft.get_peft_model(model, lora)
    model.train()
    sync()
    load_s = time.perf_counter() - start
    trainable = [p for p in model.parameters() if p.requires_grad]
    base_params = sum(p.numel() for p in model.parameters() if not p.requires_grad)

    generator = torch.Generator().manual_seed(args.seed)
    input_ids = torch.randint(1, vocab, (args.batch, args.length), generator=generator).to(device)
    mask = torch.ones(args.batch, args.length, dtype=torch.long, device=device)
    label_shape = (args.batch,) if args.task == "sequence" else (args.batch, args.length)
    labels = torch.randint(0, args.num_labels, label_shape, generator=generator).to(device)

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    peak_tflops = args.peak_tflops or lookup_peak_tflops(name, dtype_name)
    flops, flops_split = model_flops(shape, args.batch, args.length, args.lora_r, targets, args.attention == "causal")

    for mode in modes:
        if mode == "compiled":
            import torch._dynamo
            torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 4 * layers)
            for layer in model.base_model.model.model.layers:
                layer.compile()
        optimizer = torch.optim.AdamW(trainable, lr=args.lr)
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)

        def step():
            out = model(input_ids=input_ids, attention_mask=mask, labels=labels, use_cache=False)
            out.loss.backward()
            if args.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(trainable, args.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        warm_start = time.perf_counter()
        for _ in range(args.warmup):
            step()
        sync()
        warmup_s = time.perf_counter() - warm_start
        times = []
        cpu_start = time.process_time()  # all threads: the work done, not the wait for a core
        for _ in range(args.steps):
            t = time.perf_counter()
            step()
            sync()
            times.append((time.perf_counter() - t) * 1000)
        ms = statistics.median(times)
        cpu_ms = (time.process_time() - cpu_start) * 1000 / args.steps

        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        result = {
            "tool": "bench_hf", "variant": f"hf_{mode}", "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "shape": args.shape, "model": None, "config": shape, "task": args.task, "num_labels": args.num_labels,
            "batch": args.batch, "length": args.length, "tokens_per_step": args.batch * args.length,
            "lora": {"r": args.lora_r, "alpha": args.lora_alpha, "dropout": args.lora_dropout, "targets": targets},
            "attention": args.attention,
            "activation_checkpointing": "full" if args.gradient_checkpointing else "none",
            "optimizer": "torch.optim.AdamW", "dtype": dtype_name, "device": str(device), "device_name": name,
            "threads": torch.get_num_threads() if device.type == "cpu" else 0,
            "warmup": args.warmup, "steps": args.steps, "warmup_s": warmup_s,
            "trainable_params": sum(p.numel() for p in trainable), "base_params": base_params, "load_s": load_s,
            "ms_per_step": ms, "ms_per_step_all": times, "tokens_per_s": args.batch * args.length / (ms / 1000),
            "cpu_ms_per_step": cpu_ms,
            "peak_rss_bytes": rss,
            "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__},
            "attn_implementation": model.base_model.model.config._attn_implementation,
        }
        if device.type == "cuda":
            result["peak_allocated_bytes"] = torch.cuda.max_memory_allocated(device)
            result["peak_reserved_bytes"] = torch.cuda.max_memory_reserved(device)
            result["peak_mem_bytes"] = result["peak_allocated_bytes"]
            result["peak_mem_kind"] = "cuda_max_allocated"
        else:
            result["peak_mem_bytes"] = rss
            result["peak_mem_kind"] = "peak_rss"
        result["peak_mem_gib"] = result["peak_mem_bytes"] / 2**30
        result["model_flops_per_step"] = flops
        result["model_flops_split"] = flops_split
        result["model_tflops_per_s"] = flops / (ms / 1000) / 1e12
        result["peak_tflops"] = peak_tflops or None
        result["mfu"] = flops / (ms / 1000) / (peak_tflops * 1e12) if peak_tflops else None
        result["load_average"] = list(os.getloadavg())

        print(f"bench_hf {mode} {args.shape} {args.task} {dtype_name} {args.batch}x{args.length} on {device} ({name}): "
              f"{ms:.1f} ms/step, {result['tokens_per_s']:.0f} tokens/s, peak {result['peak_mem_gib']:.2f} GiB "
              f"({result['peak_mem_kind']}), {result['model_tflops_per_s']:.2f} model TFLOP/s"
              + (f", MFU {100 * result['mfu']:.1f}%" if result["mfu"] else "") + f"; warm-up {warmup_s:.1f} s", flush=True)
        path = args.json or (os.path.join(args.out_dir, f"hf_{mode}.json") if args.out_dir else None)
        if path:
            with open(path + ".tmp", "w") as f:
                json.dump(result, f, indent=2)
                f.write("\n")
            os.replace(path + ".tmp", path)
        del optimizer
    return 0


if __name__ == "__main__":
    sys.exit(main())
