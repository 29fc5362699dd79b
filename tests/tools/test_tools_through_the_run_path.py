"""ls_forward and ls_bench build the model through the run path with --config/--set, as ls_train
does: ls_forward --config gives exactly the tensors of the flags that describe the same model
(logits, loss, every gradient), --set reaches the model, a config without a model directory is one
line naming model.path, and --config excludes the model flags; ls_bench --config times the
config's model (its LoRA rank, batch and length) and its bench-only flags still apply."""
import json
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
from model_reference import (load_file, make_batch, run_ls_forward, save_file,  # noqa: E402
                             write_checkpoint)

import os  # noqa: E402

BIN = Path(os.environ.get("LS_BUILD_DIR", "build")) / "bin"
SPEC = dict(vocab=64, hidden=32, inner=64, layers=2, heads=4, kv_heads=2, rope=dict(type="default"),
            layout="v5")


class ToolsThroughTheRunPath(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dir = Path(cls.tmp.name)
        cls.model = write_checkpoint(cls.dir / "model", SPEC, 3)
        save_file(make_batch(SPEC["vocab"], [7, 4, 2], 11, 3, "sequence"), cls.dir / "batch.safetensors")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def write_config(self, name, extra=""):
        path = self.dir / name
        path.write_text(
            f"model: {{path: {self.model}, attention: bidirectional, bidirectional_from_layer: 1}}\n"
            "task: {labels: [a, b, c], pooling: mean}\n"
            "lora: {r: 4, alpha: 16, targets: [q_proj, v_proj, down_proj]}\n"
            "data: {train: unused.jsonl}\n"
            "train: {seed: 5}\n" + extra)
        return path

    def forward(self, out, *args):
        run_ls_forward(*args, "--inputs", self.dir / "batch.safetensors", "--out", self.dir / out,
                       "--labels", "--grads")
        return load_file(self.dir / out)

    def test_forward_config_gives_the_tensors_of_the_equivalent_flags(self):
        by_config = self.forward("config.safetensors", "--config", self.write_config("run.yaml"))
        by_flags = self.forward("flags.safetensors", "--model", self.model, "--task", "sequence",
                                "--num-labels", 3, "--attention", "bidirectional:1-", "--pooling", "mean",
                                "--lora-r", 4, "--lora-alpha", 16,
                                "--lora-targets", "q_proj,v_proj,down_proj", "--seed", 5)
        self.assertEqual(sorted(by_config), sorted(by_flags))
        self.assertGreater(len(by_config), 6)  # hidden, logits, loss and the gradients
        for name in by_config:
            torch.testing.assert_close(by_config[name], by_flags[name], rtol=0, atol=0, msg=name)

    def test_forward_set_reaches_the_model(self):
        base = self.forward("base.safetensors", "--config", self.write_config("run.yaml"))
        causal = self.forward("causal.safetensors", "--config", self.write_config("run.yaml"),
                              "--set", "model.attention=causal")
        self.assertFalse(torch.equal(base["logits"], causal["logits"]))

    def test_forward_config_errors_are_one_line(self):
        bad = self.dir / "bad.yaml"
        bad.write_text("model: {path: /nonexistent/model}\ndata: {train: t.jsonl}\n")
        result = run_ls_forward("--config", bad, "--inputs", self.dir / "batch.safetensors",
                                "--out", self.dir / "x.safetensors", check=False)
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertEqual(len(result.stderr.strip().splitlines()), 1, result.stderr)
        self.assertIn("model.path", result.stderr)
        both = run_ls_forward("--config", self.write_config("run.yaml"), "--model", self.model,
                              "--inputs", self.dir / "batch.safetensors", "--out", self.dir / "x.safetensors",
                              check=False)
        self.assertEqual(both.returncode, 2, both.stderr)
        self.assertIn("--model", both.stderr)
        self.assertFalse((self.dir / "x.safetensors").exists())

    def test_bench_config_times_the_configs_model(self):
        out = self.dir / "bench.json"
        result = subprocess.run(
            [str(BIN / "ls_bench"), "--config", str(self.write_config("run.yaml")), "--set", "lora.r=6",
             "--length", "12", "--warmup", "0", "--steps", "1", "--threads", "1", "--json", str(out), "-q"],
            capture_output=True, text=True, timeout=600)
        self.assertEqual(result.returncode, 0, result.stderr)
        bench = json.loads(out.read_text())
        self.assertEqual(bench["lora"]["r"], 6)
        self.assertEqual(bench["lora"]["targets"], ["q_proj", "v_proj", "down_proj"])
        self.assertEqual(bench["length"], 12)  # the flag, over data.max_length
        self.assertEqual(bench["batch"], 8)  # train.batch_size: the config's
        self.assertEqual(bench["num_labels"], 3)
        self.assertEqual(bench["config"]["layers"], 2)
        self.assertGreater(bench["ms_per_step"], 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
