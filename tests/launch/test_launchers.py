"""ls_train started by a launcher that does not join its processes into one MPI world (torchrun,
srun without PMIx) stops before reading anything, with one line saying how to launch; the
quickstart scripts answer --help with their usage and run nothing, and take no option as a path."""
import os
import subprocess
import sys
import tempfile
import unittest

BUILD = os.environ.get("LS_BUILD_DIR", "build")
SOURCE = os.environ.get("LS_SOURCE_DIR", ".")
LS_TRAIN = os.path.join(BUILD, "bin", "ls_train")


class LauncherTest(unittest.TestCase):
    def run_with(self, **env):
        with tempfile.TemporaryDirectory() as out:
            run_dir = os.path.join(out, "run")
            result = subprocess.run(
                [LS_TRAIN, os.path.join(SOURCE, "configs", "quickstart.yaml"), "--set", f"output.dir={run_dir}"],
                env={**os.environ, **env}, capture_output=True, text=True, timeout=120)
            return result, os.path.exists(run_dir)

    def test_torchrun_is_refused_with_how_to_launch(self):
        result, wrote = self.run_with(WORLD_SIZE="2", RANK="1", LOCAL_RANK="1")
        self.assertEqual(result.returncode, 2, result.stderr)
        lines = result.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, result.stderr)
        self.assertIn("torchrun (WORLD_SIZE)", lines[0])
        self.assertIn("mpirun -np 2", lines[0])
        self.assertFalse(wrote, "a refused launch must not create the run directory")

    def test_srun_without_pmix_is_refused(self):
        result, wrote = self.run_with(SLURM_STEP_NUM_TASKS="4", SLURM_PROCID="0")
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIn("srun (SLURM_STEP_NUM_TASKS)", result.stderr)
        self.assertFalse(wrote)


class QuickstartScriptsTest(unittest.TestCase):
    def test_quickstart_help_prints_usage_and_runs_nothing(self):
        with tempfile.TemporaryDirectory() as tmp:
            result = subprocess.run([os.path.join(SOURCE, "tools", "quickstart.sh"), "--help"], cwd=tmp,
                                    capture_output=True, text=True, timeout=60)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertIn("Usage: tools/quickstart.sh", result.stdout)
            self.assertNotIn("validation", result.stdout)  # no results table of an earlier run
            self.assertEqual(os.listdir(tmp), [])

    def test_assets_script_takes_no_option_as_its_output_directory(self):
        script = os.path.join(SOURCE, "tools", "make_quickstart_assets.py")
        with tempfile.TemporaryDirectory() as tmp:
            shown = subprocess.run([sys.executable, script, "--help"], cwd=tmp, capture_output=True, text=True)
            self.assertEqual(shown.returncode, 0, shown.stderr)
            self.assertIn("Makes the embedded default", shown.stdout)
            refused = subprocess.run([sys.executable, script, "--out"], cwd=tmp, capture_output=True, text=True)
            self.assertEqual(refused.returncode, 2)
            self.assertIn("usage:", refused.stderr)
            self.assertEqual(os.listdir(tmp), [], "an option became a directory")


if __name__ == "__main__":
    unittest.main()
