"""launch/ls_sweep end to end on the quickstart's tiny model and NER data (made by
tools/make_quickstart_assets.py into the build tree): a 4-trial sweep (2 learning rates x 2 seeds)
and its results table checked against every trial's metrics.jsonl, a restart that skips finished
trials, a sweep stopped by SIGTERM whose interrupted trial resumes from state/, a failing trial
that is recorded while the others run, mpirun trials (2 ranks, launch/mpirun_node.sh, as root too)
equal to one process, GPU trials side by side (one GPU each; a stand-in for ls_train), the Slurm
job-array script, how axes expand (grid, range, seeded samples, seeds), spec errors, and the
mistakes every trial would share (a mistyped key, a value that is no choice, a base config that
does not parse, an mpirun that cannot start), which stop the sweep before its first trial."""
import csv
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import unittest

BUILD = os.environ.get("LS_BUILD_DIR", "build")
SOURCE = os.path.abspath(os.environ.get("LS_SOURCE_DIR", "."))
LS_TRAIN = os.path.abspath(os.path.join(BUILD, "bin", "ls_train"))
SWEEP = os.path.join(SOURCE, "launch", "ls_sweep")
ASSETS = os.path.abspath(os.path.join(BUILD, "quickstart"))
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def setUpModule():
    subprocess.run([sys.executable, os.path.join(SOURCE, "tools", "make_quickstart_assets.py"), ASSETS],
                   check=True, capture_output=True)


def write_spec(directory, axes, seeds=None, slurm=None, steps=16, extra=None, run=None, samples=None):
    """A sweep over a small quickstart NER config (JSON is YAML): 16 steps, evaluated at 8 and 16."""
    base = {
        "model": {"path": f"{ASSETS}/model", "attention": "bidirectional"},
        "task": {"type": "token", "labels": ["O", "B-PER", "B-LOC"]},
        "lora": {"r": 4, "alpha": 8, "dropout": 0.0, "targets": ["q_proj", "v_proj"]},
        "data": {"train": f"{ASSETS}/data/ner_train.conll", "validation": f"{ASSETS}/data/ner_validation.conll",
                 "test": f"{ASSETS}/data/ner_test.conll", "max_length": 32},
        "train": {"epochs": 10, "batch_size": 16, "lr": 5e-3, "log_every": 4},
        "output": {"dir": os.path.join(directory, "unused"), "tensorboard": False, "plot": False},
    }
    with open(os.path.join(directory, "base.yaml"), "w") as f:
        json.dump(base, f)
    spec = {"base": "base.yaml", "out": "sweep", "axes": axes,
            "set": {"train.max_steps": steps, "train.eval_every": steps // 2, **(extra or {})}}
    if seeds is not None:
        spec["seeds"] = seeds
    if slurm is not None:
        spec["slurm"] = slurm
    if run is not None:
        spec["run"] = run
    if samples is not None:
        spec["samples"] = samples
    path = os.path.join(directory, "spec.yaml")
    with open(path, "w") as f:
        json.dump(spec, f)
    return path


def sweep(*args, env=None, ls_train=LS_TRAIN):
    env = dict(env or os.environ, LS_TRAIN=ls_train, LS_PYTHON=sys.executable, OMP_NUM_THREADS="1")
    return subprocess.run([SWEEP, *args], capture_output=True, text=True, env=env)


def without_root_consent():
    """The environment without OMPI_ALLOW_RUN_AS_ROOT*, which CTest sets for its own mpirun tests."""
    return {k: v for k, v in os.environ.items() if not k.startswith("OMPI_ALLOW_RUN_AS_ROOT")}


def write_program(path, text):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o755)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def read_metrics(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def read_record(run_dir):
    with open(os.path.join(run_dir, "trial.json")) as f:
        return json.load(f)


class Sweep(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ls_sweep_")
        self.out = os.path.join(self.dir, "sweep")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def trial_dir(self, name):
        return os.path.join(self.out, "trials", name)

    def test_four_trials_give_a_sorted_table_that_matches_each_run_and_a_restart_skips_them(self):
        spec = write_spec(self.dir, {"train.lr": [5e-3, 2e-2]}, seeds=[1, 2])
        result = sweep(spec)
        self.assertEqual(result.returncode, 0, result.stderr)

        rows = read_csv(os.path.join(self.out, "results.csv"))
        self.assertEqual(len(rows), 4)
        self.assertEqual(list(rows[0])[:5], ["rank", "trial", "lr", "seed", "status"])
        self.assertEqual({(r["lr"], r["seed"]) for r in rows},
                         {("0.005", "1"), ("0.005", "2"), ("0.02", "1"), ("0.02", "2")})
        vals = [float(r["val_entity_f1"]) for r in rows]
        self.assertEqual(vals, sorted(vals, reverse=True))
        self.assertEqual([r["rank"] for r in rows], ["1", "2", "3", "4"])
        for row in rows:
            self.assertEqual(row["status"], "done")
            records = read_metrics(self.trial_dir(row["trial"]))
            validation = [r for r in records if r["split"] == "validation"]
            self.assertEqual([r["step"] for r in validation], [8, 16])
            best = max(validation, key=lambda r: r["entity_f1"])
            self.assertAlmostEqual(float(row["val_entity_f1"]), best["entity_f1"], places=6)
            test = [r for r in records if r["split"] == "test"]
            self.assertEqual(len(test), 1)
            self.assertAlmostEqual(float(row["test_entity_f1"]), test[0]["entity_f1"], places=6)
            self.assertEqual(row["steps"], "16")
            self.assertGreater(float(row["seconds"]), 0.0)
            with open(os.path.join(self.trial_dir(row["trial"]), "config.yaml")) as f:
                config = f.read()
            self.assertIn(f"lr: {row['lr']}", config)
            self.assertIn(f"seed: {row['seed']}", config)

        by_config = read_csv(os.path.join(self.out, "results_by_config.csv"))
        self.assertEqual(len(by_config), 2)
        for group in by_config:
            members = [float(r["val_entity_f1"]) for r in rows if r["lr"] == group["lr"]]
            self.assertEqual(group["trials"], "2")
            self.assertAlmostEqual(float(group["val_entity_f1_mean"]), statistics.fmean(members), places=5)
            self.assertAlmostEqual(float(group["val_entity_f1_std"]), statistics.stdev(members), places=5)
        with open(os.path.join(self.out, "results.md")) as f:
            markdown = f.read()
        self.assertEqual(sum(line.startswith("| ") and "| done |" in line for line in markdown.splitlines()), 4)
        self.assertIn("±", markdown)
        for plot in ["entity_f1_vs_lr.png", "best_validation_curves.png"]:
            with open(os.path.join(self.out, "plots", plot), "rb") as f:
                self.assertEqual(f.read(8), PNG_SIGNATURE, plot)

        # A restart runs nothing that finished: metrics files untouched, table unchanged.
        stamps = {r["trial"]: os.stat(os.path.join(self.trial_dir(r["trial"]), "metrics.jsonl")).st_mtime_ns
                  for r in rows}
        again = sweep(spec)
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertIn("0 to run, 4 finished earlier", again.stderr)
        for name, stamp in stamps.items():
            self.assertEqual(os.stat(os.path.join(self.trial_dir(name), "metrics.jsonl")).st_mtime_ns, stamp, name)
        self.assertEqual(read_csv(os.path.join(self.out, "results.csv")), rows)


    def test_a_stopped_sweep_resumes_its_interrupted_trial_from_state(self):
        spec = write_spec(self.dir, {"train.lr": [5e-3]}, steps=600, extra={"output.state_every": 5})
        env = dict(os.environ, LS_TRAIN=LS_TRAIN, LS_PYTHON=sys.executable, OMP_NUM_THREADS="1")
        proc = subprocess.Popen([SWEEP, spec], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        run = self.trial_dir("lr-0.005")
        state = os.path.join(run, "state", "trainer.json")
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                with open(state) as f:
                    if json.load(f)["step"] >= 10:
                        break
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
        self.assertEqual(proc.returncode, 130, err)
        record = read_record(run)
        self.assertEqual(record["status"], "interrupted", err)
        with open(state) as f:
            stopped_at = json.load(f)["step"]
        self.assertLess(stopped_at, 600, "the trial finished before it could be stopped")

        resumed = sweep(spec)
        self.assertEqual(resumed.returncode, 0, resumed.stderr)
        self.assertIn("resume lr-0.005", resumed.stderr)
        record = read_record(run)
        self.assertEqual((record["status"], record["attempts"]), ("done", 2))
        self.assertEqual(record["command"][1:3], ["--resume", run])
        train_steps = [r["step"] for r in read_metrics(run) if r["split"] == "train"]
        self.assertEqual(train_steps, list(range(4, 601, 4)))

    def test_a_failing_trial_is_recorded_and_the_others_run(self):
        spec = write_spec(self.dir, {"lora.r": [0, 4]})  # r 0: ls_train refuses it, not the sweep
        result = sweep(spec)
        self.assertEqual(result.returncode, 1, result.stderr)
        rows = {r["r"]: r for r in read_csv(os.path.join(self.out, "results.csv"))}
        self.assertEqual(rows["4"]["status"], "done")
        self.assertNotEqual(rows["4"]["val_entity_f1"], "")
        self.assertEqual(rows["0"]["status"], "failed")
        self.assertEqual(rows["0"]["val_entity_f1"], "")
        self.assertIn("ls_train: error:", rows["0"]["error"])
        self.assertIn("lora.r", rows["0"]["error"])
        self.assertEqual(list(read_csv(os.path.join(self.out, "results.csv")))[-1]["status"], "failed")
        record = read_record(self.trial_dir(rows["0"]["trial"]))
        self.assertEqual((record["status"], record["returncode"]), ("failed", 2))

        again = sweep(spec)  # failures are kept, not rerun, unless --retry-failed
        self.assertEqual(again.returncode, 1)
        self.assertIn("0 to run, 2 finished earlier", again.stderr)
        retried = sweep(spec, "--retry-failed")
        self.assertIn("1 to run, 1 finished earlier", retried.stderr)
        self.assertEqual(read_record(self.trial_dir(rows["0"]["trial"]))["attempts"], 2)

    def test_slurm_writes_a_job_array_with_one_task_per_trial(self):
        spec = write_spec(self.dir, {"train.lr": {"logspace": [1e-3, 1e-2, 3]}, "lora.r": [4, 8]}, seeds=2,
                          slurm={"sbatch": {"partition": "gpu", "time": "01:00:00"}, "max_parallel": 4})
        result = sweep(spec, "--slurm")
        self.assertEqual(result.returncode, 0, result.stderr)
        with open(os.path.join(self.out, "sweep.sbatch")) as f:
            script = f.read()
        self.assertIn("#SBATCH --array=0-11%4\n", script)
        self.assertIn("#SBATCH --partition=gpu\n", script)
        self.assertIn("#SBATCH --time=01:00:00\n", script)
        names = script.split("trials=(\n", 1)[1].split(")\n", 1)[0].split()
        self.assertEqual(len(names), 12)
        self.assertIn("lr-0.00316228_r-8_seed-2", names)
        self.assertIn('--trial "${trials[$SLURM_ARRAY_TASK_ID]}"', script)
        self.assertEqual(subprocess.run(["bash", "-n", os.path.join(self.out, "sweep.sbatch")]).returncode, 0)
        self.assertFalse(os.path.exists(os.path.join(self.out, "trials")), "--slurm must not run trials")

        # What array task 0 runs; a later --slurm submits only the trials still to run.
        task = sweep(spec, "--trial", names[0])
        self.assertEqual(task.returncode, 0, task.stderr)
        self.assertEqual(os.listdir(os.path.join(self.out, "trials")), [names[0]])
        self.assertEqual(read_record(self.trial_dir(names[0]))["status"], "done")
        self.assertEqual(sweep(spec, "--slurm").returncode, 0)
        with open(os.path.join(self.out, "sweep.sbatch")) as f:
            script = f.read()
        self.assertIn("#SBATCH --array=0-10%4\n", script)
        self.assertEqual(script.split("trials=(\n", 1)[1].split(")\n", 1)[0].split(), names[1:])

    def test_mpirun_trials_through_the_launch_script_match_one_process(self):
        losses = {}
        for launcher in ("local", "mpirun"):
            directory = os.path.join(self.dir, launcher)
            os.makedirs(directory)
            spec = write_spec(directory, {"train.lr": [5e-3]},
                              extra={"task.head_dropout": 0.0, "train.shuffle": False},  # no rank-dependent draws
                              run={"launcher": launcher, "ranks": 2 if launcher == "mpirun" else 1})
            # Run as root (a container; CTest's machines), mpirun_node.sh lets OpenMPI run as root.
            result = sweep(spec, env=without_root_consent())
            self.assertEqual(result.returncode, 0, result.stderr)
            run = os.path.join(directory, "sweep", "trials", "lr-0.005")
            record = read_record(run)
            if launcher == "mpirun":
                self.assertTrue(record["command"][0].endswith("launch/mpirun_node.sh"), record["command"])
                self.assertEqual(record["command"][1], "2")
            losses[launcher] = [r["loss"] for r in read_metrics(run) if r["split"] == "validation"]
        self.assertEqual(len(losses["mpirun"]), 2)
        for a, b in zip(losses["mpirun"], losses["local"]):
            self.assertAlmostEqual(a, b, delta=1e-5 * max(1.0, abs(b)))

    def test_gpu_trials_run_side_by_side_each_on_its_own_gpu(self):
        # A stand-in for ls_train that records the GPUs and time it ran with (no GPU needed).
        fake = os.path.join(self.dir, "fake_ls_train")
        with open(fake, "w") as f:
            f.write(f"""#!{sys.executable}
import json, os, sys, time
if "--config-docs" in sys.argv:  # the sweep checks its keys against the real schema
    os.execv({LS_TRAIN!r}, [{LS_TRAIN!r}, "--config-docs"])
out = [a.split("=", 1)[1] for a in sys.argv if a.startswith("output.dir=")][0]
os.makedirs(out, exist_ok=True)
start = time.time()
time.sleep(3.0)  # long enough that the two GPUs' first trials overlap under load
with open(os.path.join(out, "placement.json"), "w") as f:
    json.dump({{"gpus": os.environ.get("CUDA_VISIBLE_DEVICES"), "start": start, "end": time.time()}}, f)
with open(os.path.join(out, "metrics.jsonl"), "w") as f:
    f.write(json.dumps({{"split": "validation", "step": 1, "accuracy": 0.5}}) + "\\n")
""")
        os.chmod(fake, 0o755)
        spec = write_spec(self.dir, {"train.lr": [1e-3, 2e-3, 3e-3, 4e-3]})
        with open(spec) as f:
            raw = json.load(f)
        raw.update({"run": {"gpus": 2}, "metric": "accuracy"})
        with open(spec, "w") as f:
            json.dump(raw, f)
        env = dict(os.environ, LS_TRAIN=fake, LS_PYTHON=sys.executable, CUDA_VISIBLE_DEVICES="5,7")
        result = subprocess.run([SWEEP, spec], capture_output=True, text=True, env=env)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("2 at a time", result.stderr)
        placements = []
        for name in os.listdir(os.path.join(self.out, "trials")):
            with open(os.path.join(self.trial_dir(name), "placement.json")) as f:
                placements.append(json.load(f))
        self.assertEqual(len(placements), 4)
        self.assertEqual(sorted(p["gpus"] for p in placements), ["5", "5", "7", "7"])
        for gpu in ("5", "7"):  # one trial at a time per GPU
            spans = sorted((p["start"], p["end"]) for p in placements if p["gpus"] == gpu)
            self.assertLessEqual(spans[0][1], spans[1][0])
        first = sorted(placements, key=lambda p: p["start"])[:2]
        self.assertLess(first[1]["start"], first[0]["end"], "the two GPUs' trials did not overlap")

    def test_axes_expand_to_grid_ranges_seeded_samples_and_seeds(self):
        def trials(sample_seed):
            spec = write_spec(self.dir, {"lora.r": {"range": [4, 12, 4]}, "model.attention": ["causal"],
                                         "train.lr": {"sample": "loguniform", "low": 1e-4, "high": 1e-2}}, seeds=2)
            with open(spec) as f:
                raw = json.load(f)
            raw.update({"samples": 3, "sample_seed": sample_seed})
            with open(spec, "w") as f:
                json.dump(raw, f)
            result = sweep(spec, "--dry-run")
            self.assertEqual(result.returncode, 0, result.stderr)
            return [line.split()[1] for line in result.stdout.splitlines() if not line.startswith("     ")]

        names = trials(0)
        self.assertEqual(len(names), 3 * 3 * 2)  # r x lr samples x seeds
        self.assertEqual(sorted({n.split("_")[0] for n in names}), ["r-12", "r-4", "r-8"])
        lrs = {n.split("_")[2] for n in names}
        self.assertEqual(len(lrs), 3)
        for lr in lrs:
            self.assertTrue(1e-4 <= float(lr[len("lr-"):]) <= 1e-2, lr)
        self.assertEqual(trials(0), names)  # the same draws for the same sample_seed
        self.assertNotEqual(trials(1), names)

    def test_spec_errors_are_one_line_and_status_2(self):
        spec = write_spec(self.dir, {"train.lr": {"range": [1e-3]}})
        result = sweep(spec)
        self.assertEqual(result.returncode, 2)
        self.assertEqual(len(result.stderr.strip().splitlines()), 1, result.stderr)
        self.assertIn("axes.train.lr.range", result.stderr)
        with open(spec) as f:
            broken = json.load(f)
        broken["axis"] = broken.pop("axes")
        with open(spec, "w") as f:
            json.dump(broken, f)
        result = sweep(spec)
        self.assertEqual(result.returncode, 2)
        self.assertIn("unknown key 'axis'", result.stderr)

    def assert_stopped_before_any_trial(self, result, directory, *names):
        self.assertEqual(result.returncode, 2, result.stderr)
        lines = result.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, result.stderr)
        self.assertTrue(lines[0].startswith("ls_sweep: error: "), lines[0])
        for name in names:
            self.assertIn(name, lines[0])
        self.assertFalse(os.path.exists(os.path.join(directory, "sweep")),
                         "a sweep stopped by a check must write nothing")

    def test_a_mistake_every_trial_would_share_stops_the_sweep_before_the_first(self):
        broken_program = os.path.join(self.dir, "broken_ls_train")
        write_program(broken_program, "#!/bin/sh\necho 'ls_train: error while loading shared libraries: "
                                      "libtorch.so: cannot open shared object file' >&2\nexit 127\n")
        # name: (axes, set:, the base config's text (None: the usual one), ls_train, what the line names)
        cases = {
            "a mistyped axis key": ({"train.lrr": [5e-3, 2e-2]}, {}, None, LS_TRAIN,
                                    ["spec.yaml: axes.train.lrr: unknown config key", "did you mean 'train.lr'?"]),
            "a mistyped set: key": ({"train.lr": [5e-3]}, {"train.max_step": 4}, None, LS_TRAIN,
                                    ["set.train.max_step: unknown config key", "did you mean 'train.max_steps'?"]),
            "a value that is no choice": ({"model.attention": ["causal", "sideways"]}, {}, None, LS_TRAIN,
                                          ["axes.model.attention: 'sideways' is not one of: causal, bidirectional"]),
            "a sampled value that is no choice": (
                {"train.schedule": {"sample": "choice", "values": ["cosine", "cosin"]}}, {}, None, LS_TRAIN,
                ["axes.train.schedule: 'cosin' is not one of: constant, linear, cosine"]),
            "a mistyped key in the base config": ({"train.lr": [5e-3]}, {}, "model:\n  path: m\nlora:\n  rank: 4\n",
                                                  LS_TRAIN, ["base.yaml:4: lora.rank: unknown config key",
                                                             "did you mean 'lora.r'?"]),
            "a base config that does not parse": ({"train.lr": [5e-3]}, {}, "model:\n  path: [m\nlora: {r: 4}\n",
                                                  LS_TRAIN, ["base.yaml:3: not valid YAML"]),
            "an ls_train that cannot start": ({"train.lr": [5e-3]}, {}, None, broken_program,
                                              ["--config-docs (exit status 127)", "libtorch.so"]),
        }
        for i, (name, (axes, overrides, base_text, program, names)) in enumerate(cases.items()):
            with self.subTest(name):
                directory = os.path.join(self.dir, str(i))
                os.makedirs(directory)
                spec = write_spec(directory, axes, extra=overrides, samples=1)
                if base_text is not None:
                    with open(os.path.join(directory, "base.yaml"), "w") as f:
                        f.write(base_text)
                self.assert_stopped_before_any_trial(sweep(spec, ls_train=program), directory, *names)
                self.assert_stopped_before_any_trial(sweep(spec, "--slurm", ls_train=program), directory, *names)

    @unittest.skipUnless(os.geteuid() == 0 and shutil.which("mpirun"), "needs root (a container) and OpenMPI")
    def test_an_mpirun_that_cannot_start_stops_the_sweep_before_the_first_trial(self):
        # The real OpenMPI, as root, with OMPI_ALLOW_RUN_AS_ROOT=0: how a user keeps its refusal
        # in launch/mpirun_node.sh. The sweep's test launch fails, and no trial starts.
        spec = write_spec(self.dir, {"train.lr": [5e-3, 2e-2]}, run={"launcher": "mpirun", "ranks": 2})
        env = dict(without_root_consent(), OMPI_ALLOW_RUN_AS_ROOT="0")
        self.assert_stopped_before_any_trial(
            sweep(spec, env=env), self.dir, "run.launcher: mpirun cannot start 2 ranks here",
            "mpirun has detected an attempt to run as root", "OMPI_ALLOW_RUN_AS_ROOT=1")

if __name__ == "__main__":
    unittest.main()
