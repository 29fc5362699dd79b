"""ls_train end to end on each supported model family with a HF tokenizer.json: a LLaMA-3-style
model (the quickstart's, byte-level BPE with <|begin_of_text|>), Mistral (sentencepiece-style BPE
with byte fallback, as HF converts it), Qwen2 and Qwen3 (byte-level BPE, no BOS). Each trains on
the quickstart's sentiment set and learns; ls_predict reads the run back, and ls_export's HF
directory, loaded by plain transformers with its tokenizer.json, predicts the same; Qwen3 also tags the NER
set bidirectionally through tokenizer.json word alignment. Then what needs no tokenizer and what
is refused: pre-tokenized data trains with no tokenizer file, its ids checked against config.json's
vocab_size; a Mistral window shorter than data.max_length stops before anything is written."""
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import unittest
from pathlib import Path

import test_train_e2e as e2e
from test_train_e2e import ASSETS, BIN, SOURCE, ls_train, train_losses

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
from model_reference import write_checkpoint  # noqa: E402


def quickstart_assets_module():
    spec = importlib.util.spec_from_file_location(
        "make_quickstart_assets", os.path.join(SOURCE, "tools", "make_quickstart_assets.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def metaspace_tokenizer(corpus):
    """A sentencepiece-style BPE tokenizer.json as HF writes it for Mistral: <unk> <s> </s>, byte
    fallback, Metaspace pre-tokenizer, <s> added first."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    specials = ["<unk>", "<s>", "</s>"]
    trainer_tok = Tokenizer(models.BPE(unk_token="<unk>"))
    trainer_tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    trainer_tok.train_from_iterator(corpus, trainers.BpeTrainer(
        vocab_size=500, special_tokens=specials, limit_alphabet=60, show_progress=False))
    learned = json.loads(trainer_tok.to_str())["model"]
    vocab = {t: i for i, t in enumerate(specials)}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for piece, _ in sorted(learned["vocab"].items(), key=lambda kv: kv[1]):
        vocab.setdefault(piece, len(vocab))
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in learned["merges"]]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True,
                               byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return tok


def family_spec(family, vocab, **extra):
    spec = dict(family=family, vocab=vocab, hidden=64, inner=128, layers=2, heads=4, kv_heads=2,
                rope=dict(type="default"), theta=1e6, layout="v5")
    spec.update(extra)
    return spec


def write_run_config(directory, model_dir, task="sequence", **sections):
    data = f"{ASSETS}/data"
    if task == "sequence":
        config = {
            "model": {"path": str(model_dir), "attention": "causal"},
            "task": {"type": "sequence", "pooling": "last"},
            "data": {"train": f"{data}/sentiment_train.jsonl", "validation": f"{data}/sentiment_validation.jsonl",
                     "max_length": 32},
            "train": {"metric": "accuracy"},
        }
    else:
        config = {
            "model": {"path": str(model_dir), "attention": "bidirectional"},
            "task": {"type": "token", "labels": ["O", "B-PER", "B-LOC"]},
            "data": {"train": f"{data}/ner_train.conll", "validation": f"{data}/ner_validation.conll",
                     "max_length": 32},
            "train": {},
        }
    config["lora"] = {"r": 8, "alpha": 16, "targets": ["q_proj", "k_proj", "v_proj", "o_proj"]}
    config["train"].update({"epochs": 1, "max_steps": 40, "batch_size": 16, "lr": 5e-3, "log_every": 1,
                            "eval_every": "40", "seed": 3})
    config["output"] = {"dir": os.path.join(directory, "run"), "tensorboard": False, "plot": False}
    for section, values in sections.items():
        config.setdefault(section, {}).update(values)
    path = os.path.join(directory, "cfg.yaml")
    with open(path, "w") as f:
        json.dump(config, f)
    return path


def validation_metric(run_dir, name):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f if line.strip()]
    return [r[name] for r in records if r["split"] == "validation"][-1]


def setUpModule():
    e2e.setUpModule()  # the quickstart assets, the LLaMA-3-style model among them
    global MODELS, TMP
    TMP = tempfile.mkdtemp(prefix="ls_families_")
    assets = quickstart_assets_module()
    corpus = assets.quickstart_corpus(os.path.join(ASSETS, "data"))
    MODELS = {"llama3": Path(ASSETS) / "model_llama3"}

    # As Qwen2.5 ships it: "!" is id 0, the specials after the vocabulary, no BOS, and
    # tokenizer_config.json naming <|endoftext|> as both EOS and pad token.
    byte_level = assets.byte_level_tokenizer(corpus, vocab_size=600, bos=False,
                                             specials=["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    for family, extra in (("qwen2", {}), ("qwen3", dict(head_dim=16))):
        # Qwen pads its embedding beyond the tokenizer (151936 rows for ~151k tokens): so here.
        directory = write_checkpoint(os.path.join(TMP, family), family_spec(family, 640, **extra), seed=11)
        byte_level.save(str(directory / "tokenizer.json"))
        (directory / "tokenizer_config.json").write_text(json.dumps(
            {"bos_token": None, "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
             "tokenizer_class": "Qwen2Tokenizer"}))
        MODELS[family] = directory

    metaspace = metaspace_tokenizer(corpus)
    directory = write_checkpoint(os.path.join(TMP, "mistral"),
                                 family_spec("mistral", metaspace.get_vocab_size(), sliding_window=64), seed=12)
    metaspace.save(str(directory / "tokenizer.json"))
    MODELS["mistral"] = directory


def tearDownModule():
    shutil.rmtree(TMP, ignore_errors=True)


class Families(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ls_family_run_")
        self.run_dir = os.path.join(self.dir, "run")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    assert_one_line_error = e2e.assert_one_line_error

    def test_every_family_trains_sentiment_with_its_tokenizer_json_and_predicts(self):
        for family in ("llama3", "mistral", "qwen2", "qwen3"):
            with self.subTest(family):
                shutil.rmtree(self.run_dir, ignore_errors=True)
                self.assertTrue((MODELS[family] / "tokenizer.json").exists())
                self.assertFalse((MODELS[family] / "tokenizer.model").exists())
                result = ls_train(write_run_config(self.dir, MODELS[family]), check=False)
                self.assertEqual(result.returncode, 0, result.stderr[-2000:])
                self.assertIn("tokenizer.json", result.stdout + result.stderr)
                losses = [loss for _, loss in train_losses(self.run_dir)]
                self.assertEqual(len(losses), 40)
                first, last = sum(losses[:8]) / 8, sum(losses[-8:]) / 8
                self.assertLess(last, 0.6 * first, (family, losses))
                self.assertGreaterEqual(validation_metric(self.run_dir, "accuracy"), 0.8, family)

                out = os.path.join(self.dir, "predictions.jsonl")
                data = f"{ASSETS}/data/sentiment_test.jsonl"
                predict = e2e.subprocess.run([os.path.join(BIN, "ls_predict"), self.run_dir, data, "--out", out],
                                             capture_output=True, text=True)
                self.assertEqual(predict.returncode, 0, predict.stderr)
                with open(out) as f, open(data) as g:
                    predictions = [json.loads(line) for line in f]
                    gold = [json.loads(line)["label"] for line in g if line.strip()]
                self.assertEqual(len(predictions), len(gold))
                agree = sum(p["label"] == y for p, y in zip(predictions, gold)) / len(gold)
                self.assertGreaterEqual(agree, 0.8, family)
                self.assert_export_predicts_as_ls_predict(family, data)

    def ls_predict_probabilities(self, texts):
        """ls_predict's probabilities for `texts`, one dict per text."""
        data = os.path.join(self.dir, "texts.jsonl")
        out = os.path.join(self.dir, "texts_predictions.jsonl")
        with open(data, "w") as f:
            f.writelines(json.dumps({"text": t}) + "\n" for t in texts)
        predict = e2e.subprocess.run([os.path.join(BIN, "ls_predict"), self.run_dir, data, "--out", out],
                                     capture_output=True, text=True)
        self.assertEqual(predict.returncode, 0, predict.stderr)
        with open(out) as f:
            return [json.loads(line)["probabilities"] for line in f]

    def assert_export_predicts_as_ls_predict(self, family, data):
        """ls_export's HF directory, loaded by plain transformers (its tokenizer from the exported
        tokenizer.json, padded batches), gives ls_predict's probabilities: on the test texts, and
        on the same texts ending in "!", which is id 0 in LLaMA-3's and Qwen's vocabularies (HF
        pools at the last token that is not pad_token_id)."""
        import torch
        import transformers
        out = os.path.join(self.dir, "hf_" + family)
        shutil.rmtree(out, ignore_errors=True)
        result = e2e.subprocess.run([os.path.join(BIN, "ls_export"), self.run_dir, out, "--dtype", "f32"],
                                    capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, result.stderr)
        config = json.loads(Path(out, "config.json").read_text())
        self.assertEqual(config["model_type"], "llama" if family == "llama3" else family)
        self.assertTrue(Path(out, "tokenizer.json").exists())
        tokenizer = transformers.AutoTokenizer.from_pretrained(out)
        model = transformers.AutoModelForSequenceClassification.from_pretrained(out).eval()
        pad = config["pad_token_id"]
        self.assertEqual(tokenizer.pad_token_id, pad)
        head = json.loads(Path(self.run_dir, "adapter", "head_config.json").read_text())
        self.assertEqual(head["pad_token_id"], pad)
        self.assertNotEqual(tokenizer.decode([pad]), "!")
        if family in ("llama3", "qwen2", "qwen3"):
            self.assertEqual(tokenizer.convert_ids_to_tokens(0), "!")
            expected = "<|finetune_right_pad_id|>" if family == "llama3" else "<|endoftext|>"
            self.assertEqual(tokenizer.convert_ids_to_tokens(pad), expected)
        with open(data) as f:
            texts = [json.loads(line)["text"] for line in f if line.strip()][:40]
        for ending in ("", "!"):
            batch_texts = [t + ending for t in texts]
            ours_all = self.ls_predict_probabilities(batch_texts)
            worst = 0.0
            for start in range(0, len(batch_texts), 8):
                batch = tokenizer(batch_texts[start:start + 8], padding=True, return_tensors="pt")
                with torch.no_grad():
                    probs = model(**batch).logits.softmax(-1)
                for row, record in zip(probs, ours_all[start:start + 8]):
                    ours = torch.tensor([record[config["id2label"][str(i)]] for i in range(row.numel())])
                    worst = max(worst, float((ours - row).abs().max()))
            self.assertLess(worst, 1e-4, (family, ending))

    def test_qwen3_tags_words_bidirectionally_through_tokenizer_json_alignment(self):
        result = ls_train(write_run_config(self.dir, MODELS["qwen3"], task="token",
                                           train={"epochs": 2, "max_steps": 150, "eval_every": "150"}),
                          check=False)
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        with open(os.path.join(self.run_dir, "predictions_validation.jsonl")) as f:
            first = json.loads(f.readline())
        with open(f"{ASSETS}/data/ner_validation.conll") as f:
            lines = f.read().split("\n\n")[1]  # after -DOCSTART-
        self.assertEqual(first["words"], [line.split()[0] for line in lines.splitlines()])
        self.assertEqual(len(first["tags"]), len(first["words"]))
        # An all-O tagger scores 0 (one epoch, 75 steps, reaches 0.2); the quickstart trains this
        # task 600 steps to go further.
        self.assertGreater(validation_metric(self.run_dir, "entity_f1"), 0.3)

    def pretokenized_model_and_data(self):
        """The LLaMA-3-style model without its tokenizer files, and the sentiment set as ids."""
        from tokenizers import Tokenizer
        model = Path(self.dir) / "model_no_tokenizer"
        model.mkdir()
        for name in ("config.json", "model.safetensors"):
            shutil.copy(MODELS["llama3"] / name, model / name)
        tok = Tokenizer.from_file(str(MODELS["llama3"] / "tokenizer.json"))
        paths = {}
        for split in ("train", "validation"):
            paths[split] = os.path.join(self.dir, f"ids_{split}.jsonl")
            with open(f"{ASSETS}/data/sentiment_{split}.jsonl") as f, open(paths[split], "w") as g:
                for line in f:
                    record = json.loads(line)
                    g.write(json.dumps({"input_ids": tok.encode(record["text"]).ids, "label": record["label"]}) + "\n")
        return model, paths

    def test_pretokenized_data_needs_no_tokenizer_and_ids_are_checked_against_config_vocab_size(self):
        model, paths = self.pretokenized_model_and_data()
        cfg = write_run_config(self.dir, model, data={"train": paths["train"], "validation": paths["validation"]})
        result = ls_train(cfg, check=False)
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        self.assertGreaterEqual(validation_metric(self.run_dir, "accuracy"), 0.8)

        # One id at the model's vocab_size: a one-line error naming file:line and the model.
        with open(paths["train"]) as f:
            records = [json.loads(line) for line in f]
        vocab = json.loads((model / "config.json").read_text())["vocab_size"]
        records[4]["input_ids"][2] = vocab
        with open(paths["train"], "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in records)
        shutil.rmtree(self.run_dir)
        result = ls_train(cfg, check=False)
        self.assert_one_line_error(result, f"{paths['train']}:5", f"token id {vocab}",
                                   f"model's vocabulary of {vocab}")

        # Text data with no tokenizer file: the error names model.path and what is missing.
        shutil.rmtree(self.run_dir, ignore_errors=True)
        result = ls_train(write_run_config(self.dir, model), check=False)
        self.assert_one_line_error(result, "model.path", "neither tokenizer.json nor tokenizer.model")
        self.assertFalse(os.path.exists(self.run_dir))

    def test_a_mistral_window_shorter_than_max_length_is_refused_before_anything_is_written(self):
        model = Path(self.dir) / "mistral_window16"
        shutil.copytree(MODELS["mistral"], model)
        config = json.loads((model / "config.json").read_text())
        config["sliding_window"] = 16
        (model / "config.json").write_text(json.dumps(config))
        result = ls_train(write_run_config(self.dir, model), check=False)
        self.assert_one_line_error(result, "data.max_length: 32", "sliding attention window of 16",
                                   "at most 16")
        self.assertFalse(os.path.exists(self.run_dir))
        result = ls_train(write_run_config(self.dir, model, data={"max_length": 16}), check=False)
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])


if __name__ == "__main__":
    unittest.main(verbosity=2)
