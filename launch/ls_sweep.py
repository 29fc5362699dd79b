"""Hyper-parameter sweeps over ls_train: a spec (a base config, axes over any config keys, seeds,
how to run) becomes one run directory per trial, run locally one after another, N at a time on N
GPUs, under mpirun, or as a Slurm job array; then one results table (CSV and Markdown, mean and
spread across seeds) and plots. Stopping and restarting a sweep skips finished trials and resumes
interrupted ones from their state/. Run through launch/ls_sweep (picks the project's Python).

  launch/ls_sweep SPEC.yaml                 run every unfinished trial, then write the results
  launch/ls_sweep SPEC.yaml --slurm         write OUT/sweep.sbatch (a job array) instead of running
  launch/ls_sweep SPEC.yaml --trial NAME    run one trial (what each array task does)
  launch/ls_sweep SPEC.yaml --report        only (re)write the results from what has run
  launch/ls_sweep SPEC.yaml --dry-run       list the trials and their ls_train commands

Before the first trial it checks what would fail every trial: the keys of the base config, set:,
axes: and metric: against `ls_train --config-docs` (and the values of keys with fixed choices), that
the base config parses, and, for run.launcher: mpirun, that mpirun starts the trial's ranks here.

Exit status: 0 every trial finished, 1 some trial failed (recorded, the others ran), 2 a spec or
command-line error, or a check before the first trial (one line on stderr, nothing written),
130 interrupted (rerun the same command to continue).
"""
import argparse
import csv
import difflib
import hashlib
import itertools
import json
import math
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC_KEYS = {"base", "out", "set", "metric", "axes", "samples", "sample_seed", "seeds", "run", "slurm"}
RUN_KEYS = {"launcher", "ranks", "gpus", "parallel"}
SLURM_KEYS = {"sbatch", "max_parallel", "setup"}
SAMPLERS = {"uniform", "loguniform", "int", "choice"}
BEST_CURVES = 5  # trials drawn in plots/best_validation_curves.png
MAX_NAME = 160  # trial directory names


class SpecError(Exception):
    """A mistake in the sweep spec or command line: reported as one line, exit status 2."""


# --- the spec ----------------------------------------------------------------------------------

class Axis:
    """One swept config key: a list of grid values, or a distribution sampled `samples` times."""

    def __init__(self, key, raw, where):
        self.key, self.where, self.log, self.sampler = key, where, False, None
        if isinstance(raw, list):
            self.values = raw
        elif isinstance(raw, dict) and "range" in raw:
            start, stop, step = _numbers(raw["range"], 3, f"{where}.range: [start, stop, step]")
            if step <= 0 or stop < start:
                raise SpecError(f"{where}.range: need step > 0 and stop >= start, got {raw['range']}")
            count = int(math.floor((stop - start) / step + 1e-9)) + 1
            whole = isinstance(start, int) and isinstance(step, int)
            self.values = [start + i * step if whole else round(start + i * step, 12) for i in range(count)]
        elif isinstance(raw, dict) and "logspace" in raw:
            start, stop, count = _numbers(raw["logspace"], 3, f"{where}.logspace: [start, stop, count]")
            if start <= 0 or stop <= 0 or count < 2 or not float(count).is_integer():
                raise SpecError(f"{where}.logspace: need start, stop > 0 and an integer count >= 2, got {raw['logspace']}")
            lo, hi = math.log10(start), math.log10(stop)
            self.values = [float(f"{10 ** (lo + (hi - lo) * i / (count - 1)):.6g}") for i in range(int(count))]
            self.log = True
        elif isinstance(raw, dict) and "sample" in raw:
            self.sampler = raw["sample"]
            if self.sampler not in SAMPLERS:
                raise SpecError(f"{where}.sample: expected one of {sorted(SAMPLERS)}, got '{self.sampler}'")
            if self.sampler == "choice":
                if not isinstance(raw.get("values"), list) or not raw["values"]:
                    raise SpecError(f"{where}: sample: choice needs a non-empty values: [...] list")
                self.choices = raw["values"]
            else:
                self.low, self.high = _numbers([raw.get("low"), raw.get("high")], 2, f"{where}: low and high")
                if self.high < self.low or (self.sampler == "loguniform" and self.low <= 0):
                    raise SpecError(f"{where}: need low <= high (and low > 0 for loguniform), got {self.low}, {self.high}")
            self.log = self.sampler == "loguniform"
            self.values = []
        else:
            raise SpecError(f"{where}: expected a list of values, {{range: [start, stop, step]}}, "
                            f"{{logspace: [start, stop, count]}} or {{sample: ...}}, got {raw!r}")
        if self.sampler is None and not self.values:
            raise SpecError(f"{where}: no values")

    def draw(self, rng):
        if self.sampler == "choice":
            return rng.choice(self.choices)
        if self.sampler == "int":
            return rng.randint(int(self.low), int(self.high))
        if self.sampler == "loguniform":
            return float(f"{math.exp(rng.uniform(math.log(self.low), math.log(self.high))):.4g}")
        return float(f"{rng.uniform(self.low, self.high):.4g}")


def _numbers(raw, count, what):
    if not isinstance(raw, list) or len(raw) != count or not all(
            isinstance(x, (int, float)) and not isinstance(x, bool) for x in raw):
        raise SpecError(f"{what}: expected {count} numbers, got {raw!r}")
    return raw


class Spec:
    def __init__(self, path, out_override=None):
        self.path = os.path.abspath(path)
        try:
            with open(self.path) as f:
                raw = yaml.safe_load(f) or {}
        except OSError as e:
            raise SpecError(f"{path}: cannot read the sweep spec ({e.strerror})")
        except yaml.YAMLError as e:
            raise SpecError(_yaml_error(path, e))
        if not isinstance(raw, dict):
            raise SpecError(f"{path}: expected a mapping with base:, axes:, ...")
        for key in raw:
            if key not in SPEC_KEYS:
                raise SpecError(f"{path}: unknown key '{key}' (expected one of {', '.join(sorted(SPEC_KEYS))})")
        here = os.path.dirname(self.path)
        if "base" not in raw:
            raise SpecError(f"{path}: base: (the config every trial starts from) is required")
        self.base = os.path.normpath(os.path.join(here, str(raw["base"])))
        if not os.path.isfile(self.base):
            raise SpecError(f"{path}: base: {self.base} does not exist")
        self.base_keys = _config_keys(self.base)
        out = out_override or raw.get("out") or os.path.join(ROOT, "runs", "sweep-" + _stem(self.path))
        self.out = os.path.abspath(out if out_override else os.path.join(here, out))
        self.set = _mapping(raw.get("set", {}), f"{path}: set")
        self.metric = str(raw.get("metric", "auto"))

        axes = _mapping(raw.get("axes", {}), f"{path}: axes")
        self.axes = [Axis(k, v, f"{path}: axes.{k}") for k, v in axes.items()]
        seeds = raw.get("seeds")
        if seeds is not None:
            if isinstance(seeds, int) and not isinstance(seeds, bool) and seeds > 0:
                seeds = list(range(1, seeds + 1))
            if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
                raise SpecError(f"{path}: seeds: expected a list of integers or a count, got {raw['seeds']!r}")
            if "train.seed" in axes:
                raise SpecError(f"{path}: train.seed is both an axis and seeds:; keep one")
            self.axes.append(Axis("train.seed", seeds, f"{path}: seeds"))
        # Mean and spread are taken over train.seed, whether it comes from seeds: or from axes:.
        self.seed_key = "train.seed" if any(a.key == "train.seed" for a in self.axes) else None
        self.samples = int(raw.get("samples", 0))
        self.sample_seed = int(raw.get("sample_seed", 0))
        if any(a.sampler for a in self.axes) and self.samples < 1:
            raise SpecError(f"{path}: sampled axes need samples: N (how many configurations to draw)")

        run = _mapping(raw.get("run", {}), f"{path}: run")
        for key in run:
            if key not in RUN_KEYS:
                raise SpecError(f"{path}: unknown key 'run.{key}' (expected one of {', '.join(sorted(RUN_KEYS))})")
        self.launcher = run.get("launcher", "local")
        if self.launcher not in ("local", "mpirun"):
            raise SpecError(f"{path}: run.launcher: expected local or mpirun, got '{self.launcher}'")
        self.ranks, self.gpus = int(run.get("ranks", 1)), int(run.get("gpus", 0))
        if self.ranks < 1 or self.gpus < 0 or (self.ranks > 1 and self.launcher != "mpirun"):
            raise SpecError(f"{path}: run: ranks >= 1 (ranks > 1 needs launcher: mpirun) and gpus >= 0")
        if self.gpus and self.gpus % self.ranks:
            raise SpecError(f"{path}: run.gpus ({self.gpus}) must be a multiple of run.ranks ({self.ranks})")
        self.parallel = self.gpus // self.ranks if self.gpus else int(run.get("parallel", 1))
        if self.parallel < 1:
            raise SpecError(f"{path}: run.parallel must be >= 1")

        slurm = _mapping(raw.get("slurm", {}), f"{path}: slurm")
        for key in slurm:
            if key not in SLURM_KEYS:
                raise SpecError(f"{path}: unknown key 'slurm.{key}' (expected one of {', '.join(sorted(SLURM_KEYS))})")
        self.sbatch = _mapping(slurm.get("sbatch", {}), f"{path}: slurm.sbatch")
        self.max_parallel = int(slurm.get("max_parallel", 0))
        self.slurm_setup = str(slurm.get("setup", ""))

        self.short = _short_names([a.key for a in self.axes])
        self.trials = self._enumerate()

    def _enumerate(self):
        grid = [a for a in self.axes if a.sampler is None and a.key != self.seed_key]
        sampled = [a for a in self.axes if a.sampler]
        seeds = [a for a in self.axes if a.key == self.seed_key]
        rng = random.Random(self.sample_seed)
        draws = [{a.key: a.draw(rng) for a in sampled} for _ in range(self.samples)] if sampled else [{}]
        trials, names = [], set()
        for point in itertools.product(*[a.values for a in grid]):
            for draw in draws:
                for seed in (seeds[0].values if seeds else [None]):
                    values = dict(zip([a.key for a in grid], point))
                    values.update(draw)
                    if seed is not None:
                        values[self.seed_key] = seed
                    ordered = {a.key: values[a.key] for a in self.axes}
                    name = "_".join(f"{self.short[k]}-{_slug(v)}" for k, v in ordered.items()) or "base"
                    if len(name) > MAX_NAME:  # file systems stop at 255 bytes; the digest keeps it unique
                        digest = hashlib.sha1(json.dumps(ordered, sort_keys=True).encode()).hexdigest()[:12]
                        name = f"{name[:MAX_NAME - 13]}-{digest}"
                    if name in names:
                        raise SpecError(f"{self.path}: two trials would share the run directory '{name}' "
                                        "(repeated axis values, or sampled values equal after rounding)")
                    names.add(name)
                    trials.append(Trial(self, len(trials), name, ordered))
        return trials


def _yaml_error(path, error):
    mark = getattr(error, "problem_mark", None)
    where = f"{path}:{mark.line + 1}" if mark is not None else path
    return f"{where}: not valid YAML ({getattr(error, 'problem', None) or str(error).splitlines()[0]})"


def _config_keys(path):
    """The keys a config file sets, as ls_train reads it (sections of keys): {key: (FILE:LINE, the
    value's text when it is a scalar)}."""
    try:
        with open(path) as f:
            root = yaml.compose(f)
    except OSError as e:
        raise SpecError(f"{path}: cannot read the base config ({e.strerror})")
    except yaml.YAMLError as e:
        raise SpecError(_yaml_error(path, e))
    if root is None:
        return {}
    if not isinstance(root, yaml.MappingNode):
        raise SpecError(f"{path}: a config is a mapping of sections (model:, task:, lora:, ...)")
    keys = {}
    for section, body in root.value:
        if isinstance(body, yaml.ScalarNode) and body.tag.endswith(":null"):
            continue
        if not isinstance(body, yaml.MappingNode):
            raise SpecError(f"{path}:{section.start_mark.line + 1}: section '{section.value}' must be a mapping of keys")
        for key, value in body.value:
            keys[f"{section.value}.{key.value}"] = (f"{path}:{key.start_mark.line + 1}",
                                                    value.value if isinstance(value, yaml.ScalarNode) else None)
    return keys


def _mapping(raw, what):
    if not isinstance(raw, dict):
        raise SpecError(f"{what}: expected a mapping, got {raw!r}")
    return raw


def _stem(path):
    stem = os.path.splitext(os.path.basename(path))[0]
    return stem[len("sweep_"):] if stem.startswith("sweep_") else stem


def _short_names(keys):
    """Column and directory names: the last part of each key, or the whole key where that clashes."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return {k: (s if last.count(s) == 1 else k) for k, s in zip(keys, last)}


def _slug(value):
    if isinstance(value, list):
        text = "+".join(_slug(v) for v in value)
    else:
        text = f"{value:g}" if isinstance(value, float) else _yaml_value(value)
    return "".join(c if c.isalnum() or c in ".+-" else "-" for c in text)


def _yaml_value(value):
    """A value as ls_train --set reads it (YAML): JSON for lists and mappings (JSON is YAML)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return repr(value) if isinstance(value, float) else str(value)


# --- trials ------------------------------------------------------------------------------------

class Trial:
    """One ls_train run of the sweep: RUN_DIR = OUT/trials/NAME, its record in RUN_DIR/trial.json."""

    def __init__(self, spec, index, name, values):
        self.spec, self.index, self.name, self.values = spec, index, name, values
        self.dir = os.path.join(spec.out, "trials", name)
        self.record_path = os.path.join(self.dir, "trial.json")

    def overrides(self):
        items = list(self.spec.set.items()) + list(self.values.items())
        if self.spec.metric != "auto":
            items.append(("train.metric", self.spec.metric))
        items += [("output.dir", self.dir), ("output.overwrite", True)]
        return [f"{k}={_yaml_value(v)}" for k, v in items]

    def record(self):
        try:
            with open(self.record_path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def write_record(self, record):
        tmp = self.record_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(record, f, indent=2)
        os.replace(tmp, self.record_path)

    def resumable(self):
        return os.path.exists(os.path.join(self.dir, "state", "trainer.json"))

    def command(self, ls_train, cores=None):
        """cores: the CPUs this trial may use, when mpirun trials share a node."""
        if self.resumable():
            args = [ls_train, "--resume", self.dir]
        else:
            args = [ls_train, self.spec.base] + [a for o in self.overrides() for a in ("--set", o)]
        return launched(self.spec, args, cores)


def launched(spec, args, cores=None):
    """args (a program and its arguments) as run.launcher starts them: under mpirun, through
    launch/mpirun_node.sh RANKS, which runs $LS_TRAIN (the slot's environment sets it)."""
    if spec.launcher != "mpirun":
        return args
    args = [os.path.join(ROOT, "launch", "mpirun_node.sh"), str(spec.ranks)] + args[1:]
    if cores is not None:  # mpirun binds within the CPUs it inherits: give each trial its own
        args = ["taskset", "--cpu-list", ",".join(map(str, cores))] + args
    return args


class Runner:
    """Runs trials, `parallel` at a time; each slot owns its GPUs (CUDA_VISIBLE_DEVICES) and cores."""

    def __init__(self, spec, ls_train, retry_failed, scheduled=False):
        """scheduled: one trial inside a job the scheduler placed (a Slurm array task), which
        already chose its GPUs and cores: run it as it is, one at a time."""
        self.spec, self.ls_train, self.retry_failed = spec, ls_train, retry_failed
        self.parallel = 1 if scheduled else spec.parallel
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.running = {}
        self.gpus = []
        if spec.gpus and not scheduled:
            # Slot i takes GPUs [i*ranks, (i+1)*ranks) of those this process may use.
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            self.gpus = [g.strip() for g in visible.split(",") if g.strip()] if visible else \
                [str(g) for g in range(spec.gpus)]
            if len(self.gpus) < spec.gpus:
                raise SpecError(f"{spec.path}: run.gpus is {spec.gpus} but CUDA_VISIBLE_DEVICES={visible} "
                                f"leaves {len(self.gpus)}")

    def pending(self, trials):
        to_run = []
        for trial in trials:
            record = trial.record() or {}
            if record.get("status") == "done" or (record.get("status") == "failed" and not self.retry_failed):
                continue
            to_run.append(trial)
        return to_run

    def slot_cores(self, slot):
        """Concurrent mpirun trials each get a block of cores (otherwise all would bind from core 0)."""
        if self.spec.launcher != "mpirun" or self.parallel == 1:
            return None
        cpus = _cpus()
        per_trial = max(1, len(cpus) // self.parallel)
        first = (slot * per_trial) % len(cpus)
        return cpus[first:first + per_trial]

    def slot_env(self, slot):
        env = dict(os.environ)
        spec = self.spec
        if self.gpus:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(self.gpus[slot * spec.ranks:(slot + 1) * spec.ranks])
        per_trial = max(1, len(_cpus()) // self.parallel)
        if spec.launcher == "mpirun":
            env["LS_TRAIN"] = self.ls_train
            env.setdefault("LS_CORES_PER_RANK", str(max(1, per_trial // spec.ranks)))
        elif self.parallel > 1:
            env.setdefault("OMP_NUM_THREADS", str(per_trial))
        return env

    def run(self, trial, slot):
        os.makedirs(trial.dir, exist_ok=True)
        previous = trial.record() or {}
        command = trial.command(self.ls_train, self.slot_cores(slot))
        resumed = command.count("--resume") > 0
        log(f"[{trial.index + 1}/{len(self.spec.trials)}] {'resume' if resumed else 'start'} {trial.name}")
        start = time.time()
        with open(os.path.join(trial.dir, "train.log"), "ab") as out, \
                open(os.path.join(trial.dir, "train.err"), "wb") as err:
            proc = subprocess.Popen(command, stdout=out, stderr=err, env=self.slot_env(slot), start_new_session=True)
            with self.lock:
                self.running[trial.name] = proc
            if self.stopping.is_set():
                proc.send_signal(signal.SIGTERM)
            returncode = proc.wait()
            with self.lock:
                del self.running[trial.name]
        seconds = previous.get("seconds", 0.0) + (time.time() - start)
        with open(os.path.join(trial.dir, "train.err"), errors="replace") as f:
            error = _error_line(f.read()) if returncode else ""
        # mpirun reports its own status for ranks that stopped on SIGTERM: what counts is that we
        # asked the trial to stop and it left a resumable state.
        stopped = returncode == 130 or (self.stopping.is_set() and trial.resumable())
        status = "done" if returncode == 0 else "interrupted" if stopped else "failed"
        trial.write_record({"name": trial.name, "index": trial.index, "values": trial.values,
                            "overrides": trial.overrides(), "command": command, "status": status,
                            "returncode": returncode, "error": error, "seconds": round(seconds, 3),
                            "attempts": previous.get("attempts", 0) + 1})
        log(f"[{trial.index + 1}/{len(self.spec.trials)}] {status} {trial.name} ({seconds:.1f} s)"
            + (f": {error}" if status == "failed" else ""))
        return status

    def run_all(self, trials):
        free = list(range(self.parallel))
        free_lock = threading.Lock()

        def one(trial):
            if self.stopping.is_set():
                return "skipped"
            with free_lock:
                slot = free.pop(0)
            try:
                return self.run(trial, slot)
            finally:
                with free_lock:
                    free.append(slot)

        with ThreadPoolExecutor(max_workers=self.parallel) as pool:
            return list(pool.map(one, trials))

    def stop(self, *_):
        """SIGINT/SIGTERM: every running ls_train saves its state and exits 130; no new trial starts."""
        if not self.stopping.is_set():
            log("stopping: running trials save their state; rerun the same command to continue")
        self.stopping.set()
        with self.lock:
            for proc in self.running.values():
                try:
                    proc.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass


def _cpus():
    """The CPUs this process may run on (a cgroup or taskset may allow fewer than the machine has)."""
    return sorted(os.sched_getaffinity(0))


def _error_line(stderr):
    """The line ls_train (or its launcher) failed with: its own one-line error when it wrote one."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip().strip("-*=")]
    for line in lines:
        if "error" in line.lower():
            return line
    return lines[0] if lines else "exited without a message"


# --- checks before the first trial -------------------------------------------------------------
# A mistake every trial shares (a mistyped key, a value that is not one of a key's choices, a base
# config ls_train cannot read, an mpirun that cannot start) stops the sweep before its first
# trial, as one line, rather than failing every trial with it.

def config_schema(ls_train):
    """{key: its choices, or None} for every config key, from `ls_train --config-docs` (a Markdown
    table; a key with fixed choices ends its meaning with "(a \\| b \\| c)")."""
    try:
        result = subprocess.run([ls_train, "--config-docs"], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SpecError(f"{ls_train} --config-docs: cannot run it ({getattr(e, 'strerror', None) or e})")
    schema = {}
    for line in result.stdout.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)]
        if len(cells) != 5 or not re.fullmatch(r"`[\w.]+`", cells[1]):
            continue
        doc = cells[3].replace("\\|", "|")
        choices = re.search(r"\(([\w.+-]+(?: \| [\w.+-]+)+)\)$", doc)
        schema[cells[1].strip("`")] = choices.group(1).split(" | ") if choices else None
    if result.returncode != 0 or not schema:
        said = _error_line(result.stderr) if result.stderr.strip() else "no table of config keys"
        raise SpecError(f"{ls_train} --config-docs (exit status {result.returncode}): {said}; "
                        "every trial runs this program, so none could run")
    return schema


def check_keys(spec, schema):
    """Every key the trials set (base config, set:, axes:, metric:) is one ls_train knows, and every
    value given to a key with fixed choices is one of them. `where` names the key."""
    entries = [(f"{where}: {key}", key, [] if text is None else [text])
               for key, (where, text) in spec.base_keys.items()]
    entries += [(f"{spec.path}: set.{key}", key, [value]) for key, value in spec.set.items()]
    entries += [(axis.where, axis.key, axis.choices if axis.sampler == "choice" else axis.values)
                for axis in spec.axes]
    entries.append((f"{spec.path}: metric", "train.metric", [spec.metric]))
    for where, key, values in entries:
        if key not in schema:
            near = _nearest(key, schema)
            hint = f"did you mean '{near}'? " if near else ""
            raise SpecError(f"{where}: unknown config key ({hint}`ls_train --config-docs` lists every key)")
        for value in values if schema[key] else []:
            text = value if isinstance(value, str) else _yaml_value(value)
            if text not in schema[key]:
                raise SpecError(f"{where}: '{text}' is not one of: {', '.join(schema[key])}")


def _nearest(key, keys):
    """The known key closest to a mistyped one: by the whole key, else by its last part."""
    match = difflib.get_close_matches(key, keys, n=1, cutoff=0.6)
    if match:
        return match[0]
    leaves = {k.rsplit(".", 1)[-1]: k for k in keys}
    match = difflib.get_close_matches(key.rsplit(".", 1)[-1], leaves, n=1, cutoff=0.6)
    return leaves[match[0]] if match else None


def check_launcher(spec, runner):
    """run.launcher: mpirun: mpirun starts the trial's ranks here, through the same launch script,
    CPUs and environment as the first trial, with `true` as the program (as root too: the launch
    script allows OpenMPI to run as root, see docs/PARALLEL.md)."""
    if spec.launcher != "mpirun":
        return
    if shutil.which("mpirun") is None:
        raise SpecError(f"{spec.path}: run.launcher: mpirun, but no mpirun is on PATH (tools/setup.sh installs it)")
    ranks = f"{spec.ranks} rank{'s' if spec.ranks > 1 else ''}"
    env = dict(runner.slot_env(0), LS_TRAIN=shutil.which("true") or "/bin/true")
    command = launched(spec, [env["LS_TRAIN"], spec.base], runner.slot_cores(0))
    try:
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    except subprocess.TimeoutExpired:
        raise SpecError(f"{spec.path}: run.launcher: mpirun did not start {ranks} of `true` in 120 s")
    if result.returncode != 0:
        said = _first_paragraph(result.stderr + result.stdout)
        if "root" in said:
            said += (" (as root, OpenMPI needs OMPI_ALLOW_RUN_AS_ROOT=1 and OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;"
                     " launch/mpirun_node.sh sets them unless they are set to something else)")
        raise SpecError(f"{spec.path}: run.launcher: mpirun cannot start {ranks} here, "
                        f"so no trial could run: {said}")


def _first_paragraph(text):
    """OpenMPI explains itself in a box of paragraphs: its first paragraph, as one line."""
    paragraph = []
    for line in text.splitlines():
        line = line.strip()
        if not line.strip("-*="):
            if paragraph:
                break
            continue
        paragraph.append(line)
    return " ".join(paragraph) or "exited without a message"


# --- results -----------------------------------------------------------------------------------

def _records(trial):
    try:
        with open(os.path.join(trial.dir, "metrics.jsonl")) as f:
            return [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError):
        return None


def metric_for(spec, trials):
    """The metric trials are ranked by and whether lower is better, as ls_train recorded its
    selection rule in each validation record (selection_metric, selection_mode): the sweep's
    `metric` is every trial's train.metric, so the two agree."""
    for trial in trials:
        for r in _records(trial) or []:
            if r.get("split") == "validation" and "selection_metric" in r:
                return r["selection_metric"], r.get("selection_mode") == "min"
    return (spec.metric if spec.metric != "auto" else "loss"), spec.metric in ("auto", "loss")


def trial_result(trial, metric, lower_is_better):
    record = trial.record() or {}
    result = {"trial": trial.name, "values": trial.values, "status": record.get("status", "pending"),
              "error": record.get("error", ""), "seconds": record.get("seconds"), "steps": None,
              "val": None, "best_step": None, "test": None, "curve": []}
    records = _records(trial)
    if records is None:
        return result
    result["steps"] = max((r["step"] for r in records), default=None)
    for r in records:
        if r.get("split") == "validation" and metric in r:
            result["curve"].append((r["step"], r[metric]))
            if result["val"] is None or (r[metric] < result["val"] if lower_is_better else r[metric] > result["val"]):
                result["val"], result["best_step"] = r[metric], r["step"]
        elif r.get("split") == "test" and metric in r:
            result["test"] = r[metric]
    return result


def _sort_key(result, lower_is_better):
    if result["val"] is None:
        return (1, 0.0, result["trial"])
    return (0, result["val"] if lower_is_better else -result["val"], result["trial"])


def _mean_spread(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None, None
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def _fmt(x, digits=4):
    return "" if x is None else f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def write_results(spec):
    """results.csv (every trial), results_by_config.csv (mean and spread over seeds), results.md, plots/."""
    metric, lower = metric_for(spec, spec.trials)
    results = sorted((trial_result(t, metric, lower) for t in spec.trials), key=lambda r: _sort_key(r, lower))
    keys = [a.key for a in spec.axes]
    cols = [spec.short[k] for k in keys]
    os.makedirs(spec.out, exist_ok=True)

    header = ["rank", "trial", *cols, "status", f"val_{metric}", f"test_{metric}", "best_step", "steps",
              "seconds", "error"]
    rows = []
    for rank, r in enumerate(results, 1):
        rows.append([rank if r["val"] is not None else "", r["trial"], *[_yaml_value(r["values"][k]) for k in keys],
                     r["status"], _fmt(r["val"], 6), _fmt(r["test"], 6), _fmt(r["best_step"]), _fmt(r["steps"]),
                     _fmt(r["seconds"], 1), r["error"]])
    _write_csv(os.path.join(spec.out, "results.csv"), header, rows)

    config_keys = [k for k in keys if k != spec.seed_key]
    groups = {}
    for r in results:
        groups.setdefault(tuple(_yaml_value(r["values"][k]) for k in config_keys), []).append(r)
    summary = []
    for values, members in groups.items():
        done = [m for m in members if m["val"] is not None]
        val_mean, val_std = _mean_spread([m["val"] for m in done])
        test_mean, test_std = _mean_spread([m["test"] for m in done])
        summary.append({"values": values, "trials": len(members), "done": len(done), "val_mean": val_mean,
                        "val_std": val_std, "test_mean": test_mean, "test_std": test_std})
    summary.sort(key=lambda s: (s["val_mean"] is None, (s["val_mean"] or 0.0) * (1 if lower else -1)))
    by_header = [*[spec.short[k] for k in config_keys], "trials", "done", f"val_{metric}_mean", f"val_{metric}_std",
                 f"test_{metric}_mean", f"test_{metric}_std"]
    _write_csv(os.path.join(spec.out, "results_by_config.csv"), by_header,
               [[*s["values"], s["trials"], s["done"], _fmt(s["val_mean"], 6), _fmt(s["val_std"], 6),
                 _fmt(s["test_mean"], 6), _fmt(s["test_std"], 6)] for s in summary])

    done = sum(r["status"] == "done" for r in results)
    failed = sum(r["status"] == "failed" for r in results)
    md = [f"# Sweep {os.path.basename(spec.out)}", "",
          f"Spec `{spec.path}`, base config `{spec.base}`; {len(results)} trials: {done} done, {failed} failed, "
          f"{len(results) - done - failed} not finished. Metric: `{metric}` ({'lower' if lower else 'higher'} is "
          "better); validation = best evaluation (the selected checkpoint), test = that checkpoint on the test split.",
          ""]
    if config_keys and spec.seed_key:
        md += [f"## Across seeds (mean ± std over `{spec.seed_key}`)", "",
               _md_row([*[spec.short[k] for k in config_keys], "trials", f"validation {metric}", f"test {metric}"]),
               _md_row(["---"] * (len(config_keys) + 3))]
        for s in summary:
            md.append(_md_row([*s["values"], f"{s['done']}/{s['trials']}", _pm(s["val_mean"], s["val_std"]),
                               _pm(s["test_mean"], s["test_std"])]))
        md.append("")
    md += ["## Trials", "", _md_row(["#", *cols, f"validation {metric}", f"test {metric}", "best step", "steps",
                                     "time (s)", "status"]),
           _md_row(["---"] * (len(cols) + 7))]
    for row, r in zip(rows, results):
        status = r["status"] + (f": {r['error']}" if r["error"] else "")
        md.append(_md_row([row[0], *row[2:2 + len(cols)], row[-6], row[-5], row[-4], row[-3], row[-2], status]))
    md.append("")
    plots = write_plots(spec, results, metric)
    if plots:
        md += ["## Plots", ""] + [f"![{os.path.splitext(p)[0]}](plots/{p})" for p in plots] + [""]
    _write_text(os.path.join(spec.out, "results.md"), "\n".join(md))
    return results, metric


def _pm(mean, std):
    return "" if mean is None else f"{mean:.4f} ± {std:.4f}"


def _md_row(cells):
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def _write_text(path, text):
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _write_csv(path, header, rows):
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    os.replace(tmp, path)


def write_plots(spec, results, metric):
    """plots/<metric>_vs_<axis>.png for each non-seed axis, plots/best_validation_curves.png."""
    try:
        import matplotlib
    except ImportError:
        log("no plots: matplotlib is not installed (tools/setup.sh installs tools/requirements.txt)")
        return []
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in results if r["val"] is not None]
    if not done:
        return []
    directory = os.path.join(spec.out, "plots")
    os.makedirs(directory, exist_ok=True)
    written = []
    for axis in spec.axes:
        if axis.key == spec.seed_key:
            continue
        xs = [r["values"][axis.key] for r in done]
        if len({_yaml_value(x) for x in xs}) < 2:
            continue
        numeric = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in xs)
        if numeric:
            positions, ticks = xs, None
        else:
            labels = sorted({_yaml_value(x) for x in xs})
            positions, ticks = [labels.index(_yaml_value(x)) for x in xs], labels
        fig, ax = plt.subplots(figsize=(5.5, 4))
        ax.scatter(positions, [r["val"] for r in done], label="validation (best)", color="tab:blue", zorder=3)
        tests = [(p, r["test"]) for p, r in zip(positions, done) if r["test"] is not None]
        if tests:
            ax.scatter(*zip(*tests), label="test (selected)", facecolors="none", edgecolors="tab:orange", zorder=3)
        means = {}
        for p, r in zip(positions, done):
            means.setdefault(p, []).append(r["val"])
        line = sorted((p, statistics.fmean(v)) for p, v in means.items())
        if ticks is None:
            ax.plot(*zip(*line), color="tab:blue", alpha=0.5, label="validation mean")
        else:  # categories: a mark per category, no line implying an order between them
            ax.scatter(*zip(*line), marker="_", s=600, color="tab:blue", alpha=0.6, label="validation mean")
        if ticks is not None:
            ax.set_xticks(range(len(ticks)), ticks)
        elif axis.log or (min(xs) > 0 and max(xs) / min(xs) >= 4):  # lr, rank: multiplicative steps
            ax.set_xscale("log")
        ax.set_xlabel(axis.key)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        name = f"{metric}_vs_{spec.short[axis.key]}.png"
        fig.savefig(os.path.join(directory, name), dpi=100)
        plt.close(fig)
        written.append(name)

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for r in done[:BEST_CURVES]:
        if r["curve"]:
            ax.plot(*zip(*r["curve"]), marker="o", markersize=3, label=r["trial"])
    ax.set_xlabel("step")
    ax.set_ylabel(f"validation {metric}")
    ax.set_title(f"best {min(BEST_CURVES, len(done))} trials")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(directory, "best_validation_curves.png"), dpi=100)
    plt.close(fig)
    written.append("best_validation_curves.png")
    return written


# --- Slurm -------------------------------------------------------------------------------------

def _ranges(indices):
    """[0, 1, 2, 5, 7, 8] -> '0-2,5,7-8' (a Slurm --array list)."""
    parts, start = [], None
    for i, x in enumerate(indices):
        if start is None:
            start = x
        if i + 1 == len(indices) or indices[i + 1] != x + 1:
            parts.append(str(start) if start == x else f"{start}-{x}")
            start = None
    return ",".join(parts)


def write_sbatch(spec, trials, ls_train):
    """OUT/sweep.sbatch: one array task per unfinished trial; each runs `ls_sweep SPEC --trial NAME`."""
    array = _ranges(list(range(len(trials)))) + (f"%{spec.max_parallel}" if spec.max_parallel else "")
    directives = {"job-name": f"sweep-{os.path.basename(spec.out)}", "array": array,
                  "output": os.path.join(spec.out, "slurm", "%x-%A_%a.out")}
    if spec.launcher == "mpirun":
        directives.update({"nodes": 1, "ntasks": spec.ranks})
    for key, value in spec.sbatch.items():
        directives[str(key).lstrip("-")] = value
    lines = ["#!/usr/bin/env bash", f"# Written by launch/ls_sweep from {spec.path}: {len(trials)} trials, one array task",
             "# each. Submit with: sbatch " + os.path.join(spec.out, "sweep.sbatch"),
             f"# Afterwards: launch/ls_sweep {spec.path} --report"]
    lines += [f"#SBATCH --{k}={v}" for k, v in directives.items()]
    lines += ["set -euo pipefail", spec.slurm_setup] if spec.slurm_setup else ["set -euo pipefail"]
    lines += ["trials=("] + [f"  {t.name}" for t in trials] + [")"]
    lines += [f"export LS_TRAIN={_quote(ls_train)}",
              f"exec {_quote(os.path.join(ROOT, 'launch', 'ls_sweep'))} {_quote(spec.path)} "
              f"--out {_quote(spec.out)} --trial \"${{trials[$SLURM_ARRAY_TASK_ID]}}\"", ""]
    os.makedirs(os.path.join(spec.out, "slurm"), exist_ok=True)
    path = os.path.join(spec.out, "sweep.sbatch")
    _write_text(path, "\n".join(lines))
    os.chmod(path, 0o755)
    return path


def _quote(text):
    import shlex
    return shlex.quote(text)


# --- command line ------------------------------------------------------------------------------

def log(message):
    print(f"[ls_sweep] {message}", file=sys.stderr, flush=True)


def main(argv):
    parser = argparse.ArgumentParser(prog="ls_sweep", description=__doc__.split("\n\n")[0],
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]) + "\nSpec keys: docs/SWEEPS.md; "
                                     "examples: configs/sweep_*.yaml.",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("spec", help="sweep spec (YAML)")
    parser.add_argument("--out", help="sweep directory (default: the spec's out:)")
    parser.add_argument("--ls-train", default=os.environ.get("LS_TRAIN", os.path.join(ROOT, "build", "bin", "ls_train")),
                        help="the ls_train program (default: $LS_TRAIN, else build/bin/ls_train)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--slurm", action="store_true", help="write OUT/sweep.sbatch (a job array) instead of running")
    mode.add_argument("--trial", help="run only this trial (by name; what a Slurm array task does)")
    mode.add_argument("--report", action="store_true", help="only write the results of what has run")
    mode.add_argument("--dry-run", action="store_true", help="print the trials and their commands")
    parser.add_argument("--retry-failed", action="store_true", help="rerun trials recorded as failed")
    args = parser.parse_args(argv)

    try:
        spec = Spec(args.spec, args.out)
        ls_train = os.path.abspath(args.ls_train)
        runnable = os.access(ls_train, os.X_OK)
        if not (args.report or args.dry_run or runnable):
            raise SpecError(f"{ls_train} not found: build it (tools/build.sh) or pass --ls-train / set LS_TRAIN")
        if runnable and not args.report:  # a dry run shows these mistakes too, when it can
            check_keys(spec, config_schema(ls_train))
        runner = Runner(spec, ls_train, args.retry_failed, scheduled=args.trial is not None)
        trials = spec.trials
        if args.trial is not None:
            trials = [t for t in spec.trials if t.name == args.trial]
            if not trials:
                raise SpecError(f"no trial named '{args.trial}' in {spec.path} (see --dry-run)")
        to_run = runner.pending(trials)
        if to_run and not (args.dry_run or args.report or args.slurm):  # array tasks check where they run
            check_launcher(spec, runner)
    except SpecError as e:
        print(f"ls_sweep: error: {e}", file=sys.stderr)
        return 2

    if args.dry_run:
        for trial in spec.trials:
            record = trial.record() or {}
            print(f"{trial.index:4d} {trial.name} [{record.get('status', 'pending')}]")
            print("     " + " ".join(_quote(c) for c in trial.command(ls_train)))
        return 0
    if args.report:
        write_results(spec)
        log(f"results: {os.path.join(spec.out, 'results.md')}")
        return 0

    if args.slurm:
        if not to_run:
            log("every trial has finished; nothing to submit")
            write_results(spec)
            return 0
        path = write_sbatch(spec, to_run, ls_train)
        log(f"wrote {path}: {len(to_run)} array tasks ({len(spec.trials) - len(to_run)} trials already finished)")
        return 0

    skipped = len(trials) - len(to_run)
    if args.trial is None:
        log(f"{len(spec.trials)} trials in {spec.out}: {len(to_run)} to run, {skipped} finished earlier (done or failed)"
            + (f", {runner.parallel} at a time" if runner.parallel > 1 else ""))
    signal.signal(signal.SIGINT, runner.stop)
    signal.signal(signal.SIGTERM, runner.stop)
    statuses = runner.run_all(to_run)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if args.trial is not None:  # array tasks finish in any order; --report writes the table once
        status = statuses[0] if statuses else (trials[0].record() or {}).get("status", "done") + " earlier"
        log(f"trial {args.trial}: {status}; the table: launch/ls_sweep {spec.path} --report")
        return {"done": 0, "interrupted": 130, "failed": 1}[status.split()[0]]
    results, metric = write_results(spec)
    log(f"results: {os.path.join(spec.out, 'results.md')}")
    best = next((r for r in results if r["val"] is not None), None)
    if best is not None:
        log(f"best: {best['trial']}: validation {metric} {best['val']:.4f}, test {_fmt(best['test'])}")
    if runner.stopping.is_set() or "interrupted" in statuses:
        return 130
    return 1 if any(r["status"] == "failed" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
