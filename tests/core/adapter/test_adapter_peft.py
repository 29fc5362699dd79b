"""Adapters written by ls-train load in Python PEFT (the pip package) and give the same logits:
one re-saved from a random PEFT adapter (so every tensor is non-trivial), one fresh from
ls_forward --lora-r (rsLoRA, chosen targets) whose config and initialisation PEFT must read back."""
import json
import math
import sys
import tempfile
import unittest
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "support"))
from model_reference import (load_file, make_batch, relative_error, run_ls_forward, save_file,  # noqa: E402
                             write_checkpoint)

SPEC = dict(vocab=90, hidden=48, inner=96, layers=2, heads=4, kv_heads=2, rope=dict(type="default"), layout="v5")


def peft_logits(model_dir, adapter_dir, task, num_labels, inputs):
    import peft
    from transformers import LlamaForSequenceClassification, LlamaForTokenClassification

    cls = LlamaForSequenceClassification if task == "sequence" else LlamaForTokenClassification
    base = cls.from_pretrained(model_dir, num_labels=num_labels, attn_implementation="eager", dtype=torch.float32)
    model = peft.PeftModel.from_pretrained(base, adapter_dir)
    model.eval()
    with torch.no_grad():
        return model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits, model


class AdapterInPeft(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)
        self.model_dir = write_checkpoint(self.dir / "model", SPEC, seed=7)

    def tearDown(self):
        self.tmp.cleanup()

    def test_resaved_adapter_gives_peft_the_same_logits(self):
        import peft
        from transformers import LlamaForTokenClassification

        torch.manual_seed(3)
        base = LlamaForTokenClassification.from_pretrained(self.model_dir, num_labels=4, dtype=torch.float32)
        config = peft.LoraConfig(task_type="TOKEN_CLS", r=6, lora_alpha=12, init_lora_weights=False,
                                 target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "down_proj"])
        peft.get_peft_model(base, config).save_pretrained(self.dir / "peft_adapter")
        inputs = make_batch(SPEC["vocab"], [10, 7, 3], seed=11, num_labels=4, task="token")
        save_file(inputs, self.dir / "inputs.safetensors")

        run_ls_forward("--model", self.model_dir, "--adapter", self.dir / "peft_adapter", "--task", "token",
                       "--attention", "bidirectional", "--inputs", self.dir / "inputs.safetensors",
                       "--out", self.dir / "out.safetensors", "--save-adapter", self.dir / "ours")
        ours = load_file(self.dir / "out.safetensors")["logits"]
        # PEFT uses causal attention, so compare the adapter with a causal ls_forward run too.
        run_ls_forward("--model", self.model_dir, "--adapter", self.dir / "ours", "--task", "token",
                       "--inputs", self.dir / "inputs.safetensors", "--out", self.dir / "causal.safetensors")
        ours_causal = load_file(self.dir / "causal.safetensors")["logits"]
        logits, model = peft_logits(self.model_dir, self.dir / "ours", "token", 4, inputs)
        mask = inputs["attention_mask"]
        self.assertLessEqual(relative_error(ours_causal, logits, mask), 1e-4)
        original, _ = peft_logits(self.model_dir, self.dir / "peft_adapter", "token", 4, inputs)
        self.assertLessEqual(relative_error(logits, original, mask), 1e-6, "re-saving changed the adapter")
        self.assertGreater(relative_error(ours, ours_causal, mask), 1e-3, "bidirectional run differs from causal")
        saved = load_file(self.dir / "ours" / "adapter_model.safetensors")
        self.assertEqual(sorted(saved), sorted(load_file(self.dir / "peft_adapter" / "adapter_model.safetensors")))
        self.assertEqual(model.peft_config["default"].r, 6)

    def test_fresh_rslora_adapter_config_and_init_read_back_in_peft(self):
        inputs = make_batch(SPEC["vocab"], [6, 4], seed=5, num_labels=3, task="sequence")
        save_file(inputs, self.dir / "inputs.safetensors")
        run_ls_forward("--model", self.model_dir, "--task", "sequence", "--num-labels", "3",
                       "--lora-r", "8", "--lora-alpha", "16", "--rslora", "--lora-targets", "q_proj,up_proj",
                       "--inputs", self.dir / "inputs.safetensors", "--out", self.dir / "out.safetensors",
                       "--save-adapter", self.dir / "fresh")
        config = json.loads((self.dir / "fresh" / "adapter_config.json").read_text())
        self.assertEqual((config["peft_type"], config["task_type"]), ("LORA", "SEQ_CLS"))
        logits, model = peft_logits(self.model_dir, self.dir / "fresh", "sequence", 3, inputs)
        self.assertLessEqual(relative_error(load_file(self.dir / "out.safetensors")["logits"], logits), 1e-4)
        loaded = model.peft_config["default"]
        self.assertEqual((loaded.r, loaded.lora_alpha, loaded.use_rslora), (8, 16, True))
        self.assertEqual(set(loaded.target_modules), {"q_proj", "up_proj"})
        q = model.base_model.model.model.layers[0].self_attn.q_proj
        self.assertAlmostEqual(q.scaling["default"], 16 / math.sqrt(8))
        self.assertEqual(q.lora_B["default"].weight.abs().max().item(), 0.0)
        bound = 1 / math.sqrt(SPEC["hidden"])  # kaiming-uniform(a=sqrt 5)
        a = q.lora_A["default"].weight
        self.assertLessEqual(a.abs().max().item(), bound)
        self.assertGreater(a.abs().max().item(), 0.5 * bound)


if __name__ == "__main__":
    unittest.main(verbosity=2)
