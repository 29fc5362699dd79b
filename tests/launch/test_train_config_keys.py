"""Config keys through ls_train, each with an assertion on its effect (issue #28): output.overwrite,
train.early_stopping_patience, model.bidirectional_from_layer, model.activation_checkpointing and
train.ner_mode; and a check that every key `ls_train --config-docs` lists is named by some test."""
import glob
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from test_train_e2e import BIN, SOURCE, assert_one_line_error, ls_train, setUpModule, train_losses, write_config  # noqa: F401


def records(run, split):
    with open(os.path.join(run, "metrics.jsonl")) as f:
        return [r for r in map(json.loads, f) if r["split"] == split]


class ConfigKeysThroughLsTrain(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ls_config_keys_")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def run_dir(self, name, **sections):
        d = os.path.join(self.dir, name)
        os.makedirs(d)
        ls_train(write_config(d, **sections))
        return os.path.join(d, "run")

    def test_output_overwrite_refuses_then_replaces_a_run(self):
        cfg = write_config(self.dir, train={"max_steps": 2, "eval_every": "2"})
        ls_train(cfg)
        run = os.path.join(self.dir, "run")
        with open(os.path.join(run, "metrics.jsonl")) as f:
            before = f.read()
        assert_one_line_error(self, ls_train(cfg, check=False), "output.overwrite")
        with open(os.path.join(run, "metrics.jsonl")) as f:
            self.assertEqual(f.read(), before)  # untouched
        ls_train(cfg, "--set", "output.overwrite=true", "--set", "train.max_steps=3")
        self.assertEqual([s for s, _ in train_losses(run)], [1, 2, 3])  # a new run, not appended

    def test_early_stopping_patience_stops_after_that_many_evaluations_without_improvement(self):
        # lr 1e-12: no prediction changes, so the validation metric never improves after the first.
        run = self.run_dir("early", train={"lr": 1e-12, "max_steps": 12, "eval_every": "1",
                                           "early_stopping_patience": 2})
        self.assertEqual(len(records(run, "validation")), 3)  # the best, then two without improvement
        self.assertEqual(train_losses(run)[-1][0], 3)
        never = self.run_dir("never", train={"lr": 1e-12, "max_steps": 6, "eval_every": "1"})
        self.assertEqual(train_losses(never)[-1][0], 6)

    def test_bidirectional_from_layer_unmasks_only_the_layers_from_it(self):
        steps = {"max_steps": 3, "eval_every": "3"}
        no_dropout = {"dropout": 0.0}
        causal = train_losses(self.run_dir("causal", model={"attention": "causal"}, train=steps, lora=no_dropout))
        top = train_losses(self.run_dir("from1", model={"attention": "bidirectional", "bidirectional_from_layer": 1},
                                        train=steps, lora=no_dropout))
        every = train_losses(self.run_dir("from0", model={"attention": "bidirectional"}, train=steps,
                                          lora=no_dropout))
        # The quickstart model has 2 layers: from layer 1 is neither all causal nor all bidirectional.
        self.assertNotEqual(top[0][1], causal[0][1])
        self.assertNotEqual(top[0][1], every[0][1])
        self.assertNotEqual(every[0][1], causal[0][1])

    def test_activation_checkpointing_recomputes_without_changing_the_run(self):
        steps = {"max_steps": 3, "eval_every": "3"}
        plain = train_losses(self.run_dir("none", train=steps))
        for mode in ("selective", "full"):
            run = self.run_dir(mode, model={"activation_checkpointing": mode}, train=steps)
            with open(os.path.join(run, "config.yaml")) as f:
                self.assertRegex(f.read(), rf"activation_checkpointing: {mode}")
            for (_, a), (_, b) in zip(train_losses(run), plain):
                self.assertAlmostEqual(a, b, delta=1e-6 * max(1.0, abs(b)), msg=mode)

    def test_ner_mode_is_the_entity_matching_the_trainer_reports(self):
        """An untrained tagger with I- tags predicts I- after O: conlleval (default) counts those as
        entities, strict IOB2 does not. The trainer's validation entity_f1 is seqeval's in the mode
        asked for, computed here from the run's own predictions."""
        from seqeval.metrics import f1_score
        from seqeval.scheme import IOB2
        data = os.path.join(self.dir, "iob.conll")
        with open(os.path.join(os.path.dirname(BIN), "quickstart", "data", "ner_validation.conll")) as f:
            lines = f.read().splitlines()
        with open(data, "w") as out:  # B-X followed by B-X becomes B-X I-X: two-word entities
            previous = "O"
            for line in lines:
                parts = line.split()
                if len(parts) >= 2 and parts[-1].startswith("B-") and previous == parts[-1]:
                    parts[-1] = "I-" + parts[-1][2:]
                previous = line.split()[-1] if line.split() else "O"
                out.write(" ".join(parts) + "\n")
        labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
        results = {}
        for mode in ("default", "strict"):
            run = self.run_dir(mode, task={"labels": labels}, data={"train": data, "validation": data},
                               train={"max_steps": 1, "lr": 1e-5, "eval_every": "1", "ner_mode": mode})
            reported = records(run, "validation")[-1]["entity_f1"]
            with open(os.path.join(run, "predictions_validation.jsonl")) as f:
                lines = [json.loads(line) for line in f]
            gold = [line["gold"] for line in lines]
            predicted = [line["tags"] + ["O"] * (len(line["gold"]) - len(line["tags"])) for line in lines]
            expected = (f1_score(gold, predicted) if mode == "default"
                        else f1_score(gold, predicted, mode="strict", scheme=IOB2))
            self.assertAlmostEqual(reported, expected, places=6, msg=mode)
            results[mode] = reported
        self.assertNotEqual(results["default"], results["strict"], "the data does not tell the modes apart")


class EveryKeyIsNamedByATest(unittest.TestCase):
    def test_every_documented_key_appears_in_a_test(self):
        """A key no test names is a key whose effect nothing checks. A key counts as named when a
        test file holds its dotted name, or its section and its leaf as a config key."""
        docs = subprocess.run([os.path.join(BIN, "ls_train"), "--config-docs"], capture_output=True, text=True,
                              check=True).stdout
        keys = re.findall(r"^\| `([a-z_]+\.[a-z_.]+)` \|", docs, re.M)
        self.assertGreater(len(keys), 50)
        sources = {}
        for path in glob.glob(os.path.join(SOURCE, "tests", "**", "*"), recursive=True):
            if path.endswith((".py", ".cpp", ".h", ".yaml")) and os.path.isfile(path):
                with open(path, errors="replace") as f:
                    sources[path] = f.read()
        unnamed = []
        for key in keys:
            section, leaf = key.split(".", 1)
            if not any(key in text or (re.search(rf"\b{section}\b", text) and
                                       re.search(rf"[\"']{leaf}[\"']\s*:|\b{leaf}:|\.{leaf}\b|{leaf}=", text))
                       for text in sources.values()):
                unnamed.append(key)
        self.assertEqual(unnamed, [], "config keys no test names")


if __name__ == "__main__":
    unittest.main(verbosity=2)
