"""tools/bench_compare.sh runs ls_bench (with its floor) and HF + PEFT eager on the CPU at the tiny
shape and writes the combined JSON: every field there, positive times, rates and memory, ratios
that follow from the two sides, and a model-FLOP count equal on both sides. A smoke run (two
timed steps), not a speed test."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

SOURCE = os.environ.get("LS_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("LS_BUILD_DIR", os.path.join(SOURCE, "build"))

RUN_FIELDS = ["tool", "variant", "shape", "config", "task", "batch", "length", "tokens_per_step", "lora",
              "dtype", "device", "device_name", "threads", "warmup", "steps", "ms_per_step", "ms_per_step_all",
              "tokens_per_s", "cpu_ms_per_step", "peak_mem_bytes", "peak_mem_kind", "peak_mem_gib", "peak_rss_bytes",
              "model_flops_per_step", "model_tflops_per_s", "mfu", "trainable_params", "base_params"]


class BenchCompareSmoke(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory()
        out = os.path.join(cls.dir.name, "compare.json")
        env = dict(os.environ, LS_PYTHON=sys.executable)
        cls.proc = subprocess.run(
            [os.path.join(SOURCE, "tools", "bench_compare.sh"), "--build", BUILD, "--device", "cpu",
             "--batch", "2", "--length", "16", "--warmup", "1", "--steps", "2", "--no-compile",
             "--out-dir", cls.dir.name, "--json", out],
            capture_output=True, text=True, env=env, timeout=600)
        cls.result = None
        if cls.proc.returncode == 0:
            with open(out) as f:
                cls.result = json.load(f)

    @classmethod
    def tearDownClass(cls):
        cls.dir.cleanup()

    def setUp(self):
        self.assertEqual(self.proc.returncode, 0, self.proc.stdout + self.proc.stderr)

    def test_both_sides_report_every_field_with_positive_values(self):
        for side in ("ls", "hf_eager", "hf"):
            run = self.result[side]
            for field in RUN_FIELDS:
                self.assertIn(field, run, f"{side}: {field}")
            for field in ("ms_per_step", "tokens_per_s", "cpu_ms_per_step", "peak_mem_bytes", "model_flops_per_step",
                          "model_tflops_per_s"):
                self.assertGreater(run[field], 0, f"{side}: {field}")
            self.assertEqual(len(run["ms_per_step_all"]), 2)
            self.assertEqual((run["batch"], run["length"], run["threads"]), (2, 16, 2))
            self.assertEqual(run["peak_mem_kind"], "peak_rss")
            self.assertIsNone(run["mfu"])  # no known f32 CPU peak without --peak-tflops
        self.assertEqual(self.result["ls"]["variant"], "ls")
        self.assertEqual(self.result["hf"]["variant"], "hf_eager")
        self.assertIsNone(self.result["hf_compiled"])

    def test_same_step_on_both_sides(self):
        ls, hf = self.result["ls"], self.result["hf"]
        for field in ("config", "tokens_per_step", "lora", "dtype", "task"):
            self.assertEqual(ls[field], hf[field], field)
        self.assertAlmostEqual(ls["model_flops_per_step"], hf["model_flops_per_step"], delta=1e-6 * hf["model_flops_per_step"])
        self.assertEqual(ls["trainable_params"], hf["trainable_params"])

    def test_ratios_and_floor_follow_from_the_runs(self):
        ls, hf, floor = self.result["ls"], self.result["hf"], self.result["floor"]
        self.assertAlmostEqual(self.result["ratio_tokens_per_s"], ls["tokens_per_s"] / hf["tokens_per_s"])
        self.assertAlmostEqual(self.result["ratio_peak_mem"], ls["peak_mem_bytes"] / hf["peak_mem_bytes"])
        self.assertAlmostEqual(self.result["ratio_tokens_per_cpu_s"], hf["cpu_ms_per_step"] / ls["cpu_ms_per_step"])
        for field in ("gemm_ms", "attention_ms", "ms_per_step", "tokens_per_s"):
            self.assertGreater(floor[field], 0, field)
        self.assertAlmostEqual(floor["ms_per_step"], floor["gemm_ms"] + floor["attention_ms"])
        self.assertEqual(floor["method"], "loop")
        self.assertAlmostEqual(ls["floor_ratio"], ls["ms_per_step"] / floor["ms_per_step"])
        self.assertIn("ls / best HF", self.proc.stdout)


if __name__ == "__main__":
    unittest.main()
