"""ls_predict against HF transformers + PEFT loading the same adapter: a short causal sentiment run
on the quickstart's tiny model, then every validation example predicted by ls_predict (batched,
padded) and by LlamaForSequenceClassification + PeftModel on padded batches of 5: the class
probabilities agree to float32 precision, so ls_predict is the model HF users would get."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

import sentencepiece
import torch

os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
import transformers  # noqa: E402
from peft import PeftModel  # noqa: E402

transformers.logging.set_verbosity_error()

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_train_e2e import ASSETS, BIN, setUpModule  # noqa: E402,F401  (makes the quickstart assets)


class PredictAgainstHf(unittest.TestCase):
    def test_sequence_probabilities_equal_hf_peft_on_padded_batches(self):
        with tempfile.TemporaryDirectory() as out:
            run = os.path.join(out, "run")
            config = {
                "model": {"path": f"{ASSETS}/model", "attention": "causal"},
                "task": {"type": "sequence", "labels": ["negative", "positive"]},
                "lora": {"r": 4, "alpha": 8, "dropout": 0.1, "targets": ["q_proj", "v_proj"]},
                "data": {"train": f"{ASSETS}/data/sentiment_train.jsonl", "max_length": 32},
                "train": {"epochs": 1, "max_steps": 6, "batch_size": 8, "lr": 5e-3, "seed": 3},
                "output": {"dir": run, "tensorboard": False, "plot": False},
            }
            cfg = os.path.join(out, "cfg.yaml")
            with open(cfg, "w") as f:
                json.dump(config, f)
            subprocess.run([os.path.join(BIN, "ls_train"), cfg], check=True, capture_output=True, text=True)
            data = f"{ASSETS}/data/sentiment_validation.jsonl"
            predictions = os.path.join(out, "predictions.jsonl")
            subprocess.run([os.path.join(BIN, "ls_predict"), run, data, "--out", predictions, "--adapter", "last"],
                           check=True, capture_output=True, text=True)
            with open(predictions) as f:
                ours = [json.loads(line) for line in f if line.strip()]
            with open(data) as f:
                texts = [json.loads(line)["text"] for line in f if line.strip()]
            self.assertEqual(len(ours), len(texts))

            tokenizer = sentencepiece.SentencePieceProcessor(model_file=f"{ASSETS}/model/tokenizer.model")
            base = transformers.LlamaForSequenceClassification.from_pretrained(
                f"{ASSETS}/model", num_labels=2, pad_token_id=0, torch_dtype=torch.float32,
                attn_implementation="eager")
            model = PeftModel.from_pretrained(base, os.path.join(run, "adapter_last")).eval()
            worst, padded = 0.0, 0
            for start in range(0, len(texts), 5):
                encoded = [[tokenizer.bos_id()] + tokenizer.encode(t)[:31] for t in texts[start:start + 5]]
                length = max(len(ids) for ids in encoded)
                ids = torch.tensor([e + [0] * (length - len(e)) for e in encoded])
                mask = torch.tensor([[1] * len(e) + [0] * (length - len(e)) for e in encoded])
                padded += int((mask == 0).any())
                with torch.no_grad():
                    probs = model(input_ids=ids, attention_mask=mask).logits.softmax(-1)
                for row, record in enumerate(ours[start:start + 5]):
                    mine = torch.tensor([record["probabilities"]["negative"], record["probabilities"]["positive"]])
                    worst = max(worst, float((mine - probs[row]).abs().max()))
                    self.assertEqual(record["label"], ["negative", "positive"][int(probs[row].argmax())])
            self.assertGreater(padded, 0, "no batch was padded: the check would not cover padding")
            self.assertLess(worst, 1e-4, f"largest probability difference {worst}")


if __name__ == "__main__":
    unittest.main()
