"""ls_train started by a launcher that does not join its processes into one MPI world (torchrun,
srun without PMIx) stops before reading anything, with one line saying how to launch; the mpirun
launch scripts run as root (a container) without being told, and leave OpenMPI's check alone for
other users or when OMPI_ALLOW_RUN_AS_ROOT says no; the quickstart scripts answer --help with their
usage and run nothing, and take no option as a path."""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

BUILD = os.environ.get("LS_BUILD_DIR", "build")
SOURCE = os.path.abspath(os.environ.get("LS_SOURCE_DIR", "."))
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


def write_program(path, text):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o755)


@unittest.skipUnless(os.geteuid() == 0 and shutil.which("mpirun") and shutil.which("setpriv"),
                     "needs root (as in a container), OpenMPI's mpirun and setpriv")
class MpirunAsRootTest(unittest.TestCase):
    """The scripts under the real OpenMPI, with a program that prints the consent it was given."""

    # What each script runs (the program is LS_TRAIN, the consent printer).
    SCRIPTS = {
        "mpirun_node.sh": (["1", "cfg.yaml"], {}),
        "mpirun_hosts.sh": (["hosts.txt", "1", "cfg.yaml"], {}),
        "slurm.sbatch": (["cfg.yaml"], {"LS_LAUNCHER": "mpirun", "SLURM_NTASKS": "1", "SLURM_NTASKS_PER_NODE": "1"}),
    }

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ls_launch_root_")
        os.chmod(self.dir, 0o755)  # readable by the unprivileged user below
        with open(os.path.join(self.dir, "hosts.txt"), "w") as f:
            f.write("localhost slots=1\n")
        show = os.path.join(self.dir, "show_consent")
        write_program(show, '#!/bin/sh\necho "consent=${OMPI_ALLOW_RUN_AS_ROOT:-none},${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-none}"\n')
        # The environment without the consent CTest gives its own mpirun tests.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("OMPI_ALLOW_RUN_AS_ROOT")}
        self.env.update(LS_TRAIN=show, HOME=self.dir)

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def launch(self, script, as_user=False, **env):
        args, script_env = self.SCRIPTS[script]
        command = [os.path.join(SOURCE, "launch", script), *args]
        if as_user:  # nobody: OpenMPI's own check applies, and the scripts give no consent
            command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
        return subprocess.run(command, cwd=self.dir, capture_output=True, text=True, timeout=120,
                              env={**self.env, **script_env, **env})

    def test_as_root_the_scripts_give_openmpi_its_consent(self):
        for script in self.SCRIPTS:
            with self.subTest(script):
                result = self.launch(script)
                self.assertEqual(result.returncode, 0, result.stderr)
                self.assertEqual(result.stdout.strip(), "consent=1,1")

    def test_a_user_who_says_no_keeps_the_refusal_and_other_users_get_no_consent(self):
        for script in self.SCRIPTS:
            with self.subTest(script):
                refused = self.launch(script, OMPI_ALLOW_RUN_AS_ROOT="0")
                self.assertGreater(refused.returncode, 0, refused.stderr)  # mpirun's refusal, not a signal
                self.assertIn("attempt to run as root", refused.stderr)
                user = self.launch(script, as_user=True)
                self.assertEqual(user.returncode, 0, user.stderr)
                self.assertEqual(user.stdout.strip(), "consent=none,none")


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
