"""Reference-stack smoke: the Python side the parity tests compare against (HF transformers + PEFT
on torch) imports, has the pinned versions, and runs LS-LLaMA's model on CPU."""
import os
import unittest

import torch


class ReferenceEnvironment(unittest.TestCase):
    def test_torch_is_the_version_libtorch_was_built_from(self):
        self.assertTrue(torch.__version__.startswith("2.11.0"), torch.__version__)

    def test_peft_lora_on_llama_sequence_classification_runs(self):
        import peft
        import transformers
        from transformers import LlamaConfig, LlamaForSequenceClassification

        torch.manual_seed(0)
        config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                             num_attention_heads=4, num_key_value_heads=2, num_labels=3, pad_token_id=0)
        model = LlamaForSequenceClassification(config)
        lora = peft.LoraConfig(task_type="SEQ_CLS", r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
        model = peft.get_peft_model(model, lora)
        ids = torch.tensor([[1, 5, 6, 7], [1, 8, 0, 0]])
        out = model(input_ids=ids, attention_mask=(ids != 0).long(), labels=torch.tensor([0, 2]))
        self.assertEqual(tuple(out.logits.shape), (2, 3))
        self.assertTrue(torch.isfinite(out.loss))
        out.loss.backward()
        trainable = [n for n, p in model.named_parameters() if p.requires_grad]
        self.assertTrue(any("lora_A" in n for n in trainable), trainable)
        # The pinned reference stack (tools/requirements.txt), the one the golden files came from.
        with open(os.path.join(os.path.dirname(__file__), "..", "..", "tools", "requirements.txt")) as f:
            pins = dict(line.strip().split("==") for line in f if "==" in line and not line.startswith("#"))
        self.assertEqual(transformers.__version__, pins["transformers"])
        self.assertEqual(peft.__version__, pins["peft"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
