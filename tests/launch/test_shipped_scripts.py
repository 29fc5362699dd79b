"""What ships in configs/ and launch/ runs: every sweep spec (configs/sweep_*.yaml) dry-runs through
launch/ls_sweep with the trial count its axes and seeds give, each trial's command setting every
axis; every shell script parses (bash -n). (The run recipes, configs/*.yaml, are loaded by
tests/core/run/config_test.cpp, EveryShippedRecipeIsValid.)"""
import glob
import math
import os
import re
import subprocess
import unittest

import yaml

ROOT = os.environ.get("LS_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def axis_size(values):
    """Values an axis takes: a list, or {logspace|linspace: [from, to, count]}."""
    if isinstance(values, list):
        return len(values)
    (kind, spec), = values.items()
    if kind in ("logspace", "linspace"):
        return int(spec[2])
    raise AssertionError(f"unknown axis form {values!r}")


class ShippedSweepSpecs(unittest.TestCase):
    def test_every_sweep_spec_dry_runs_with_its_trial_count(self):
        specs = sorted(glob.glob(os.path.join(ROOT, "configs", "sweep_*.yaml")))
        self.assertGreaterEqual(len(specs), 2)
        for spec in specs:
            with self.subTest(os.path.basename(spec)):
                with open(spec) as f:
                    sweep = yaml.safe_load(f)
                expected = math.prod(axis_size(v) for v in sweep["axes"].values()) * len(sweep.get("seeds", [None]))
                result = subprocess.run([os.path.join(ROOT, "launch", "ls_sweep"), spec, "--dry-run"],
                                        capture_output=True, text=True, timeout=120)
                self.assertEqual(result.returncode, 0, result.stderr)
                trials = re.findall(r"^\s*\d+ (\S+) \[pending\]\n\s+(.*)$", result.stdout, re.M)
                self.assertEqual(len(trials), expected, result.stdout[:2000])
                self.assertEqual(len({name for name, _ in trials}), expected)  # distinct trial names
                for _, command in trials:
                    for key in sweep["axes"]:
                        self.assertIn(f"--set {key}=", command)
                    self.assertIn(os.path.join(ROOT, "configs", sweep["base"]), command)


class ShippedScripts(unittest.TestCase):
    def test_every_shell_script_parses(self):
        scripts = [os.path.join(ROOT, ".ci", "run"), os.path.join(ROOT, "launch", "ls_sweep"),
                   os.path.join(ROOT, "launch", "slurm.sbatch")]
        scripts += glob.glob(os.path.join(ROOT, "tools", "*.sh")) + glob.glob(os.path.join(ROOT, "launch", "*.sh"))
        self.assertGreaterEqual(len(scripts), 10)
        for script in scripts:
            with self.subTest(os.path.relpath(script, ROOT)):
                result = subprocess.run(["bash", "-n", script], capture_output=True, text=True)
                self.assertEqual(result.returncode, 0, result.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
