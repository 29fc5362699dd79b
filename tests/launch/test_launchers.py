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


def write_program(path, text):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o755)


class MpirunAsRootTest(unittest.TestCase):
    # What each script runs, with `true` as the program: mpirun then starts nothing of ours.
    SCRIPTS = {
        "mpirun_node.sh": (["1", "cfg.yaml"], {}),
        "mpirun_hosts.sh": (["hosts.txt", "1", "cfg.yaml"], {}),
        "slurm.sbatch": (["cfg.yaml"], {"LS_LAUNCHER": "mpirun", "SLURM_NTASKS": "1", "SLURM_NTASKS_PER_NODE": "1"}),
    }

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ls_launch_root_")
        with open(os.path.join(self.dir, "hosts.txt"), "w") as f:
            f.write("localhost slots=1\n")
        # The environment without the consent CTest gives its own mpirun tests.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("OMPI_ALLOW_RUN_AS_ROOT")}
        self.env["LS_TRAIN"] = shutil.which("true")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def launch(self, script, uid, **env):
        """The script with stand-ins: `id -u` says uid, and mpirun checks root as OpenMPI 4 does
        (both variables 1, else it refuses) and prints the consent it was given."""
        stubs = os.path.join(self.dir, "bin")
        os.makedirs(stubs, exist_ok=True)
        write_program(os.path.join(stubs, "id"), f"#!/bin/sh\necho {uid}\n")
        write_program(os.path.join(stubs, "mpirun"), """#!/bin/sh
if [ "$(id -u)" = 0 ] && { [ "$OMPI_ALLOW_RUN_AS_ROOT" != 1 ] || [ "$OMPI_ALLOW_RUN_AS_ROOT_CONFIRM" != 1 ]; }; then
  echo 'mpirun has detected an attempt to run as root.' >&2
  exit 1
fi
echo "consent=${OMPI_ALLOW_RUN_AS_ROOT:-none},${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-none}"
""")
        args, script_env = self.SCRIPTS[script]
        return subprocess.run([os.path.join(SOURCE, "launch", script), *args], cwd=self.dir, capture_output=True,
                              text=True, timeout=60,
                              env={**self.env, **script_env, **env, "PATH": stubs + os.pathsep + os.environ["PATH"]})

    def test_as_root_the_scripts_give_openmpi_its_consent(self):
        for script in self.SCRIPTS:
            with self.subTest(script):
                result = self.launch(script, 0)
                self.assertEqual(result.returncode, 0, result.stderr)
                self.assertEqual(result.stdout.strip(), "consent=1,1")

    def test_a_user_who_says_no_keeps_the_refusal_and_other_users_get_no_consent(self):
        for script in self.SCRIPTS:
            with self.subTest(script):
                refused = self.launch(script, 0, OMPI_ALLOW_RUN_AS_ROOT="0")
                self.assertEqual(refused.returncode, 1)
                self.assertIn("attempt to run as root", refused.stderr)
                user = self.launch(script, 1000)
                self.assertEqual(user.returncode, 0, user.stderr)
                self.assertEqual(user.stdout.strip(), "consent=none,none")

    @unittest.skipUnless(os.geteuid() == 0 and shutil.which("mpirun"), "needs root and OpenMPI's mpirun")
    def test_real_openmpi_starts_as_root_through_mpirun_node(self):
        result = subprocess.run([os.path.join(SOURCE, "launch", "mpirun_node.sh"), "1", "cfg.yaml"], cwd=self.dir,
                                env=self.env, capture_output=True, text=True, timeout=120)
        self.assertEqual(result.returncode, 0, result.stderr)


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
