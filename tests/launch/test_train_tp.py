"""ls_train with tensor parallelism end to end, on the quickstart's tiny model (4 heads, 2 KV heads,
FFN 172) and data, LoRA on all seven projections: `mpirun -np 2` at parallel.tp=2 and `mpirun -np 4`
at dp 2 x tp 2 give the losses, gradient norms (clipping included) and final adapter of one
process; the state of a tp=2 run resumes to the same losses; resuming at another tp is refused."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

from numpy import abs as np_abs
from safetensors.numpy import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_train_e2e import ASSETS, BIN, SOURCE, train_losses, write_config  # noqa: E402

ALL_PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
# No dropout here: these runs check the tp numerics alone (dropout masks are keyed and the same at
# any layout; test_train_invariance.py compares layouts with dropout on).
# The clipping threshold sits below the gradient norms of these steps, so clipping is exercised.
COMPARABLE = {"lora": {"dropout": 0.0, "targets": ALL_PROJECTIONS}, "task": {"head_dropout": 0.0},
              "train": {"shuffle": False, "max_grad_norm": 0.5}}


def setUpModule():
    subprocess.run([sys.executable, os.path.join(SOURCE, "tools", "make_quickstart_assets.py"), ASSETS],
                   check=True, capture_output=True)


def train_records(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip() and json.loads(line)["split"] == "train"]


def mpirun(np, *args, check=True):
    return subprocess.run([shutil.which("mpirun"), "-np", str(np), os.path.join(BIN, "ls_train"), *args],
                          capture_output=True, text=True, check=check)


class TensorParallelEndToEnd(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ls_tp_e2e_")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def config(self, name, **sections):
        d = os.path.join(self.dir, name)
        os.makedirs(d)
        return write_config(d, **sections), os.path.join(d, "run")

    def test_tensor_parallel_runs_equal_one_process(self):
        cfg, reference = self.config("reference", **COMPARABLE)
        subprocess.run([os.path.join(BIN, "ls_train"), cfg], check=True, capture_output=True)
        expected = train_records(reference)
        self.assertEqual(len(expected), 12)
        self.assertTrue(any(r["grad_norm"] > 0.5 for r in expected), "the clipping threshold clips")
        theirs = load_file(os.path.join(reference, "adapter_last", "adapter_model.safetensors"))
        for np in (2, 4):
            cfg, run = self.config(f"np{np}_tp2", **COMPARABLE)
            mpirun(np, cfg, "--set", "parallel.tp=2")
            got = train_records(run)
            self.assertEqual([r["step"] for r in got], [r["step"] for r in expected])
            for mine, ref in zip(got, expected):
                for key in ("loss", "grad_norm"):
                    self.assertAlmostEqual(mine[key], ref[key], delta=1e-5 * max(1.0, abs(ref[key])),
                                           msg=f"{key} at step {ref['step']}, np={np} tp=2")
            # The adapter is saved unsharded: PEFT's layout, the same tensors as one process (within
            # float32 rounding, which Adam's division by sqrt(v) magnifies over 12 steps; measured
            # ~6e-5 relative).
            mine = load_file(os.path.join(run, "adapter_last", "adapter_model.safetensors"))
            self.assertEqual(sorted(mine), sorted(theirs))
            for name in theirs:
                self.assertEqual(mine[name].shape, theirs[name].shape, name)
                scale = max(float(np_abs(theirs[name]).max()), 1e-6)
                self.assertLess(float(np_abs(mine[name] - theirs[name]).max()) / scale, 1e-3, f"{name} np={np}")
            with open(os.path.join(run, "adapter_last", "adapter_config.json")) as f, \
                    open(os.path.join(reference, "adapter_last", "adapter_config.json")) as g:
                self.assertEqual(json.load(f), json.load(g))
            # Each tp rank keeps its own shards of the resumable state.
            for tp_rank in (0, 1):
                for what in ("weights", "optimizer"):
                    path = os.path.join(run, "state", f"{what}.tp{tp_rank}-of-2.safetensors")
                    self.assertTrue(os.path.exists(path), path)

    def test_resume_at_tp2_reaches_the_same_losses(self):
        sections = {"lora": {"targets": ALL_PROJECTIONS}}  # dropout on: the resumed RNG must match too
        cfg, reference = self.config("reference", **sections)
        mpirun(2, cfg, "--set", "parallel.tp=2")
        expected = train_losses(reference)

        cfg, run = self.config("stopped", **sections)
        proc = subprocess.Popen([shutil.which("mpirun"), "-np", "2", os.path.join(BIN, "ls_train"), cfg,
                                 "--set", "parallel.tp=2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        metrics = os.path.join(run, "metrics.jsonl")
        deadline = time.time() + 300
        while time.time() < deadline and not (os.path.exists(metrics) and len(train_losses(run)) >= 3):
            time.sleep(0.02)
        # SIGTERM to one rank is enough: the ranks agree on stopping at the end of the step.
        ranks = [pid for pid in os.listdir("/proc") if pid.isdigit() and self.parent_of(pid) == proc.pid]
        self.assertTrue(ranks, "no rank process under mpirun")
        os.kill(int(ranks[0]), signal.SIGTERM)
        out, err = proc.communicate(timeout=300)
        self.assertGreater(proc.returncode, 0, out + err)  # the stop's exit status, not mpirun killed
        with open(os.path.join(run, "state", "trainer.json")) as f:
            state = json.load(f)
        self.assertLess(state["step"], 12, "the run finished before it could be stopped")
        self.assertEqual(state["tp"], 2)

        refused = subprocess.run([os.path.join(BIN, "ls_train"), "--resume", run, "--set", "parallel.tp=1"],
                                 capture_output=True, text=True)
        self.assertEqual(refused.returncode, 2, refused.stderr)  # a user error, not a crash
        self.assertIn("saved at tp 2", refused.stderr + refused.stdout)

        mpirun(2, "--resume", run)
        self.assertEqual(train_losses(run), expected)

    @staticmethod
    def parent_of(pid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                return int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            return None


if __name__ == "__main__":
    unittest.main()
