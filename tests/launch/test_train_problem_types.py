"""ls_train and ls_predict on the problem types beyond single-label, on the quickstart's tiny model
and its multi-label (aspects) and regression (rating) sets: training lowers the loss and beats a
trivial predictor, ls_predict writes label sets / numbers and reproduces the trainer's test
metrics, class weights keep data-parallel runs equal to one process, and every bad input
(unknown label in a list, non-numeric target, a problem type a token task cannot take, class
weights of the wrong length, a metric of another problem type) is one error line, exit status 2."""
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

BUILD = os.environ.get("LS_BUILD_DIR", "build")
SOURCE = os.environ.get("LS_SOURCE_DIR", ".")
BIN = os.path.join(BUILD, "bin")
ASSETS = os.path.abspath(os.path.join(BUILD, "quickstart"))
DATA = os.path.join(ASSETS, "data")


def setUpModule():
    subprocess.run([sys.executable, os.path.join(SOURCE, "tools", "make_quickstart_assets.py"), ASSETS],
                   check=True, capture_output=True)


def ls_train(*args, check=True, ranks=1):
    command = [os.path.join(BIN, "ls_train"), *args]
    if ranks > 1:
        command = [shutil.which("mpirun"), "-np", str(ranks), *command]
    result = subprocess.run(command, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"ls_train failed ({result.returncode}): {result.stderr[-3000:]}")
    return result


def records(run, split):
    with open(os.path.join(run, "metrics.jsonl")) as f:
        return [r for r in map(json.loads, filter(str.strip, f)) if r["split"] == split]


def quickstart(name):
    return os.path.join(SOURCE, "configs", f"quickstart_{name}.yaml")


def write_config(directory, **sections):
    """A short multi-label run on the aspects set; `sections` override keys. The first config of a
    directory runs into DIR/run, later ones into run directories of their own."""
    n = len(os.listdir(directory))
    config = {
        "model": {"path": f"{ASSETS}/model"},
        "task": {"type": "sequence", "problem_type": "multi_label"},
        "lora": {"r": 4, "alpha": 8, "dropout": 0.0, "targets": ["q_proj", "v_proj"]},
        "data": {"train": f"{DATA}/aspects_train.jsonl", "validation": f"{DATA}/aspects_validation.jsonl",
                 "label_field": "labels", "max_length": 40},
        "train": {"epochs": 1, "max_steps": 6, "batch_size": 8, "lr": 5e-3, "log_every": 1, "eval_every": "6",
                  "seed": 3},
        "output": {"dir": os.path.join(directory, "run" if n == 0 else f"run{n}"), "tensorboard": False,
                   "plot": False},
    }
    for section, values in sections.items():
        config.setdefault(section, {}).update(values)
    path = os.path.join(directory, f"cfg{n}.yaml")
    with open(path, "w") as f:
        json.dump(config, f)
    return path


def first_and_last_losses(run, window=10):
    losses = [r["loss"] for r in records(run, "train")]
    head, tail = losses[:window], losses[-window:]
    return sum(head) / len(head), sum(tail) / len(tail)


class ProblemTypes(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ls_problem_types_")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def predict(self, run, data):
        out = os.path.join(self.dir, "pred.jsonl")
        result = subprocess.run([os.path.join(BIN, "ls_predict"), run, data, "--out", out], capture_output=True,
                                text=True, check=True)
        with open(out) as f:
            return result.stdout, [json.loads(line) for line in f]

    def train_quickstart(self, name):
        """Trains configs/quickstart_<name>.yaml, logging every step: (run dir, first and last losses)."""
        run = os.path.join(self.dir, name)
        ls_train(quickstart(name), "--set", f"output.dir={run}", "--set", "train.log_every=1",
                 "--set", "output.plot=false")
        return (run, *first_and_last_losses(run))

    def test_multilabel_quickstart_learns_and_predicts_label_sets(self):
        run, first, last = self.train_quickstart("multilabel")
        self.assertLess(last, 0.6 * first, (first, last))
        test = records(run, "test")[-1]
        # Chance: predicting every label for every review (the best constant predictor's micro-F1).
        with open(f"{DATA}/aspects_test.csv") as f:
            rows = list(csv.DictReader(f))
        positives = sum(len([x for x in r["labels"].split("|") if x]) for r in rows)
        constant = 2 * positives / (positives + 3 * len(rows))
        print(f"multi-label test: {test}, all-labels micro-F1 {constant:.4f}")
        self.assertGreater(test["micro_f1"], constant + 0.15, test)
        for key in ("macro_f1", "subset_accuracy", "f1/acting", "f1/music", "f1/story"):
            self.assertIn(key, test)
        with open(os.path.join(run, "adapter", "head_config.json")) as f:
            self.assertEqual(json.load(f)["problem_type"], "multi_label_classification")
        stdout, predictions = self.predict(run, f"{DATA}/aspects_test.csv")
        self.assertIn(f"micro_f1 {test['micro_f1']:.4f}", stdout)
        self.assertEqual(len(predictions), len(rows))
        first = predictions[0]
        self.assertEqual(sorted(first["probabilities"]), ["acting", "music", "story"])
        self.assertEqual(first["labels"], [k for k, p in sorted(first["probabilities"].items()) if p >= 0.5])
        self.assertEqual(first["gold"], sorted(x for x in rows[0]["labels"].split("|") if x))

    def test_regression_quickstart_learns_and_predicts_numbers(self):
        run, first, last = self.train_quickstart("regression")
        self.assertLess(last, 0.5 * first, (first, last))
        test = records(run, "test")[-1]
        print(f"regression test: {test}")
        self.assertGreater(test["pearson"], 0.8, test)
        self.assertGreater(test["spearman"], 0.8, test)
        with open(f"{DATA}/rating_test.jsonl") as f:
            gold = [json.loads(line)["score"] for line in f]
        mean = sum(gold) / len(gold)
        variance = sum((g - mean) ** 2 for g in gold) / len(gold)
        self.assertLess(test["mse"], 0.5 * variance, test)  # well under the constant predictor's MSE
        stdout, predictions = self.predict(run, f"{DATA}/rating_test.jsonl")
        self.assertIn(f"pearson {test['pearson']:.4f}", stdout)
        self.assertIn(f"mse {test['mse']:.4f}", stdout)
        self.assertIsInstance(predictions[0]["prediction"], float)
        self.assertEqual(predictions[0]["gold"], gold[0])
        self.assertTrue(0.0 - 1.5 < sum(p["prediction"] for p in predictions) / len(predictions) < 5.0 + 1.5)

    def test_every_problem_type_takes_the_same_steps_on_any_layout(self):
        """Each loss is normalised over the GLOBAL batch (weighted cross-entropy by the sum of the
        targets' weights, BCE by rows x labels, MSE by rows), so 2 data-parallel ranks and 2
        tensor-parallel ranks take the same steps as one process; ls_predict's loss is the trainer's
        (class weights and target normalisation restored from the adapter)."""
        tasks = {
            "weighted_smoothed_ce": dict(
                task={"problem_type": "single_label", "class_weights": [0.3, 2.5], "label_smoothing": 0.1},
                data={"train": f"{DATA}/sentiment_train.jsonl", "validation": f"{DATA}/sentiment_validation.jsonl",
                      "label_field": "label"}),
            "multi_label_pos_weight": dict(task={"class_weights": "auto"}),
            "regression_normalised": dict(
                task={"problem_type": "regression", "normalize_targets": True},
                data={"train": f"{DATA}/rating_train.jsonl", "validation": f"{DATA}/rating_validation.jsonl",
                      "label_field": "score"}),
        }
        for name, sections in tasks.items():
            losses = {}
            for layout, ranks, tp in (("one", 1, 1), ("dp2", 2, 1), ("tp2", 2, 2)):
                directory = os.path.join(self.dir, f"{name}_{layout}")
                os.makedirs(directory)
                cfg = write_config(directory, **sections)
                ls_train(cfg, "--set", f"parallel.tp={tp}", "--set", "train.max_steps=4", "--set",
                         "train.eval_every=4", ranks=ranks)
                losses[layout] = [r["loss"] for r in records(os.path.join(directory, "run"), "train")]
            self.assertEqual(len(losses["one"]), 4, name)
            for layout in ("dp2", "tp2"):
                for a, b in zip(losses[layout], losses["one"], strict=True):
                    self.assertAlmostEqual(a, b, delta=1e-5 * max(1.0, abs(b)), msg=f"{name} {layout}")
            run = os.path.join(self.dir, f"{name}_one", "run")
            validation = records(run, "validation")[-1]
            stdout, _ = self.predict(run, sections.get("data", {}).get("validation",
                                                                       f"{DATA}/aspects_validation.jsonl"))
            self.assertIn(f"loss {validation['loss']:.4f}", stdout, name)

    def test_lower_is_better_metrics_select_the_lowest(self):
        """train.metric: mse selects the checkpoint with the lowest validation MSE (not the highest)."""
        cfg = write_config(self.dir, task={"problem_type": "regression"},
                           data={"train": f"{DATA}/rating_train.jsonl", "validation": f"{DATA}/rating_validation.jsonl",
                                 "label_field": "score"},
                           train={"metric": "mse", "max_steps": 12, "eval_every": "2", "lr": 1e-2})
        ls_train(cfg)
        run = os.path.join(self.dir, "run")
        validation = records(run, "validation")
        self.assertGreater(len({r["mse"] for r in validation}), 1)
        with open(os.path.join(run, "state", "trainer.json")) as f:
            state = json.load(f)
        best = min(validation, key=lambda r: r["mse"])
        self.assertEqual(state["best_step"], best["step"])
        self.assertAlmostEqual(state["best"], best["mse"], places=12)

    def test_auto_class_weights_are_sklearn_balanced(self):
        run_dir = os.path.join(self.dir, "auto")
        os.makedirs(run_dir)
        cfg = write_config(run_dir, task={"problem_type": "single_label", "class_weights": "auto"},
                           data={"train": f"{DATA}/sentiment_train.jsonl", "validation": "", "label_field": "label"},
                           train={"max_steps": 1})
        result = ls_train(cfg)
        with open(f"{DATA}/sentiment_train.jsonl") as f:
            labels = [json.loads(line)["label"] for line in f]
        expected = [len(labels) / (2 * labels.count(c)) for c in ("negative", "positive")]
        with open(os.path.join(run_dir, "run", "adapter", "head_config.json")) as f:
            weights = json.load(f)["ls_train"]["class_weights"]
        for a, b in zip(weights, expected, strict=True):
            self.assertAlmostEqual(a, b, places=9)
        self.assertIn("class weights (auto, cross-entropy)", result.stdout)

    def assert_one_line_error(self, cfg, *needles):
        result = ls_train(cfg, check=False)
        self.assertEqual(result.returncode, 2, result.stderr)
        lines = result.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, result.stderr)
        for needle in needles:
            self.assertIn(needle, lines[0])

    def test_bad_inputs_are_one_clear_error(self):
        bad_labels = os.path.join(self.dir, "aspects_bad.jsonl")
        with open(bad_labels, "w") as f:
            f.write('{"text": "the cast was fun", "labels": ["acting"]}\n'
                    '{"text": "the plot was dull", "labels": ["story", "plotholes"]}\n')
        self.assert_one_line_error(write_config(self.dir, data={"validation": bad_labels}),
                                   f"{bad_labels}:2: unknown label \"plotholes\"")
        bad_targets = os.path.join(self.dir, "rating_bad.jsonl")
        with open(bad_targets, "w") as f:
            f.write('{"text": "fun", "score": 4}\n{"text": "dull", "score": 1.5}\n{"text": "meh", "score": "meh"}\n')
        regression = {"task": {"problem_type": "regression"},
                      "data": {"train": bad_targets, "validation": "", "label_field": "score"}}
        self.assert_one_line_error(write_config(self.dir, **regression),
                                   f"{bad_targets}:3: field \"score\" must hold a number")
        self.assert_one_line_error(
            write_config(self.dir, task={"type": "token", "problem_type": "multi_label"},
                         data={"train": f"{DATA}/ner_train.conll", "validation": ""}),
            "task.problem_type", "multi_label needs task.type: sequence")
        self.assert_one_line_error(write_config(self.dir, task={"class_weights": [1.0, 2.0]}),
                                   "task.class_weights: 2 weights for 3 labels (acting, music, story)")
        self.assert_one_line_error(write_config(self.dir, train={"metric": "accuracy"}),
                                   "train.metric", "'accuracy' is not a multi_label metric")
        self.assert_one_line_error(write_config(self.dir, task={"label_smoothing": 0.1}),
                                   "task.label_smoothing", "only single_label")
        self.assert_one_line_error(write_config(self.dir, task={"class_weights": "balanced"}),
                                   "task.class_weights", "expected none, auto or a list of numbers")


if __name__ == "__main__":
    unittest.main(verbosity=2)
