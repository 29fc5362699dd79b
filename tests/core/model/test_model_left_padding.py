"""Left padding (data.padding_side: left) against HF transformers + PEFT, and against each example
alone.

What left padding means here: each row's positions count from its first real token
(t - first(row), core/model/rope.h), so a left-padded row gets the positions it has alone; last-token
pooling takes the rightmost real token; per-token logits and labels sit where the ids sit. HF's plain
forward would count positions from the first pad unless it is given position_ids, so the reference
gets these positions (what HF's generate computes from the mask); its sequence head finds the last
non-pad token from input_ids and pad_token_id. float32 on CPU: 1e-4 relative on hidden states,
logits and losses, 1e-3 on gradients, as test_model_hf_parity.py; a row's logits padded on either
side match the row alone to 1e-5 in float32 and 1e-3 in bf16."""
import sys
import tempfile
import unittest
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "support"))
from model_reference import (ParityTestCase, bidirectional_hooks, bidirectional_layer_range,  # noqa: E402
                             load_file, make_batch, peft_saved_name, run_ls_forward, save_file,
                             write_checkpoint)

ACTIVATIONS, GRADIENTS = 1e-4, 1e-3
# A padded row against the row alone: the same arithmetic but for the batch's shape. f32 catches
# wrong positions or masks (1e-5). bf16 is bounded by its own rounding: some CPUs' bf16 GEMM kernels
# block (and so round) by the batch's shape, which moved right-padded rows too, by up to 1.5e-2 (2
# bf16 steps of 2^-7) on an AMD EPYC host, so the bound is 4 steps; on machines whose kernels do not
# (1e-3 held there), positions counted from the first pad were off by 4e-3 to 1e-2.
ALONE = {"f32": 1e-5, "bf16": 4 * 2**-7}

BASE = dict(vocab=97, hidden=48, inner=112, layers=2, heads=4, kv_heads=2, rope=dict(type="default"),
            layout="v5", targets=["q_proj", "v_proj", "down_proj"])
CASES = [
    dict(BASE, name="seq_causal", task="sequence", attention="causal", lengths=[9, 5, 1, 7]),
    dict(BASE, name="seq_bidirectional", task="sequence", attention="bidirectional", lengths=[4, 11, 6]),
    dict(BASE, name="tok_causal", task="token", attention="causal", lengths=[10, 3, 7]),
    dict(BASE, name="tok_bidirectional_from_layer1", task="token", attention="bidirectional:1-",
         lengths=[5, 12, 2, 8], rope=dict(type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                          original_max_position_embeddings=16), theta=500000.0),
]


def left_padded(inputs):
    """The right-padded batch of make_batch with every row's tokens (and token labels) moved to the
    end: what collate() makes with padding_side left."""
    out = {}
    lengths = inputs["attention_mask"].sum(1).tolist()
    width = inputs["attention_mask"].shape[1]
    for key, value in inputs.items():
        if value.dim() < 2:
            out[key] = value.clone()
            continue
        fill = -100 if key == "tok_labels" else 0
        shifted = torch.full_like(value, fill)
        for row, n in enumerate(lengths):
            shifted[row, width - n:] = value[row, :n]
        out[key] = shifted
    return out


def positions(mask):
    """Each token's distance from its row's first real token (core/model/rope.h: rope_positions)."""
    first = mask.ne(0).int().argmax(1, keepdim=True)
    return torch.arange(mask.shape[1]).unsqueeze(0) - first


def reference(case, model_dir, adapter_dir, inputs, num_labels):
    """HF + PEFT on a padded batch, given the positions ls-train uses: hidden, logits, loss and
    every trainable gradient."""
    import peft
    from transformers import LlamaForSequenceClassification, LlamaForTokenClassification

    cls = LlamaForSequenceClassification if case["task"] == "sequence" else LlamaForTokenClassification
    base = cls.from_pretrained(model_dir, num_labels=num_labels, attn_implementation="eager",
                               dtype=torch.float32)
    model = peft.PeftModel.from_pretrained(base, adapter_dir, is_trainable=True)
    model.eval()
    llama = model.base_model.model.model
    begin, end = bidirectional_layer_range(case["attention"], case["layers"])
    handles = []
    if begin is not None:
        handles = bidirectional_hooks(llama, inputs, begin)
        for h in handles[end - begin:]:
            h.remove()
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    position_ids = positions(mask)
    hidden = llama(input_ids=ids, attention_mask=mask, position_ids=position_ids).last_hidden_state
    labels = inputs["seq_labels"] if case["task"] == "sequence" else inputs["tok_labels"]
    out = model(input_ids=ids, attention_mask=mask, position_ids=position_ids, labels=labels)
    out.loss.backward()
    grads = {peft_saved_name(n): p.grad for n, p in model.named_parameters() if p.requires_grad}
    for h in handles:
        h.remove()
    return hidden.detach(), out.logits.detach(), out.loss.detach(), grads


def ls_outputs(tmp, case, model_dir, inputs, tag, extra=()):
    save_file(inputs, tmp / f"{tag}_in.safetensors")
    run_ls_forward("--model", model_dir, "--adapter", tmp / "adapter", "--task", case["task"],
                   "--attention", case["attention"], "--inputs", tmp / f"{tag}_in.safetensors",
                   "--out", tmp / f"{tag}_out.safetensors", *extra)
    return load_file(tmp / f"{tag}_out.safetensors")


def write_model_and_adapter(tmp, case, seed, num_labels):
    import peft
    from transformers import LlamaForSequenceClassification, LlamaForTokenClassification

    model_dir = write_checkpoint(tmp / "model", case, seed)
    cls = LlamaForSequenceClassification if case["task"] == "sequence" else LlamaForTokenClassification
    torch.manual_seed(seed + 1)
    base = cls.from_pretrained(model_dir, num_labels=num_labels, dtype=torch.float32)
    lora = peft.LoraConfig(task_type="SEQ_CLS" if case["task"] == "sequence" else "TOKEN_CLS",
                           r=4, lora_alpha=8, lora_dropout=0.0, target_modules=case["targets"],
                           init_lora_weights=False)
    peft.get_peft_model(base, lora).save_pretrained(tmp / "adapter")
    return model_dir


def real_rows(logits, mask, task):
    """Per example: its logits (sequence) or its real tokens' logits (token), in order."""
    if task == "sequence":
        return [logits[row] for row in range(logits.shape[0])]
    return [logits[row][mask[row].bool()] for row in range(logits.shape[0])]


class LeftPadding(ParityTestCase):
    worst = {"hidden": 0.0, "logits": 0.0, "loss": 0.0, "gradient": 0.0, "alone f32": 0.0, "alone bf16": 0.0}

    def run_case(self, case, seed):
        num_labels = 3 if case["task"] == "sequence" else 5
        name = case["name"]
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            model_dir = write_model_and_adapter(tmp, case, seed, num_labels)
            right = make_batch(case["vocab"], case["lengths"], seed + 2, num_labels, case["task"])
            left = left_padded(right)
            self.assertEqual(left["attention_mask"][:, -1].tolist(), [1] * len(case["lengths"]))

            ours = ls_outputs(tmp, case, model_dir, left, "left", ["--labels", "--grads"])
            expected = reference(case, model_dir, tmp / "adapter", left, num_labels)
            self.check_against_reference(name, case["task"], ours, expected, left["attention_mask"],
                                         ACTIVATIONS, GRADIENTS)

            # Either side of padding gives each example the logits it has alone, in float32 and
            # in bf16 (where positions counted from the first pad would round RoPE differently).
            for dtype, tolerance in ALONE.items():
                dtype_args = ["--dtype", dtype]
                padded = {side: real_rows(ls_outputs(tmp, case, model_dir, batch, f"{side}_{dtype}", dtype_args)["logits"],
                                          batch["attention_mask"], case["task"])
                          for side, batch in (("left", left), ("right", right))}
                for row, n in enumerate(case["lengths"]):
                    alone_inputs = {k: v[row:row + 1, :n] if v.dim() == 2 else v[row:row + 1]
                                    for k, v in right.items()}
                    alone = ls_outputs(tmp, case, model_dir, alone_inputs, f"alone{row}_{dtype}", dtype_args)["logits"][0]
                    for side, rows in padded.items():
                        self.check(f"alone {dtype}", f"{name}: row {row} ({n} tokens) padded {side} vs alone, {dtype}",
                                   rows[row], alone, tolerance)

    def test_left_padded_batches_match_hf_and_each_example_alone(self):
        for i, case in enumerate(CASES):
            with self.subTest(case["name"]):
                self.run_case(case, seed=3000 + 31 * i)


if __name__ == "__main__":
    unittest.main(verbosity=2)
