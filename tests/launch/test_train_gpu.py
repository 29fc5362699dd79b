"""ls_train and ls_predict on a GPU (issue #28; labelled cuda: reported skipped where no GPU is
visible): a bf16 run on the GPU follows the CPU f32 run's losses within bf16's tolerance, a run
SIGKILLed on the GPU and resumed reaches the uninterrupted GPU run's losses bit for bit, and
ls_predict --device cuda gives the CPU's probabilities within 1e-2."""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

import torch

from test_train_e2e import (ASSETS, BIN, ls_train, setUpModule, sigkill_after_saved_step,  # noqa: F401
                            train_losses, write_config)

DATA = f"{ASSETS}/data"


@unittest.skipUnless(torch.cuda.is_available(), "no CUDA device")
class OnTheGpu(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ls_gpu_")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def config(self, name, **sections):
        d = os.path.join(self.dir, name)
        os.makedirs(d)
        base = {"model": {"attention": "causal"}, "task": {"type": "sequence", "labels": ["negative", "positive"]},
                "lora": {"dropout": 0.0},
                "data": {"train": f"{DATA}/sentiment_train.jsonl", "validation": f"{DATA}/sentiment_validation.jsonl"},
                "train": {"max_steps": 12, "eval_every": "12", "shuffle": False}}
        for section, values in sections.items():
            base[section] = {**base.get(section, {}), **values}
        return write_config(d, **base), os.path.join(d, "run")

    def test_bf16_on_the_gpu_follows_the_cpu_f32_run(self):
        cpu_cfg, cpu_run = self.config("cpu", model={"device": "cpu", "dtype": "f32"})
        gpu_cfg, gpu_run = self.config("gpu", model={"device": "cuda", "dtype": "bf16"})
        ls_train(cpu_cfg)
        ls_train(gpu_cfg)
        cpu, gpu = train_losses(cpu_run), train_losses(gpu_run)
        self.assertEqual([s for s, _ in cpu], [s for s, _ in gpu])
        for (step, a), (_, b) in zip(gpu, cpu):
            self.assertLess(abs(a - b) / max(abs(b), 1e-3), 5e-2, f"step {step}: bf16 {a} vs f32 {b}")

    def test_a_resumed_gpu_run_is_bit_identical(self):
        cfg, run = self.config("straight", model={"device": "cuda"}, output={"state_every": 1})
        ls_train(cfg)
        expected = train_losses(run)
        cfg, run = self.config("killed", model={"device": "cuda"}, output={"state_every": 1})
        self.assertLess(sigkill_after_saved_step(cfg, run, 4), 12, "the run finished before it could be killed")
        ls_train("--resume", run)
        self.assertEqual(train_losses(run), expected)

    def test_predict_on_the_gpu_equals_the_cpu(self):
        cfg, run = self.config("predict", model={"device": "cpu"})
        ls_train(cfg)
        out = {}
        for device in ("cpu", "cuda"):
            path = os.path.join(self.dir, f"{device}.jsonl")
            subprocess.run([os.path.join(BIN, "ls_predict"), run, f"{DATA}/sentiment_validation.jsonl", "--out", path,
                            "--device", device], check=True, capture_output=True, text=True)
            with open(path) as f:
                out[device] = [json.loads(line) for line in f]
        self.assertEqual(len(out["cpu"]), len(out["cuda"]))
        for a, b in zip(out["cpu"], out["cuda"]):
            for label, p in a["probabilities"].items():
                self.assertAlmostEqual(b["probabilities"][label], p, delta=1e-2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
