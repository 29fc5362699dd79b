"""ls_train's guards around a run: a resume that would replay other batches is refused, rank 0
alone writes state/ and the adapters (a multi-rank run with output.save: best and no validation
finishes), f16 is refused for training; early stopping without a validation split is refused
before anything is written, and a data.max_length past the model's positions or a training split
of one class is warned about in one line naming the key; a data error leaves no run directory (the
fixed command then runs as it is); a resume on another base model is refused, and one that changes
the run's length says what that does to the schedule; data.pad_id: auto takes the tokenizer's pad
token, an EOS pad with data.add_eos is refused and a pad id that text produces is warned about."""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from safetensors.numpy import load_file, save_file

import test_train_e2e as e2e
from test_train_e2e import ASSETS, BIN, ls_train, train_losses, write_config


def setUpModule():
    e2e.setUpModule()


class RunChecks(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ls_checks_")
        self.run_dir = os.path.join(self.dir, "run")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def snapshot(self):
        """Every file of the run directory with its bytes."""
        files = {}
        for root, _, names in os.walk(self.run_dir):
            for name in names:
                with open(os.path.join(root, name), "rb") as f:
                    files[os.path.relpath(os.path.join(root, name), self.run_dir)] = f.read()
        return files

    assert_one_line_error = e2e.assert_one_line_error

    def test_resume_refuses_a_changed_batch_seed_length_or_training_split_and_writes_nothing(self):
        ls_train(write_config(self.dir, train={"max_steps": 4}))
        before = self.snapshot()
        result = ls_train("--resume", self.run_dir, "--set", "train.batch_size=16", check=False)
        self.assert_one_line_error(result, "train.batch_size is 16 but the run was started with 8",
                                   "resume with the original value")
        result = ls_train("--resume", self.run_dir, "--set", "train.seed=8", check=False)
        self.assert_one_line_error(result, "train.seed is 8 but the run was started with 7")
        result = ls_train("--resume", self.run_dir, "--set", "data.max_length=16", check=False)
        self.assert_one_line_error(result, "data.max_length is 16 but the run was started with 32")
        result = ls_train("--resume", self.run_dir, "--set", "train.shuffle=false", check=False)
        self.assert_one_line_error(result, "train.shuffle is false but the run was started with true")
        other = os.path.join(self.dir, "other.conll")
        shutil.copy(f"{ASSETS}/data/ner_validation.conll", other)
        result = ls_train("--resume", self.run_dir, "--set", f"data.train={other}", check=False)
        self.assert_one_line_error(result, "data.train is not the training split the run was started with")
        self.assertEqual(self.snapshot(), before)

    def test_early_stopping_without_validation_is_refused_and_writes_nothing(self):
        result = ls_train(write_config(self.dir, data={"validation": ""}, train={"early_stopping_patience": 2}),
                          check=False)
        self.assert_one_line_error(result, "train.early_stopping_patience: 2 needs data.validation")
        self.assertFalse(os.path.exists(self.run_dir))

    def test_a_length_past_the_models_positions_and_one_class_are_warned_naming_the_key(self):
        result = ls_train(write_config(self.dir, data={"max_length": 200}, train={"max_steps": 1}))
        warnings = [line for line in result.stdout.splitlines() if line.startswith("warning: data.max_length")]
        self.assertEqual(len(warnings), 1, result.stdout)
        self.assertIn("exceeds the model's max_position_embeddings 128", warnings[0])
        one_class = os.path.join(self.dir, "positive.jsonl")
        with open(f"{ASSETS}/data/sentiment_train.jsonl") as f, open(one_class, "w") as out:
            out.writelines(line for line in f if '"positive"' in line)
        result = ls_train(write_config(self.dir, task={"type": "sequence", "labels": []},
                                       data={"train": one_class, "validation": ""},
                                       train={"max_steps": 1}, output={"overwrite": True}))
        self.assertIn("warning: task.labels: one class ('positive') in the training split", result.stdout)

    def test_a_data_error_leaves_no_run_directory_and_the_fixed_command_runs(self):
        good = os.path.join(self.dir, "validation.conll")
        shutil.copy(f"{ASSETS}/data/ner_validation.conll", good)
        with open(good) as f:
            text = f.read()
        broken = {
            "an unknown tag": text.replace(" B-PER", " B-ORG", 1),
            "a line without its tag": text.replace(" B-LOC\n", "\n", 1),
        }
        cfg = write_config(self.dir, train={"max_steps": 1}, data={"validation": good})
        for what, content in broken.items():
            with self.subTest(what):
                with open(good, "w") as f:
                    f.write(content)
                result = ls_train(cfg, check=False)
                self.assertEqual(result.returncode, 2, result.stderr)
                self.assertIn(good, result.stderr.strip().splitlines()[-1])
                self.assertFalse(os.path.exists(self.run_dir), what)
        missing = write_config(self.dir, train={"max_steps": 1}, data={"test": os.path.join(self.dir, "nope.conll")})
        result = ls_train(missing, check=False)
        self.assertIn("nope.conll", result.stderr)
        self.assertFalse(os.path.exists(self.run_dir))
        with open(good, "w") as f:
            f.write(text)
        ls_train(write_config(self.dir, train={"max_steps": 1}, data={"validation": good}))
        self.assertTrue(os.path.exists(os.path.join(self.run_dir, "state", "trainer.json")))

    def test_a_run_directory_without_state_says_how_to_start_again(self):
        os.makedirs(self.run_dir)
        shutil.copy(write_config(self.dir), os.path.join(self.run_dir, "config.yaml"))
        result = ls_train("--resume", self.run_dir, check=False)
        self.assert_one_line_error(result, "no resumable state", "output.overwrite: true")

    def test_resume_refuses_another_base_model_and_says_what_a_longer_run_does_to_the_schedule(self):
        base = os.path.join(self.dir, "base")
        shutil.copytree(f"{ASSETS}/model", base)
        ls_train(write_config(self.dir, model={"path": base}, train={"max_steps": 4, "eval_every": "epoch"}))
        before = self.snapshot()
        weights = os.path.join(base, "model.safetensors")
        original = load_file(weights)
        save_file({name: value * 0.5 for name, value in original.items()}, weights, metadata={"format": "pt"})
        result = ls_train("--resume", self.run_dir, "--set", "train.max_steps=6", check=False)
        self.assert_one_line_error(result, "model.path is not the base model the run was started with")
        save_file(original, weights, metadata={"format": "pt"})
        config_json = os.path.join(base, "config.json")
        with open(config_json) as f:
            config = json.load(f)
        with open(config_json, "w") as f:
            json.dump(dict(config, rope_theta=config.get("rope_theta", 10000.0) * 2), f)
        result = ls_train("--resume", self.run_dir, "--set", "train.max_steps=6", check=False)
        self.assert_one_line_error(result, "model.path is not the base model")
        self.assertEqual(self.snapshot(), before)
        with open(config_json, "w") as f:
            json.dump(config, f)
        result = ls_train("--resume", self.run_dir, "--set", "train.max_steps=8")
        notice = [line for line in result.stdout.splitlines() if line.startswith("resume: 8 optimizer steps")]
        self.assertEqual(len(notice), 1, result.stdout)
        self.assertIn("not 4 (train.max_steps / train.epochs): the linear schedule is recomputed over 8 steps",
                      notice[0])
        with open(os.path.join(self.run_dir, "state", "trainer.json")) as f:
            state = json.load(f)
        self.assertEqual((state["total_steps"], state["best_metric"]), (8, "entity_f1"))

    def test_pad_id_auto_takes_the_tokenizers_pad_token_and_eos_padding_with_add_eos_is_refused(self):
        llama3 = f"{ASSETS}/model_llama3"
        sentiment = dict(model={"path": llama3, "attention": "causal"}, task={"type": "sequence", "labels": []},
                         data={"train": f"{ASSETS}/data/sentiment_train.jsonl", "validation": ""},
                         train={"max_steps": 1})
        result = ls_train(write_config(self.dir, **sentiment))
        self.assertIn("padding with 602 ('<|finetune_right_pad_id|>', data.pad_id: auto)", result.stdout)
        with open(os.path.join(self.run_dir, "config.yaml")) as f:
            self.assertIn("pad_id: 602", f.read())
        shutil.rmtree(self.run_dir)
        sentiment["data"].update({"pad_id": 601, "add_eos": True})  # <|end_of_text|>
        result = ls_train(write_config(self.dir, **sentiment), check=False)
        self.assert_one_line_error(result, "data.pad_id: 601 is the EOS id", "data.add_eos",
                                   "data.pad_id: auto (here 602, '<|finetune_right_pad_id|>')")
        self.assertFalse(os.path.exists(self.run_dir))
        sentiment["data"].update({"pad_id": 0, "add_eos": False})
        result = ls_train(write_config(self.dir, **sentiment))
        warnings = [line for line in result.stdout.splitlines() if line.startswith("warning: data.pad_id")]
        self.assertEqual(len(warnings), 1, result.stdout)
        self.assertIn("0 is '!', a token text encodes to", warnings[0])
        with open(os.path.join(self.run_dir, "adapter_last", "head_config.json")) as f:
            self.assertEqual(json.load(f)["pad_token_id"], 602)

    def test_resume_may_extend_the_run_and_change_logging(self):
        ls_train(write_config(self.dir, train={"max_steps": 4}))
        ls_train("--resume", self.run_dir, "--set", "train.max_steps=6", "--set", "train.log_every=2",
                 "--set", "output.state_every=1")
        self.assertEqual([s for s, _ in train_losses(self.run_dir)], [1, 2, 3, 4, 6])
        with open(os.path.join(self.run_dir, "state", "trainer.json")) as f:
            self.assertEqual(json.load(f)["step"], 6)

    def test_resume_reads_the_per_rank_rng_files_of_an_older_state(self):
        ls_train(write_config(self.dir, train={"max_steps": 4}))
        state = os.path.join(self.run_dir, "state")
        rng = load_file(os.path.join(state, "rng.safetensors"))
        save_file({name: rows[0].copy() for name, rows in rng.items()}, os.path.join(state, "rng.rank0-of-1.safetensors"))
        os.remove(os.path.join(state, "rng.safetensors"))
        ls_train("--resume", self.run_dir, "--set", "train.max_steps=6")
        self.assertEqual(train_losses(self.run_dir)[-1][0], 6)
        self.assertEqual(sorted(n for n in os.listdir(state) if n.startswith("rng")), ["rng.safetensors"])

    def test_data_parallel_run_saving_best_without_validation_finishes_and_rank0_writes_the_rng(self):
        mpirun = shutil.which("mpirun")
        cfg = write_config(self.dir, train={"max_steps": 4}, output={"save": "best"},
                           data={"validation": "", "test": f"{ASSETS}/data/ner_validation.conll"})
        result = subprocess.run([mpirun, "-np", "2", os.path.join(BIN, "ls_train"), cfg], capture_output=True,
                                text=True)
        self.assertEqual(result.returncode, 0, result.stderr + result.stdout)
        self.assertTrue(os.path.exists(os.path.join(self.run_dir, "predictions_test.jsonl")))
        self.assertFalse(os.path.exists(os.path.join(self.run_dir, "adapter_last")))
        state = os.path.join(self.run_dir, "state")
        self.assertEqual(sorted(n for n in os.listdir(state) if n.startswith("rng")), ["rng.safetensors"])
        rng = load_file(os.path.join(state, "rng.safetensors"))
        self.assertEqual(rng["cpu"].shape[0], 2)
        self.assertFalse((rng["cpu"][0] == rng["cpu"][1]).all(), "the ranks' generators should differ")

    def test_init_from_takes_the_adapters_lora_settings_and_refuses_a_conflicting_key(self):
        first = os.path.join(self.dir, "first")
        os.makedirs(first)
        ls_train(write_config(first, train={"max_steps": 2}))  # LoRA r 4, alpha 8, dropout 0.1
        adapter = os.path.join(first, "run", "adapter_last")
        cfg = write_config(self.dir, train={"max_steps": 2})
        with open(cfg) as f:
            config = json.load(f)
        config["lora"] = {"init_from": adapter}  # r, alpha, dropout and targets left at their defaults
        with open(cfg, "w") as f:
            json.dump(config, f)
        result = ls_train(cfg, "--set", "lora.r=8", check=False)
        self.assert_one_line_error(result, "lora.r", "r 4", adapter)
        self.assertFalse(os.path.exists(self.run_dir))
        result = ls_train(cfg)
        self.assertIn("LoRA r=4 alpha=8 on q_proj,v_proj", result.stdout)
        with open(os.path.join(self.run_dir, "config.yaml")) as f:
            saved = f.read()
        for line in ["  r: 4\n", "  alpha: 8\n", "  dropout: 0.1\n"]:
            self.assertIn(line, saved)

    def test_f16_is_refused_for_training_before_anything_is_written(self):
        result = ls_train(write_config(self.dir, model={"dtype": "f16"}), check=False)
        self.assert_one_line_error(result, "model.dtype", "use bf16 or f32", "loss scaling")
        self.assertFalse(os.path.exists(self.run_dir))


if __name__ == "__main__":
    unittest.main(verbosity=2)
