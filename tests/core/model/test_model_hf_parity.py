"""ls_forward against HF transformers + PEFT, computed now on fresh random configurations (so the
golden file is not the only witness): multi-head and grouped-query attention, odd lengths and
several paddings, every rope type in both config.json layouts, causal / bidirectional /
bidirectional-from-layer-k attention, sequence and token heads. float32 on CPU: 1e-4 relative on
hidden states, logits and losses, 1e-3 on every gradient."""
import sys
import tempfile
import unittest
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "support"))
from model_reference import (ParityTestCase, bidirectional_hooks, bidirectional_layer_range,  # noqa: E402
                             load_file, make_batch, peft_saved_name,
                             relative_error, run_ls_forward, save_file, write_checkpoint)

ACTIVATIONS, GRADIENTS = 1e-4, 1e-3

CASES = [
    dict(name="mha_default_v5_causal_seq", vocab=97, hidden=48, inner=112, layers=2, heads=4, kv_heads=4,
         rope=dict(type="default"), layout="v5", task="sequence", attention="causal",
         lengths=[9, 5, 1], targets=["q_proj", "v_proj"]),
    dict(name="gqa_llama3_legacy_bidir_tok", vocab=131, hidden=64, inner=144, layers=3, heads=8, kv_heads=2,
         rope=dict(type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                   original_max_position_embeddings=32),
         theta=500000.0, layout="legacy", task="token", attention="bidirectional",
         lengths=[13, 13, 6, 2], targets=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]),
    dict(name="mqa_linear_legacy_from_layer1_seq", vocab=64, hidden=32, inner=80, layers=3, heads=4, kv_heads=1,
         rope=dict(type="linear", factor=2.5), layout="legacy", task="sequence", attention="bidirectional:1-",
         lengths=[7, 3], targets=["q_proj", "k_proj", "up_proj"], layers_to_transform=[0, 2]),
    dict(name="gqa_llama3_v5_headdim_bias_rslora_tok", vocab=80, hidden=64, inner=96, layers=2, heads=4, kv_heads=2,
         head_dim=24, attention_bias=True, mlp_bias=True,
         rope=dict(type="llama3", factor=4.0, low_freq_factor=1.0, high_freq_factor=2.0,
                   original_max_position_embeddings=64),
         layout="v5", task="token", attention="causal", lengths=[11, 4, 8], rslora=True,
         targets=["q_proj", "v_proj", "down_proj"]),
    dict(name="linear_v5_bidir_layers_0_0_tok", vocab=50, hidden=32, inner=64, layers=2, heads=2, kv_heads=2,
         rope=dict(type="linear", factor=2.0), layout="v5", task="token", attention="bidirectional:0-0",
         lengths=[5, 5, 3, 1], targets=["o_proj", "gate_proj"]),
    dict(name="default_legacy_bidir_attend_to_padding_tok", vocab=60, hidden=32, inner=64, layers=2, heads=4,
         kv_heads=2, rope=dict(type="default"), theta=20000.0, layout="legacy", task="token",
         attention="bidirectional", attend_to_padding=True, lengths=[6, 2, 4], targets=["q_proj", "v_proj"]),
    dict(name="gqa_default_v5_bidir_mean_seq", vocab=70, hidden=48, inner=96, layers=2, heads=6, kv_heads=3,
         rope=dict(type="default"), layout="v5", task="sequence", attention="bidirectional", pooling="mean",
         lengths=[8, 3, 5], targets=["q_proj", "v_proj"]),
    dict(name="mha_default_v5_bidir_max_seq", vocab=70, hidden=32, inner=64, layers=2, heads=4, kv_heads=4,
         rope=dict(type="default"), layout="v5", task="sequence", attention="bidirectional", pooling="max",
         lengths=[4, 7, 2], targets=["k_proj", "up_proj"]),
]


def reference(case, model_dir, adapter_dir, inputs, num_labels):
    """HF + PEFT outputs for one case: hidden, logits, loss and every trainable gradient."""
    import peft
    from transformers import LlamaForSequenceClassification, LlamaForTokenClassification

    cls = LlamaForSequenceClassification if case["task"] == "sequence" else LlamaForTokenClassification
    base = cls.from_pretrained(model_dir, num_labels=num_labels, attn_implementation="eager",
                               dtype=torch.float32)
    model = peft.PeftModel.from_pretrained(base, adapter_dir, is_trainable=True)
    model.eval()  # no dropout anywhere, as in ls_forward
    llama = model.base_model.model.model
    begin, end = bidirectional_layer_range(case["attention"], case["layers"])
    handles = []
    if begin is not None:
        handles = bidirectional_hooks(llama, inputs, begin, case.get("attend_to_padding", False))
        for h in handles[end - begin:]:
            h.remove()
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    hidden = llama(input_ids=ids, attention_mask=mask).last_hidden_state
    pooling = case.get("pooling", "last")
    if case["task"] == "sequence" and pooling != "last":
        # HF has no mean/max pooling: pool the per-token logits over real tokens by hand.
        token_logits = model.base_model.model.score(hidden)
        real = mask.bool().unsqueeze(-1)
        if pooling == "mean":
            logits = (token_logits * real).sum(1) / real.sum(1)
        else:
            logits = token_logits.masked_fill(~real, float("-inf")).amax(1)
        loss = torch.nn.functional.cross_entropy(logits, inputs["seq_labels"])
    else:
        labels = inputs["seq_labels"] if case["task"] == "sequence" else inputs["tok_labels"]
        out = model(input_ids=ids, attention_mask=mask, labels=labels)
        logits, loss = out.logits, out.loss
    loss.backward()
    grads = {peft_saved_name(n): p.grad for n, p in model.named_parameters() if p.requires_grad}
    for h in handles:
        h.remove()
    return hidden.detach(), logits.detach(), loss.detach(), grads


class HfParity(ParityTestCase):
    worst = {"hidden": 0.0, "logits": 0.0, "loss": 0.0, "gradient": 0.0}

    def run_case(self, case, seed):
        import peft
        from transformers import LlamaForSequenceClassification, LlamaForTokenClassification

        num_labels = 3 if case["task"] == "sequence" else 5
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            model_dir = write_checkpoint(tmp / "model", case, seed)
            # A PEFT adapter with every tensor random (init_lora_weights=False: B is not zero).
            cls = LlamaForSequenceClassification if case["task"] == "sequence" else LlamaForTokenClassification
            torch.manual_seed(seed + 1)
            base = cls.from_pretrained(model_dir, num_labels=num_labels, dtype=torch.float32)
            lora = peft.LoraConfig(task_type="SEQ_CLS" if case["task"] == "sequence" else "TOKEN_CLS",
                                   r=4, lora_alpha=8, lora_dropout=0.0, target_modules=case["targets"],
                                   init_lora_weights=False, use_rslora=case.get("rslora", False),
                                   layers_to_transform=case.get("layers_to_transform"))
            peft.get_peft_model(base, lora).save_pretrained(tmp / "adapter")

            inputs = make_batch(case["vocab"], case["lengths"], seed + 2, num_labels, case["task"])
            save_file(inputs, tmp / "inputs.safetensors")
            args = ["--model", model_dir, "--adapter", tmp / "adapter", "--task", case["task"],
                    "--attention", case["attention"], "--pooling", case.get("pooling", "last"),
                    "--inputs", tmp / "inputs.safetensors", "--out", tmp / "out.safetensors", "--labels", "--grads"]
            if case.get("attend_to_padding"):
                args.append("--attend-to-padding")
            run_ls_forward(*args)
            ours = load_file(tmp / "out.safetensors")
            expected = reference(case, model_dir, tmp / "adapter", inputs, num_labels)

        self.check_against_reference(case["name"], case["task"], ours, expected, inputs["attention_mask"],
                                     ACTIVATIONS, GRADIENTS)

    def test_random_configurations_match_hf_and_peft(self):
        for i, case in enumerate(CASES):
            with self.subTest(case["name"]):
                self.run_case(case, seed=1000 + 17 * i)


if __name__ == "__main__":
    unittest.main(verbosity=2)
