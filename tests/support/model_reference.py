"""Shared by the test_model_*.py tests: random tiny LLaMA-family checkpoints written the way users get
them, HF transformers + PEFT references computed on them at test time (float32, CPU, eager
attention), and a runner for ls_forward."""
import json
import os
import subprocess
import unittest
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

# The reference stack's load reports and progress bars would drown the test output.
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
import transformers  # noqa: E402

transformers.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()

BUILD_DIR = Path(os.environ.get("LS_BUILD_DIR", "build"))
LS_FORWARD = BUILD_DIR / "bin" / "ls_forward"


def rope_config_entries(rope, layout, theta):
    """config.json keys for a rope spec {"type": ..., params} in the legacy or transformers-5 layout."""
    params = {k: v for k, v in rope.items() if k != "type"}
    if layout == "v5":
        return {"rope_parameters": {"rope_type": rope["type"], "rope_theta": theta, **params}}
    entries = {"rope_theta": theta}
    if rope["type"] != "default":
        # LLaMA-2-era files say "type", LLaMA-3.1 files "rope_type": use both spellings.
        key = "type" if rope["type"] == "linear" else "rope_type"
        entries["rope_scaling"] = {key: rope["type"], **params}
    return entries


def causal_lm_class(family):
    """The transformers config and CausalLM classes of a model family (llama, mistral, qwen2, qwen3)."""
    import transformers as tf
    prefix = {"llama": "Llama", "mistral": "Mistral", "qwen2": "Qwen2", "qwen3": "Qwen3"}[family]
    return getattr(tf, prefix + "Config"), getattr(tf, prefix + "ForCausalLM")


def head_class(family, task):
    """<Family>ForSequenceClassification or <Family>ForTokenClassification."""
    import transformers as tf
    prefix = {"llama": "Llama", "mistral": "Mistral", "qwen2": "Qwen2", "qwen3": "Qwen3"}[family]
    return getattr(tf, prefix + ("ForSequenceClassification" if task == "sequence" else "ForTokenClassification"))


def write_checkpoint(directory, spec, seed):
    """A random <family>ForCausalLM (spec["family"], LLaMA by default) saved with save_pretrained,
    its config.json rewritten in the requested layout. Returns the directory."""
    family = spec.get("family", "llama")
    config_class, model_class = causal_lm_class(family)
    extra = {}  # the keys only some families take
    if family in ("llama", "qwen3"):
        extra["attention_bias"] = spec.get("attention_bias", False)
    if family == "llama":
        extra["mlp_bias"] = spec.get("mlp_bias", False)
    if family == "mistral":
        extra["sliding_window"] = spec.get("sliding_window")
    if family in ("qwen2", "qwen3"):
        extra["use_sliding_window"] = spec.get("sliding_window") is not None
        extra["sliding_window"] = spec.get("sliding_window")
        extra["max_window_layers"] = 0
    if family == "qwen3" or spec.get("head_dim") is not None:
        extra["head_dim"] = spec.get("head_dim") or spec["hidden"] // spec["heads"]

    torch.manual_seed(seed)
    config = config_class(
        vocab_size=spec["vocab"], hidden_size=spec["hidden"], intermediate_size=spec["inner"],
        num_hidden_layers=spec["layers"], num_attention_heads=spec["heads"],
        num_key_value_heads=spec["kv_heads"],
        rms_norm_eps=1e-6, max_position_embeddings=128, pad_token_id=0, bos_token_id=1,
        eos_token_id=2, tie_word_embeddings=spec.get("tie_word_embeddings", False),
        **extra, **rope_config_entries(spec["rope"], "v5", spec.get("theta", 10000.0)))
    model = model_class(config)
    with torch.no_grad():  # RMSNorm weights away from 1, biases away from 0
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.add_(0.1 * torch.randn_like(p))
            elif name.endswith(".bias"):
                p.normal_(0, 0.02)
    model.save_pretrained(directory, safe_serialization=True)
    path = Path(directory) / "config.json"
    saved = json.loads(path.read_text())
    for key in ("rope_parameters", "rope_scaling", "rope_theta"):
        saved.pop(key, None)
    if spec["layout"] == "legacy":
        saved.pop("head_dim", None)
    saved.update(rope_config_entries(spec["rope"], spec["layout"], spec.get("theta", 10000.0)))
    path.write_text(json.dumps(saved, indent=2))
    return Path(directory)


def make_batch(vocab, lengths, seed, num_labels, task):
    g = torch.Generator().manual_seed(seed)
    batch, length = len(lengths), max(lengths)
    ids = torch.randint(3, vocab, (batch, length), generator=g)
    ids[:, 0] = 1  # BOS
    mask = torch.zeros(batch, length, dtype=torch.long)
    for row, n in enumerate(lengths):
        mask[row, :n] = 1
    ids = ids * mask  # right padding with pad id 0
    inputs = {"input_ids": ids, "attention_mask": mask}
    if task == "sequence":
        inputs["seq_labels"] = torch.randint(0, num_labels, (batch,), generator=g)
    else:
        labels = torch.randint(0, num_labels, (batch, length), generator=g)
        labels[mask == 0] = -100
        labels[:, 0] = -100  # BOS carries no label, as the aligner does
        inputs["tok_labels"] = labels
    return inputs


def bidirectional_hooks(model, inputs, first_layer, attend_to_padding=False):
    """Makes decoder layers >= first_layer of an HF LlamaModel see the whole sequence (padding keys
    masked unless attend_to_padding), by replacing the mask HF hands them. Returns the handles."""
    keys = inputs["attention_mask"].bool()[:, None, None, :]
    length = keys.shape[-1]
    allowed = torch.ones_like(keys).expand(-1, 1, length, length) if attend_to_padding else keys.expand(-1, 1, length, length)

    def hook(module, args, kwargs):
        current = kwargs.get("attention_mask")
        if current is None or current.dtype == torch.bool:
            kwargs["attention_mask"] = allowed
        else:  # additive float mask
            kwargs["attention_mask"] = torch.zeros(allowed.shape, dtype=current.dtype).masked_fill(
                ~allowed, torch.finfo(current.dtype).min)
        return args, kwargs

    return [layer.register_forward_pre_hook(hook, with_kwargs=True)
            for i, layer in enumerate(model.layers) if i >= first_layer]


def peft_saved_name(name):
    """PEFT's in-memory parameter name -> the name it saves under."""
    return name.replace(".default", "").replace("modules_to_save.", "")


def run_ls_forward(*args, check=True):
    result = subprocess.run([str(LS_FORWARD), *map(str, args)], capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"ls_forward failed ({result.returncode}): {result.stderr}")
    return result


def relative_error(actual, expected, mask=None):
    actual, expected = actual.double(), expected.double().reshape(actual.shape)
    if mask is not None:
        keep = mask.bool()
        actual, expected = actual[keep], expected[keep]
    scale = expected.abs().max().item()
    return (actual - expected).abs().max().item() / (scale if scale > 0 else 1.0)



def bidirectional_layer_range(attention, layers):
    """(first, end) of the bidirectional layers of an ls_forward --attention spec; (None, None) for
    causal."""
    if attention == "causal":
        return None, None
    if attention == "bidirectional":
        return 0, layers
    first, last = attention.split(":")[1].split("-")
    return int(first), (int(last) + 1 if last else layers)


class ParityTestCase(unittest.TestCase):
    """Relative-error checks against the reference that also record the worst error of each kind,
    printed once per class. A subclass sets `worst` to its own {kind: 0.0} dict."""
    worst = {}
    against = "HF+PEFT"

    @classmethod
    def tearDownClass(cls):
        print(f"worst relative errors vs {cls.against}:", {k: f"{v:.3g}" for k, v in cls.worst.items()})

    def check(self, kind, what, actual, expected, tolerance, mask=None):
        error = relative_error(actual, expected, mask)
        self.worst[kind] = max(self.worst[kind], error)
        self.assertLessEqual(error, tolerance, what)

    def check_against_reference(self, name, task, ours, reference_outputs, mask, activations=1e-4, gradients=1e-3):
        """ls_forward's hidden states, logits, loss and every trainable gradient (its PEFT names) against
        the reference's (hidden, logits, loss, grads); token logits compared on real tokens only."""
        hidden, logits, loss, grads = reference_outputs
        self.check("hidden", f"{name}: hidden", ours["hidden"], hidden, activations, mask)
        token_mask = mask if task == "token" else None
        self.check("logits", f"{name}: logits", ours["logits"], logits, activations, token_mask)
        self.check("loss", f"{name}: loss", ours["loss"], loss, activations)
        ours_grads = {k: v for k, v in ours.items() if k.startswith("base_model.")}
        self.assertEqual(sorted(ours_grads), sorted(grads), f"{name}: trainable tensors and their PEFT names")
        for key, grad in grads.items():
            self.check("gradient", f"{name}: grad {key}", ours_grads[key], grad, gradients)
