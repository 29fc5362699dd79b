"""ls_train against the training loop users would write with the reference stack (issue #28): HF
transformers' LlamaForTokenClassification with PEFT LoRA, torch.optim.AdamW with two parameter
groups (no decay on 1-D tensors), get_linear_schedule_with_warmup and clip_grad_norm_, on the same
batches. Everything a mutant of the trainer could get wrong is set away from its default: a token
task with a head bias, lora.init_from a random PEFT adapter with lora_B != 0 and r 6 / alpha 20,
three LoRA targets, a warmup ratio, clipping below the observed gradient norm, micro-batches with
accumulation, custom betas, eps and weight decay; 10 optimizer steps. Each batch is the whole
(pre-tokenized) training split, so the batches are the same whatever the sampler's order; every
step's loss must agree to 1e-5 relative and the final adapter to 1e-4."""
import json
import math
import os
import shutil
import sys
import tempfile
import unittest

import torch
from safetensors.torch import load_file

from test_train_e2e import ASSETS, BIN, ls_train, setUpModule, train_losses  # noqa: F401

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "support"))
import model_reference  # noqa: E402,F401  (quiet transformers logging)

import transformers  # noqa: E402
from peft import LoraConfig, PeftModel, get_peft_model, get_peft_model_state_dict  # noqa: E402

LABELS = ["O", "B-PER", "B-LOC"]
TARGETS = ["q_proj", "v_proj", "down_proj"]
STEPS, BATCH, MICRO, WARMUP_RATIO = 10, 16, 8, 0.2
LR, BETAS, EPS, DECAY = 5e-3, (0.8, 0.95), 1e-6, 0.1
R, ALPHA = 6, 20


def token_model():
    config = transformers.AutoConfig.from_pretrained(f"{ASSETS}/model", num_labels=len(LABELS))
    config.classifier_dropout = 0.0  # ls-train: task.head_dropout 0
    return transformers.LlamaForTokenClassification.from_pretrained(f"{ASSETS}/model", config=config,
                                                                     attn_implementation="eager")


def examples(seed):
    """16 pre-tokenized sentences (BOS first, unlabelled), 5 to 14 ids, random tags."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(BATCH):
        n = 5 + (i * 7) % 10
        ids = [1] + torch.randint(3, 400, (n - 1,), generator=g).tolist()
        tags = [-100] + torch.randint(0, len(LABELS), (n - 1,), generator=g).tolist()
        out.append({"input_ids": ids, "tags": tags})
    return out


def padded(batch):
    length = max(len(e["input_ids"]) for e in batch)
    ids = torch.zeros(len(batch), length, dtype=torch.long)
    mask = torch.zeros(len(batch), length, dtype=torch.long)
    labels = torch.full((len(batch), length), -100, dtype=torch.long)
    for row, e in enumerate(batch):
        n = len(e["input_ids"])
        ids[row, :n] = torch.tensor(e["input_ids"])
        mask[row, :n] = 1
        labels[row, :n] = torch.tensor(e["tags"])
    return ids, mask, labels


class TrainerAgainstAReferenceLoop(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="ls_reference_loop_")
        torch.manual_seed(0)
        # A random starting adapter with lora_B != 0 and a random head with a bias, saved by PEFT.
        peft_model = get_peft_model(token_model(), LoraConfig(
            r=R, lora_alpha=ALPHA, lora_dropout=0.0, target_modules=TARGETS, modules_to_save=["score"],
            task_type="TOKEN_CLS"))
        with torch.no_grad():
            for name, p in peft_model.named_parameters():
                if "lora_B" in name or "lora_A" in name:
                    p.normal_(0, 0.05)
                elif "modules_to_save" in name:
                    p.normal_(0, 0.2)
        cls.start = os.path.join(cls.dir, "start_adapter")
        peft_model.save_pretrained(cls.start)
        cls.data = examples(seed=5)
        cls.train_file = os.path.join(cls.dir, "train.jsonl")
        with open(cls.train_file, "w") as f:
            f.writelines(json.dumps(e) + "\n" for e in cls.data)
        cls.reference_losses, cls.reference_adapter, cls.norms = cls.reference_loop(max_grad_norm=None)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def reference_loop(cls, max_grad_norm):
        """The loop a user writes with HF + PEFT + torch: returns the losses, the final adapter
        tensors (PEFT's names) and each step's gradient norm before clipping."""
        model = PeftModel.from_pretrained(token_model(), cls.start, is_trainable=True)
        model.train()
        params = [p for p in model.parameters() if p.requires_grad]
        groups = [{"params": [p for p in params if p.dim() > 1], "weight_decay": DECAY},
                  {"params": [p for p in params if p.dim() <= 1], "weight_decay": 0.0}]
        optimizer = torch.optim.AdamW(groups, lr=LR, betas=BETAS, eps=EPS)
        schedule = transformers.get_linear_schedule_with_warmup(
            optimizer, math.ceil(STEPS * WARMUP_RATIO), STEPS)
        ids, mask, labels = padded(cls.data)
        losses, norms = [], []
        for _ in range(STEPS):
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            norms.append(float(torch.nn.utils.clip_grad_norm_(params, max_grad_norm or float("inf"))))
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            losses.append(loss.item())
        return losses, {k: v.detach().clone() for k, v in get_peft_model_state_dict(model).items()}, norms

    def ls_train_run(self, name, max_grad_norm, init_from=True):
        work = os.path.join(self.dir, name)
        os.makedirs(work)
        config = {
            "model": {"path": f"{ASSETS}/model", "attention": "causal", "dtype": "f32"},
            "task": {"type": "token", "labels": LABELS, "head_dropout": 0.0},
            "lora": {"r": R, "alpha": ALPHA, "dropout": 0.0, "targets": TARGETS,
                     **({"init_from": self.start} if init_from else {})},
            "data": {"train": self.train_file, "validation": "", "tags_field": "tags", "max_length": 32,
                     "pad_id": 0},
            "train": {"epochs": STEPS, "batch_size": BATCH, "micro_batch_size": MICRO, "lr": LR,
                      "adam_beta1": BETAS[0], "adam_beta2": BETAS[1], "adam_eps": EPS, "weight_decay": DECAY,
                      "schedule": "linear", "warmup_ratio": WARMUP_RATIO, "max_grad_norm": max_grad_norm,
                      "log_every": 1, "seed": 3},
            "output": {"dir": os.path.join(work, "run"), "tensorboard": False, "plot": False},
        }
        path = os.path.join(work, "cfg.yaml")
        with open(path, "w") as f:
            json.dump(config, f)
        ls_train(path)
        return os.path.join(work, "run")

    def assertSameLosses(self, mine, reference):
        self.assertEqual([step for step, _ in mine], list(range(1, STEPS + 1)))
        for (step, got), want in zip(mine, reference):
            self.assertLess(abs(got - want) / abs(want), 1e-5, f"step {step}: {got} vs {want}")

    def assertSameAdapter(self, run, reference):
        mine = load_file(os.path.join(run, "adapter_last", "adapter_model.safetensors"))
        self.assertEqual(set(mine), set(reference))
        for name, want in reference.items():
            scale = float(want.abs().max())
            self.assertLess(float((mine[name] - want).abs().max()) / scale, 1e-4, name)

    def test_every_step_and_the_final_adapter_equal_the_reference_loop_with_clipping(self):
        # Clip below the observed norms, so clipping acts on every step.
        max_norm = min(self.norms) / 2
        losses, adapter, norms = self.reference_loop(max_grad_norm=max_norm)
        self.assertTrue(all(n > max_norm for n in norms))
        run = self.ls_train_run("clipped", max_norm)
        self.assertSameLosses(train_losses(run), losses)
        self.assertSameAdapter(run, adapter)
        with open(os.path.join(run, "adapter_last", "adapter_config.json")) as f:
            recorded = json.load(f)
        self.assertEqual((recorded["r"], recorded["lora_alpha"]), (R, ALPHA))
        self.assertEqual(sorted(recorded["target_modules"]), sorted(TARGETS))

    def test_without_clipping_too(self):
        run = self.ls_train_run("unclipped", 0)
        self.assertSameLosses(train_losses(run), self.reference_losses)
        self.assertSameAdapter(run, self.reference_adapter)

    def test_a_fresh_adapter_records_the_configured_r_and_alpha(self):
        run = self.ls_train_run("fresh", 1.0, init_from=False)
        with open(os.path.join(run, "adapter_last", "adapter_config.json")) as f:
            recorded = json.load(f)
        self.assertEqual((recorded["r"], recorded["lora_alpha"]), (R, ALPHA))


if __name__ == "__main__":
    unittest.main(verbosity=2)
