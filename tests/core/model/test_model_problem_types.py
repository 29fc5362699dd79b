"""The problem types beyond single-label against the reference stack, on fresh random tiny models
(float32, CPU): multi-label (BCE with logits) and regression (MSE) against HF transformers' own
losses (LlamaForSequenceClassification with problem_type, through PEFT), and class-weighted
cross-entropy (sequence and token), label smoothing and BCE pos_weight against torch.nn.functional
on the HF logits. Losses to 1e-4 relative, every LoRA/head gradient to 1e-3. An adapter saved by
ls_forward carries head_config.json, whose keys rebuild the same head in HF (and in ls_forward)."""
import json
import sys
import tempfile
import unittest
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "support"))
from model_reference import (ParityTestCase, load_file, make_batch, peft_saved_name, relative_error,  # noqa: E402
                             run_ls_forward, save_file, write_checkpoint)

ACTIVATIONS, GRADIENTS = 1e-4, 1e-3
MODEL = dict(vocab=89, hidden=48, inner=96, layers=2, heads=4, kv_heads=2, rope=dict(type="default"),
             layout="v5")

CASES = [
    dict(name="multi_label_hf", task="sequence", problem="multi_label", labels=4),
    dict(name="regression_hf", task="sequence", problem="regression", labels=1),
    dict(name="multi_label_pos_weight", task="sequence", problem="multi_label", labels=3,
         class_weights=[0.5, 2.0, 4.0]),
    dict(name="single_label_weighted_smoothed", task="sequence", problem="single_label", labels=3,
         class_weights=[1.0, 3.0, 0.25], label_smoothing=0.1),
    dict(name="single_label_smoothed", task="sequence", problem="single_label", labels=5, label_smoothing=0.2),
    dict(name="token_weighted", task="token", problem="single_label", labels=4,
         class_weights=[0.1, 1.0, 2.0, 5.0]),
    dict(name="token_weighted_smoothed", task="token", problem="single_label", labels=3,
         class_weights=[0.2, 1.5, 3.0], label_smoothing=0.05),
]
HF_PROBLEM = {"single_label": "single_label_classification", "multi_label": "multi_label_classification",
              "regression": "regression"}


def labels_for(case, batch, seed):
    g = torch.Generator().manual_seed(seed)
    rows = batch["input_ids"].shape[0]
    if case["problem"] == "multi_label":
        return (torch.rand(rows, case["labels"], generator=g) < 0.4).float()
    if case["problem"] == "regression":
        return torch.randn(rows, generator=g) * 2 + 1
    return batch["seq_labels"] if case["task"] == "sequence" else batch["tok_labels"]


def reference_loss(case, out, labels):
    """The loss as HF computes it, or as torch.nn.functional computes the variants HF lacks."""
    weights = torch.tensor(case["class_weights"]) if "class_weights" in case else None
    smoothing = case.get("label_smoothing", 0.0)
    if weights is None and smoothing == 0.0:
        return out.loss
    logits = out.logits
    if case["problem"] == "multi_label":
        return F.binary_cross_entropy_with_logits(logits, labels, pos_weight=weights)
    return F.cross_entropy(logits.reshape(-1, case["labels"]), labels.reshape(-1), weight=weights,
                           ignore_index=-100, label_smoothing=smoothing)


class ProblemTypeParity(ParityTestCase):
    worst = {"logits": 0.0, "loss": 0.0, "gradient": 0.0}
    against = "HF+PEFT / torch"

    def run_case(self, case, seed):
        import peft
        from transformers import LlamaForSequenceClassification, LlamaForTokenClassification

        cls = LlamaForSequenceClassification if case["task"] == "sequence" else LlamaForTokenClassification
        hf_args = dict(num_labels=case["labels"], dtype=torch.float32)
        if case["task"] == "sequence":
            hf_args["problem_type"] = HF_PROBLEM[case["problem"]]
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            model_dir = write_checkpoint(tmp / "model", MODEL, seed)
            torch.manual_seed(seed + 1)
            base = cls.from_pretrained(model_dir, **hf_args)
            lora = peft.LoraConfig(task_type="SEQ_CLS" if case["task"] == "sequence" else "TOKEN_CLS", r=4,
                                   lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj"],
                                   init_lora_weights=False)
            peft.get_peft_model(base, lora).save_pretrained(tmp / "adapter")

            batch = make_batch(MODEL["vocab"], [9, 4, 7, 1], seed + 2, max(case["labels"], 2), case["task"])
            labels = labels_for(case, batch, seed + 3)
            key = "seq_labels" if case["task"] == "sequence" else "tok_labels"
            inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"], key: labels}
            save_file(inputs, tmp / "inputs.safetensors")
            args = ["--model", model_dir, "--adapter", tmp / "adapter", "--task", case["task"],
                    "--problem-type", case["problem"], "--inputs", tmp / "inputs.safetensors",
                    "--out", tmp / "out.safetensors", "--labels", "--grads"]
            if "class_weights" in case:
                args += ["--class-weights", ",".join(map(str, case["class_weights"]))]
            if case.get("label_smoothing"):
                args += ["--label-smoothing", str(case["label_smoothing"])]
            run_ls_forward(*args)
            ours = load_file(tmp / "out.safetensors")

            base = cls.from_pretrained(model_dir, attn_implementation="eager", **hf_args)
            model = peft.PeftModel.from_pretrained(base, tmp / "adapter", is_trainable=True)
            model.eval()
            out = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], labels=labels)
            loss = reference_loss(case, out, labels)
            loss.backward()
            grads = {peft_saved_name(n): p.grad for n, p in model.named_parameters() if p.requires_grad}

        name = case["name"]
        token_mask = inputs["attention_mask"] if case["task"] == "token" else None
        self.check("logits", f"{name}: logits", ours["logits"], out.logits.detach(), ACTIVATIONS, token_mask)
        self.check("loss", f"{name}: loss", ours["loss"], loss.detach(), ACTIVATIONS)
        ours_grads = {k: v for k, v in ours.items() if k.startswith("base_model.")}
        self.assertEqual(sorted(ours_grads), sorted(grads), f"{name}: trainable tensors")
        for key, grad in grads.items():
            self.check("gradient", f"{name}: grad {key}", ours_grads[key], grad, GRADIENTS)

    def test_losses_and_gradients_match_the_reference(self):
        for i, case in enumerate(CASES):
            with self.subTest(case["name"]):
                self.run_case(case, seed=2000 + 31 * i)

    def test_saved_adapter_says_what_head_it_is(self):
        """ls_forward's adapter for a regression and a multi-label head: head_config.json names HF's
        problem_type and num_labels, and HF + PEFT built from it give ls-train's logits."""
        import peft
        from transformers import LlamaForSequenceClassification

        for problem, labels in (("regression", 1), ("multi_label", 3)):
            with self.subTest(problem), tempfile.TemporaryDirectory() as tmp:
                tmp = Path(tmp)
                model_dir = write_checkpoint(tmp / "model", MODEL, 77)
                batch = make_batch(MODEL["vocab"], [6, 3], 78, 2, "sequence")
                save_file({"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]},
                          tmp / "inputs.safetensors")
                run_ls_forward("--model", model_dir, "--task", "sequence", "--problem-type", problem,
                               "--num-labels", labels, "--lora-r", 4, "--seed", 5, "--inputs",
                               tmp / "inputs.safetensors", "--out", tmp / "out.safetensors",
                               "--save-adapter", tmp / "adapter")
                head = json.loads((tmp / "adapter" / "head_config.json").read_text())
                self.assertEqual(head["problem_type"], HF_PROBLEM[problem])
                self.assertEqual(head["num_labels"], labels)
                base = LlamaForSequenceClassification.from_pretrained(
                    model_dir, num_labels=head["num_labels"], problem_type=head["problem_type"],
                    attn_implementation="eager", dtype=torch.float32)
                model = peft.PeftModel.from_pretrained(base, tmp / "adapter").eval()
                with torch.no_grad():
                    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
                self.assertEqual(model.config.problem_type, HF_PROBLEM[problem])
                ours = load_file(tmp / "out.safetensors")["logits"]
                self.check("logits", f"{problem}: adapter logits in HF", ours, logits, ACTIVATIONS)
                # Loaded back without --problem-type: head_config.json says what the head is.
                run_ls_forward("--model", model_dir, "--adapter", tmp / "adapter", "--task", "sequence",
                               "--inputs", tmp / "inputs.safetensors", "--out", tmp / "again.safetensors")
                self.check("logits", f"{problem}: adapter reloaded", load_file(tmp / "again.safetensors")["logits"],
                           ours, ACTIVATIONS)


if __name__ == "__main__":
    unittest.main(verbosity=2)
