"""The LLaMA-shaped families (Mistral, Qwen2, Qwen3) through ls_forward against their own HF
classes + PEFT, on tiny random checkpoints written by <Family>ForCausalLM.save_pretrained at test
time: hidden states, logits, loss and every LoRA/head gradient, causal and bidirectional; Qwen2's
q/k/v biases (none on o_proj), Qwen3's per-head q/k RMSNorm and explicit head_dim, tied
embeddings; the adapter ls_forward re-saves reads back in PEFT with the same logits; a sliding
window shorter than the batch is refused naming the config key. float32 on CPU: 1e-4 relative on
activations and losses, 1e-3 on gradients, as in test_model_hf_parity.py."""
import json
import sys
import tempfile
import unittest
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "support"))
from model_reference import (ParityTestCase, bidirectional_hooks, bidirectional_layer_range,  # noqa: E402
                             head_class, load_file, make_batch,
                             peft_saved_name, relative_error, run_ls_forward, save_file,
                             write_checkpoint)

ACTIVATIONS, GRADIENTS = 1e-4, 1e-3
ALL_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

CASES = [
    dict(name="mistral_gqa_window_covers_batch_causal_seq", family="mistral", vocab=90, hidden=48,
         inner=96, layers=2, heads=4, kv_heads=2, rope=dict(type="default"), theta=1e6, layout="legacy",
         sliding_window=16, task="sequence", attention="causal", lengths=[9, 5, 2],
         targets=["q_proj", "v_proj", "down_proj"]),
    dict(name="mistral_null_window_bidir_tok", family="mistral", vocab=70, hidden=32, inner=64, layers=2,
         heads=4, kv_heads=4, rope=dict(type="default"), layout="v5", task="token",
         attention="bidirectional", lengths=[7, 4], targets=ALL_TARGETS),
    dict(name="qwen2_qkv_bias_tied_causal_tok", family="qwen2", vocab=80, hidden=48, inner=112, layers=2,
         heads=6, kv_heads=2, rope=dict(type="default"), theta=1e6, layout="v5", tie_word_embeddings=True,
         task="token", attention="causal", lengths=[10, 6, 3], targets=ALL_TARGETS),
    dict(name="qwen2_bidir_from_layer1_seq", family="qwen2", vocab=64, hidden=32, inner=64, layers=3,
         heads=4, kv_heads=1, rope=dict(type="linear", factor=2.0), layout="legacy", task="sequence",
         attention="bidirectional:1-", lengths=[8, 3], targets=["q_proj", "k_proj", "o_proj"]),
    dict(name="qwen3_qk_norm_head_dim_tied_causal_seq", family="qwen3", vocab=96, hidden=32, inner=80,
         layers=2, heads=4, kv_heads=2, head_dim=16, rope=dict(type="default"), theta=1e6, layout="v5",
         tie_word_embeddings=True, task="sequence", attention="causal", lengths=[9, 4, 6],
         targets=["q_proj", "k_proj", "v_proj", "up_proj"]),
    dict(name="qwen3_bias_bidir_tok", family="qwen3", vocab=60, hidden=48, inner=96, layers=2, heads=4,
         kv_heads=4, head_dim=8, attention_bias=True, rope=dict(type="default"), layout="v5", task="token",
         attention="bidirectional", lengths=[6, 6, 2], targets=ALL_TARGETS),
]


def reference(case, model_dir, adapter_dir, inputs, num_labels):
    """HF + PEFT outputs for one case: hidden, logits, loss and every trainable gradient."""
    import peft

    base = head_class(case["family"], case["task"]).from_pretrained(
        model_dir, num_labels=num_labels, attn_implementation="eager", dtype=torch.float32)
    model = peft.PeftModel.from_pretrained(base, adapter_dir, is_trainable=True)
    model.eval()
    decoder = model.base_model.model.model
    begin, end = bidirectional_layer_range(case["attention"], case["layers"])
    handles = []
    if begin is not None:
        handles = bidirectional_hooks(decoder, inputs, begin)
        for h in handles[end - begin:]:
            h.remove()
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    hidden = decoder(input_ids=ids, attention_mask=mask).last_hidden_state
    labels = inputs["seq_labels"] if case["task"] == "sequence" else inputs["tok_labels"]
    out = model(input_ids=ids, attention_mask=mask, labels=labels)
    out.loss.backward()
    grads = {peft_saved_name(n): p.grad for n, p in model.named_parameters() if p.requires_grad}
    for h in handles:
        h.remove()
    return hidden.detach(), out.logits.detach(), out.loss.detach(), grads, model


class FamilyParity(ParityTestCase):
    worst = {"hidden": 0.0, "logits": 0.0, "loss": 0.0, "gradient": 0.0, "resaved": 0.0}

    def run_case(self, case, seed):
        import peft

        num_labels = 3 if case["task"] == "sequence" else 5
        name = case["name"]
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            model_dir = write_checkpoint(tmp / "model", case, seed)
            saved = json.loads((model_dir / "config.json").read_text())
            self.assertEqual(saved["model_type"], case["family"])
            # A PEFT adapter with every tensor random (init_lora_weights=False: B is not zero).
            torch.manual_seed(seed + 1)
            base = head_class(case["family"], case["task"]).from_pretrained(
                model_dir, num_labels=num_labels, dtype=torch.float32)
            lora = peft.LoraConfig(task_type="SEQ_CLS" if case["task"] == "sequence" else "TOKEN_CLS",
                                   r=4, lora_alpha=8, lora_dropout=0.0, target_modules=case["targets"],
                                   init_lora_weights=False)
            peft.get_peft_model(base, lora).save_pretrained(tmp / "adapter")

            inputs = make_batch(case["vocab"], case["lengths"], seed + 2, num_labels, case["task"])
            save_file(inputs, tmp / "inputs.safetensors")
            run_ls_forward("--model", model_dir, "--adapter", tmp / "adapter", "--task", case["task"],
                           "--attention", case["attention"], "--inputs", tmp / "inputs.safetensors",
                           "--out", tmp / "out.safetensors", "--labels", "--grads",
                           "--save-adapter", tmp / "ours")
            ours = load_file(tmp / "out.safetensors")
            hidden, logits, loss, grads, _ = reference(case, model_dir, tmp / "adapter", inputs, num_labels)
            # Our re-saved adapter in PEFT (causal, as PEFT runs) against the original's logits.
            if case["attention"] == "causal":
                _, resaved_logits, _, _, resaved = reference(case, model_dir, tmp / "ours", inputs, num_labels)
                self.assertEqual(resaved.peft_config["default"].r, 4)

        mask = inputs["attention_mask"]
        token_mask = mask if case["task"] == "token" else None
        self.check_against_reference(name, case["task"], ours, (hidden, logits, loss, grads), mask,
                                     ACTIVATIONS, GRADIENTS)
        if case["attention"] == "causal":
            self.check("resaved", f"{name}: re-saved adapter in PEFT", resaved_logits, logits, 1e-6, token_mask)

    def test_families_match_their_hf_classes_and_peft(self):
        for i, case in enumerate(CASES):
            with self.subTest(case["name"]):
                self.run_case(case, seed=2000 + 13 * i)

    def test_qwen2_biases_and_qwen3_norms_are_the_checkpoint_tensors_they_claim(self):
        # Guards the cases above against passing vacuously: the checkpoints hold the tensors.
        with tempfile.TemporaryDirectory() as tmp:
            qwen2 = load_file(write_checkpoint(Path(tmp) / "q2", CASES[2], 1) / "model.safetensors")
            qwen3 = load_file(write_checkpoint(Path(tmp) / "q3", CASES[4], 1) / "model.safetensors")
        self.assertIn("model.layers.0.self_attn.q_proj.bias", qwen2)
        self.assertNotIn("model.layers.0.self_attn.o_proj.bias", qwen2)
        self.assertNotIn("lm_head.weight", qwen2)  # tied
        self.assertEqual(tuple(qwen3["model.layers.1.self_attn.k_norm.weight"].shape), (16,))

    def test_sliding_window_shorter_than_the_batch_is_refused_naming_the_keys(self):
        for family in ("mistral", "qwen2"):
            with self.subTest(family), tempfile.TemporaryDirectory() as tmp:
                tmp = Path(tmp)
                spec = dict(CASES[0], family=family, sliding_window=4)
                model_dir = write_checkpoint(tmp / "model", spec, 7)
                inputs = make_batch(spec["vocab"], [6, 3], 8, 3, "sequence")
                save_file(inputs, tmp / "inputs.safetensors")
                result = run_ls_forward("--model", model_dir, "--task", "sequence", "--num-labels", "3",
                                        "--inputs", tmp / "inputs.safetensors", "--out", tmp / "out.safetensors",
                                        check=False)
                self.assertEqual(result.returncode, 2, result.stderr)  # a refusal, not a crash
                self.assertIn("'sliding_window'", result.stderr)
                self.assertIn("data.max_length", result.stderr)
                # A batch the window covers runs.
                short = make_batch(spec["vocab"], [4, 2], 8, 3, "sequence")
                save_file(short, tmp / "short.safetensors")
                run_ls_forward("--model", model_dir, "--task", "sequence", "--num-labels", "3",
                               "--inputs", tmp / "short.safetensors", "--out", tmp / "out.safetensors")


if __name__ == "__main__":
    unittest.main(verbosity=2)
