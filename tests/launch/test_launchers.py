"""ls_train started by a launcher that does not join its processes into one MPI world (torchrun,
srun without PMIx) stops before reading anything, with one line saying how to launch."""
import os
import subprocess
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


if __name__ == "__main__":
    unittest.main()
