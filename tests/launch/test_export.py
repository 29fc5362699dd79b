"""ls_export and self-describing adapters, end to end on the quickstart's tiny model: short runs are
trained, exported, and the exported directory is loaded with plain transformers (Auto classes, no
PEFT, no ls-train code) and compared with ls-train's own predictions on padded batches (batch > 1,
different lengths): a causal sentiment run (float32: probabilities within 1e-4 of ls_predict; bf16:
within bf16 rounding; sharded: the same model), a bidirectional NER run (logits within 1e-4 of
ls_forward once the lines of docs/EXPORT.md unmask the attention; stock HF differs, as ls_export
warns; also from layer 1 and attending to padding), a mean-pooled run and a normalised regression run
(docs/EXPORT.md's pooling and rescaling lines), a multi-label run on a Qwen2 base. Also: ls_predict from an adapter
directory alone equals ls_predict from the run; adapters saved before they described their run
still load from the run directory; bad input is one line, exit 2, nothing written."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import sentencepiece
import torch
from safetensors.torch import load_file, save_file

os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
import transformers  # noqa: E402

transformers.logging.set_verbosity_error()

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from model_reference import write_checkpoint  # noqa: E402
from test_train_e2e import ASSETS, BIN, setUpModule  # noqa: E402,F401  (makes the quickstart assets)

MAX_LENGTH = 32
WORST = {}  # the largest difference of each comparison, printed at the end


def tearDownModule():
    print("worst differences vs ls-train:", {k: f"{v:.3g}" for k, v in sorted(WORST.items())})
SENTIMENT = ["negative", "positive"]
NER = ["O", "B-PER", "B-LOC"]


def run_program(name, *args, check=True):
    result = subprocess.run([os.path.join(BIN, name), *map(str, args)], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{name} failed ({result.returncode}): {result.stderr}")
    return result


def train(directory, kind="sequence", **sections):
    """A short run on the quickstart data; returns its run directory."""
    if kind == "sequence":
        config = {
            "model": {"path": f"{ASSETS}/model", "attention": "causal"},
            "task": {"type": "sequence", "labels": SENTIMENT},
            "data": {"train": f"{ASSETS}/data/sentiment_train.jsonl", "max_length": MAX_LENGTH},
        }
    else:
        config = {
            "model": {"path": f"{ASSETS}/model", "attention": "bidirectional"},
            "task": {"type": "token", "labels": NER},
            "data": {"train": f"{ASSETS}/data/ner_train.conll", "max_length": MAX_LENGTH},
        }
    config["lora"] = {"r": 4, "alpha": 8, "dropout": 0.1, "targets": ["q_proj", "v_proj", "down_proj"]}
    config["train"] = {"epochs": 1, "max_steps": 6, "batch_size": 8, "lr": 5e-3, "seed": 3}
    config["output"] = {"dir": os.path.join(directory, "run"), "tensorboard": False, "plot": False}
    for section, values in sections.items():
        config.setdefault(section, {}).update(values)
    cfg = os.path.join(directory, "cfg.yaml")
    with open(cfg, "w") as f:
        json.dump(config, f)
    run_program("ls_train", cfg)
    return os.path.join(directory, "run")


def read_json(path):
    with open(path) as f:
        return json.load(f)


def write_json(path, value):
    with open(path, "w") as f:
        json.dump(value, f)


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def sentiment_texts():
    return [r["text"] for r in read_jsonl(f"{ASSETS}/data/sentiment_validation.jsonl")]


def padded_batches(rows, size=5):
    """Right-padded (pad id 0) input_ids/attention_mask batches of `size` id lists."""
    for start in range(0, len(rows), size):
        chunk = rows[start:start + size]
        length = max(len(ids) for ids in chunk)
        ids = torch.tensor([e + [0] * (length - len(e)) for e in chunk])
        mask = torch.tensor([[1] * len(e) + [0] * (length - len(e)) for e in chunk])
        yield start, ids, mask


def sp_encode(text):
    tokenizer = sentencepiece.SentencePieceProcessor(model_file=f"{ASSETS}/model/tokenizer.model")
    return [tokenizer.bos_id()] + tokenizer.encode(text)[:MAX_LENGTH - 1]


def hf_probabilities(model, rows, pool=None):
    """Class probabilities of `model` on padded batches of `rows`; `pool` replaces HF's last-token
    pooling (docs/EXPORT.md)."""
    out, padded = [], 0
    for _, ids, mask in padded_batches(rows):
        padded += int((mask == 0).any())
        with torch.no_grad():
            logits = pool(model, ids, mask) if pool else model(input_ids=ids, attention_mask=mask).logits
        out += list(logits.float().softmax(-1))
    return out, padded


class Export(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="ls_export_")
        os.makedirs(os.path.join(cls.dir, "causal"))
        cls.run_dir = train(os.path.join(cls.dir, "causal"))
        cls.predictions = os.path.join(cls.dir, "causal", "predictions.jsonl")
        run_program("ls_predict", cls.run_dir, f"{ASSETS}/data/sentiment_validation.jsonl", "--out", cls.predictions)
        cls.ours = read_jsonl(cls.predictions)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def export(self, name, *args, run=None):
        out = os.path.join(self.dir, name)
        result = run_program("ls_export", run or self.run_dir, out, *args)
        return out, result

    def assert_probabilities_match(self, out, tolerance, model_class=transformers.AutoModelForSequenceClassification):
        model = model_class.from_pretrained(out).eval()
        rows = [sp_encode(t) for t in sentiment_texts()]
        probs, padded = hf_probabilities(model, rows)
        self.assertGreater(padded, 0, "no batch was padded: the check would not cover padding")
        self.assertEqual(len(probs), len(self.ours))
        worst = 0.0
        for record, p in zip(self.ours, probs):
            mine = torch.tensor([record["probabilities"][name] for name in SENTIMENT])
            worst = max(worst, float((mine - p).abs().max()))
            if tolerance < 1e-3:
                self.assertEqual(record["label"], SENTIMENT[int(p.argmax())])
        WORST[f"{os.path.basename(out)} probabilities"] = worst
        self.assertLess(worst, tolerance, f"largest probability difference {worst}")
        return model

    def test_float32_export_predicts_padded_batches_as_ls_predict(self):
        out, result = self.export("hf_f32", "--dtype", "f32")
        self.assertIn("LlamaForSequenceClassification", result.stdout)
        self.assertEqual(result.stderr, "", "a causal, last-pooled run needs no warning")
        config = read_json(os.path.join(out, "config.json"))
        self.assertEqual(config["architectures"], ["LlamaForSequenceClassification"])
        self.assertEqual(config["id2label"], {"0": "negative", "1": "positive"})
        self.assertEqual(config["label2id"], {"negative": 0, "positive": 1})
        self.assertEqual(config["problem_type"], "single_label_classification")
        self.assertEqual(config["pad_token_id"], 0)
        self.assertEqual(config["hidden_size"], 64)  # the base's own fields
        self.assertEqual(config["ls_train"]["attention"], "causal")
        weights = load_file(os.path.join(out, "model.safetensors"))
        self.assertNotIn("lm_head.weight", weights)
        self.assertEqual(tuple(weights["score.weight"].shape), (2, 64))
        self.assertNotIn("score.bias", weights)
        for name in ["tokenizer.model", "tokenizer_config.json"]:
            self.assertTrue(os.path.exists(os.path.join(out, name)), name)
        self.assertFalse(os.path.exists(out + ".tmp"))
        # The merge changed the adapted weights and only them.
        base = load_file(f"{ASSETS}/model/model.safetensors")
        q = "model.layers.0.self_attn.q_proj.weight"
        self.assertGreater(float((weights[q] - base[q]).abs().max()), 0)
        k = "model.layers.0.self_attn.k_proj.weight"
        self.assertTrue(torch.equal(weights[k], base[k]))
        model = self.assert_probabilities_match(out, 1e-4)
        self.assertEqual(model.dtype, torch.float32)
        # The exported tokenizer encodes as the run did.
        tokenizer = transformers.AutoTokenizer.from_pretrained(out)
        texts = sentiment_texts()[:8]
        encoded = tokenizer(texts, padding=True, truncation=True, max_length=MAX_LENGTH)
        for text, ids, mask in zip(texts, encoded["input_ids"], encoded["attention_mask"]):
            self.assertEqual([i for i, m in zip(ids, mask) if m], sp_encode(text), text)

    def test_bf16_export_holds_bf16_weights_and_predicts_within_bf16_rounding(self):
        out, _ = self.export("hf_bf16", "--dtype", "bf16")
        config = read_json(os.path.join(out, "config.json"))
        self.assertEqual(config.get("dtype", config.get("torch_dtype")), "bfloat16")
        weights = load_file(os.path.join(out, "model.safetensors"))
        self.assertTrue(all(t.dtype == torch.bfloat16 for t in weights.values()))
        model = self.assert_probabilities_match(out, 1e-2)
        self.assertEqual(model.dtype, torch.bfloat16)

    def test_sharded_export_loads_as_the_same_model(self):
        out, result = self.export("hf_sharded", "--max-shard-bytes", 60000)
        self.assertFalse(os.path.exists(os.path.join(out, "model.safetensors")))
        index = read_json(os.path.join(out, "model.safetensors.index.json"))
        files = sorted(set(index["weight_map"].values()))
        self.assertGreater(len(files), 2)
        self.assertEqual(files[0], f"model-00001-of-{len(files):05d}.safetensors")
        self.assertIn(f"{len(files)} shards", result.stdout)
        total = 0
        for name in files:
            for tensor_name, tensor in load_file(os.path.join(out, name)).items():
                self.assertEqual(index["weight_map"][tensor_name], name)
                total += tensor.numel() * tensor.element_size()
        self.assertEqual(index["metadata"]["total_size"], total)
        self.assert_probabilities_match(out, 1e-4)

    def test_bad_input_is_one_line_exit_2_and_nothing_written(self):
        out = os.path.join(self.dir, "refused")
        cases = [
            ([os.path.join(self.dir, "no_such_run"), out], "no_such_run: does not exist"),
            ([self.run_dir, out, "--dtype", "f64"], "--dtype: 'f64'"),
            ([self.run_dir, out, "--adapter", os.path.join(self.dir, "no_adapter")], "adapter_config.json missing"),
        ]
        for args, message in cases:
            result = run_program("ls_export", *args, check=False)
            self.assertEqual(result.returncode, 2, result.stderr)
            self.assertEqual(len(result.stderr.strip().splitlines()), 1, result.stderr)
            self.assertIn(message, result.stderr)
            self.assertFalse(os.path.exists(out))
            self.assertFalse(os.path.exists(out + ".tmp"))
        os.makedirs(out)
        with open(os.path.join(out, "keep.txt"), "w") as f:
            f.write("mine\n")
        result = run_program("ls_export", self.run_dir, out, check=False)
        self.assertEqual(result.returncode, 2)
        self.assertEqual(len(result.stderr.strip().splitlines()), 1, result.stderr)
        self.assertIn("exists and is not empty", result.stderr)
        self.assertEqual(os.listdir(out), ["keep.txt"])
        self.assertFalse(os.path.exists(out + ".tmp"))

    def test_adapter_directory_alone_predicts_as_the_run_directory(self):
        # A copy elsewhere, so nothing of the run directory can be read through it.
        adapter = os.path.join(self.dir, "moved_adapter")
        shutil.copytree(os.path.join(self.run_dir, "adapter_last"), adapter)
        described = read_json(os.path.join(adapter, "adapter_config.json"))
        self.assertEqual(described["base_model_name_or_path"], f"{ASSETS}/model")
        head = read_json(os.path.join(adapter, "head_config.json"))
        self.assertEqual(head["id2label"], {"0": "negative", "1": "positive"})
        self.assertEqual(head["pad_token_id"], 0)
        self.assertEqual(head["ls_train"]["run"]["model"]["attention"], "causal")
        self.assertEqual(head["ls_train"]["run"]["data"]["max_length"], MAX_LENGTH)
        data = f"{ASSETS}/data/sentiment_validation.jsonl"
        from_run = os.path.join(self.dir, "from_run.jsonl")
        run_program("ls_predict", self.run_dir, data, "--adapter", "last", "--out", from_run)
        expected = read_jsonl(from_run)
        for extra in ([], ["--model", f"{ASSETS}/model"]):
            mine = os.path.join(self.dir, "from_adapter.jsonl")
            run_program("ls_predict", adapter, data, "--out", mine, *extra)
            self.assertEqual(read_jsonl(mine), expected, extra)
        # A base model that is not there: one line naming the key and the flag.
        described["base_model_name_or_path"] = "/nonexistent/base"
        write_json(os.path.join(adapter, "adapter_config.json"), described)
        result = run_program("ls_predict", adapter, data, check=False)
        self.assertEqual(result.returncode, 2)
        self.assertEqual(len(result.stderr.strip().splitlines()), 1, result.stderr)
        self.assertIn("base_model_name_or_path '/nonexistent/base'", result.stderr)
        self.assertIn("--model", result.stderr)
        run_program("ls_predict", adapter, data, "--out", mine, "--model", f"{ASSETS}/model")
        self.assertEqual(read_jsonl(mine), expected)

    def test_adapter_reads_the_tokenizer_its_run_recorded_and_refuses_another(self):
        """The run names its tokenizer (model.tokenizer): an adapter directory reads that file
        even when the base directory holds another of the same name; without it, the base's is
        used with a warning, and a tokenizer other than the recorded one is refused naming both."""
        work = os.path.join(self.dir, "tokenizer_swap")
        base, own = os.path.join(work, "base"), os.path.join(work, "own")
        shutil.copytree(f"{ASSETS}/model", base)
        os.makedirs(own)
        shutil.copy(os.path.join(base, "tokenizer.model"), os.path.join(own, "tokenizer.model"))
        run_dir = train(work, model={"path": base, "tokenizer": os.path.join(own, "tokenizer.model")})
        # The base directory's tokenizer.model becomes another tokenizer (a smaller vocabulary).
        texts = os.path.join(work, "corpus.txt")
        with open(texts, "w") as f:
            f.writelines(r["text"] + "\n" for r in read_jsonl(f"{ASSETS}/data/sentiment_train.jsonl"))
        sentencepiece.SentencePieceTrainer.train(
            input=texts, model_prefix=os.path.join(work, "other"), vocab_size=400, model_type="bpe",
            byte_fallback=True, bos_id=1, eos_id=2, unk_id=0, pad_id=-1, minloglevel=2)
        shutil.copy(os.path.join(work, "other.model"), os.path.join(base, "tokenizer.model"))

        data = f"{ASSETS}/data/sentiment_validation.jsonl"
        expected, mine = os.path.join(work, "from_run.jsonl"), os.path.join(work, "from_adapter.jsonl")
        run_program("ls_predict", run_dir, data, "--out", expected)
        adapter = os.path.join(run_dir, "adapter_last")
        run_program("ls_predict", adapter, data, "--out", mine)
        self.assertEqual(read_jsonl(mine), read_jsonl(expected))
        head = read_json(os.path.join(adapter, "head_config.json"))
        self.assertTrue(head["ls_train"]["tokenizer_fingerprint"].startswith("crc32:"))

        # The recorded file gone: the base's, which is another tokenizer, is refused; the same
        # tokenizer in the base directory is used with a warning.
        os.rename(os.path.join(own, "tokenizer.model"), os.path.join(work, "moved.model"))
        for program, args in (("ls_predict", [adapter, data, "--out", mine]),
                              ("ls_export", [adapter, os.path.join(work, "hf")])):
            result = run_program(program, *args, check=False)
            self.assertEqual(result.returncode, 2, result.stderr)
            error = result.stderr.strip().splitlines()[-1]
            self.assertIn(os.path.join(base, "tokenizer.model"), error)
            self.assertIn("not the tokenizer this adapter was trained with", error)
            self.assertIn(os.path.join(own, "tokenizer.model"), error)
            self.assertFalse(os.path.exists(os.path.join(work, "hf")))
        shutil.copy(os.path.join(work, "moved.model"), os.path.join(base, "tokenizer.model"))
        result = run_program("ls_predict", adapter, data, "--out", mine)
        self.assertIn("warning:", result.stderr)
        self.assertIn("is not here; using " + os.path.join(base, "tokenizer.model"), result.stderr)
        self.assertEqual(read_jsonl(mine), read_jsonl(expected))
        # A hand-edited fingerprint of the wrong type: one line, not an internal error.
        head["ls_train"]["tokenizer_fingerprint"] = 5
        write_json(os.path.join(adapter, "head_config.json"), head)
        result = run_program("ls_predict", adapter, data, "--out", mine, check=False)
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIn("ls_train.tokenizer_fingerprint must be a string", result.stderr)

    def test_export_with_add_eos_tokenizes_as_the_run_for_sentencepiece_and_tokenizer_json(self):
        """data.add_eos: the exported tokenizer (AutoTokenizer, no ls-train code) gives the run's
        ids, BOS and EOS included, for a sentencepiece model and a LLaMA-3-style tokenizer.json,
        and the exported model the run's probabilities."""
        texts = sentiment_texts()[:12]
        for name, model in (("sentencepiece", f"{ASSETS}/model"), ("tokenizer_json", f"{ASSETS}/model_llama3")):
            with self.subTest(name):
                work = os.path.join(self.dir, "eos_" + name)
                os.makedirs(work)
                run_dir = train(work, model={"path": model}, data={"add_eos": True}, train={"max_steps": 2})
                tokenizer_file = os.path.join(model, "tokenizer.model" if name == "sentencepiece" else "tokenizer.json")
                ours = subprocess.run([os.path.join(BIN, "ls_tokenize"), "--tokenizer", tokenizer_file, "--eos"],
                                      input="\n".join(texts) + "\n", capture_output=True, text=True, check=True)
                run_ids = [json.loads(line) for line in ours.stdout.splitlines()]
                out, _ = self.export("hf_eos_" + name, "--dtype", "f32", run=run_dir)
                tokenizer = transformers.AutoTokenizer.from_pretrained(out)
                self.assertEqual([tokenizer(t).input_ids for t in texts], run_ids)
                self.assertTrue(all(ids[-1] == tokenizer.eos_token_id for ids in run_ids))

                data = os.path.join(work, "texts.jsonl")
                with open(data, "w") as f:
                    f.writelines(json.dumps({"text": t}) + "\n" for t in texts)
                predictions = os.path.join(work, "predictions.jsonl")
                run_program("ls_predict", run_dir, data, "--out", predictions)
                model_hf = transformers.AutoModelForSequenceClassification.from_pretrained(out).eval()
                batch = tokenizer(texts, padding=True, return_tensors="pt")
                with torch.no_grad():
                    probs = model_hf(**batch).logits.softmax(-1)
                worst = max(float((torch.tensor([r["probabilities"][n] for n in SENTIMENT]) - p).abs().max())
                            for r, p in zip(read_jsonl(predictions), probs))
                WORST[f"add_eos {name} probabilities"] = worst
                self.assertLess(worst, 1e-4)

    def test_adapters_saved_before_they_described_their_run_still_load_from_the_run(self):
        old_run = os.path.join(self.dir, "old_run")
        shutil.copytree(self.run_dir, old_run)
        adapter = os.path.join(old_run, "adapter_last")
        head_file = os.path.join(adapter, "head_config.json")
        head = read_json(head_file)
        for key in ("id2label", "label2id", "pad_token_id"):
            del head[key]
        del head["ls_train"]["run"]
        write_json(head_file, head)
        config_file = os.path.join(adapter, "adapter_config.json")
        config = read_json(config_file)
        config["base_model_name_or_path"] = None
        write_json(config_file, config)
        data = f"{ASSETS}/data/sentiment_validation.jsonl"
        mine = os.path.join(self.dir, "old.jsonl")
        run_program("ls_predict", old_run, data, "--adapter", "last", "--out", mine)
        theirs = os.path.join(self.dir, "new.jsonl")
        run_program("ls_predict", self.run_dir, data, "--adapter", "last", "--out", theirs)
        self.assertEqual(read_jsonl(mine), read_jsonl(theirs))
        result = run_program("ls_predict", adapter, data, "--model", f"{ASSETS}/model", check=False)
        self.assertEqual(result.returncode, 2)
        self.assertEqual(len(result.stderr.strip().splitlines()), 1, result.stderr)
        self.assertIn("use its run directory", result.stderr)

    def test_mean_pooled_export_warns_and_the_documented_pooling_matches_ls_predict(self):
        directory = os.path.join(self.dir, "mean")
        os.makedirs(directory)
        run = train(directory, task={"pooling": "mean"})
        predictions = os.path.join(directory, "predictions.jsonl")
        run_program("ls_predict", run, f"{ASSETS}/data/sentiment_validation.jsonl", "--out", predictions)
        ours = read_jsonl(predictions)
        out, result = self.export("hf_mean", run=run)
        self.assertIn("pools with mean", result.stderr)
        self.assertEqual(read_json(os.path.join(out, "config.json"))["ls_train"]["pooling"], "mean")
        model = transformers.AutoModelForSequenceClassification.from_pretrained(out).eval()

        def mean_pool(model, ids, mask):  # docs/EXPORT.md
            logits = model.score(model.model(input_ids=ids, attention_mask=mask).last_hidden_state)
            keep = mask.unsqueeze(-1).to(logits.dtype)
            return (logits * keep).sum(1) / keep.sum(1)

        probs, _ = hf_probabilities(model, [sp_encode(t) for t in sentiment_texts()], pool=mean_pool)
        worst = max(float((torch.tensor([r["probabilities"][n] for n in SENTIMENT]) - p).abs().max())
                    for r, p in zip(ours, probs))
        WORST["mean pooling probabilities"] = worst
        self.assertLess(worst, 1e-4)

    def test_normalised_regression_export_warns_and_the_documented_rescaling_matches_ls_predict(self):
        directory = os.path.join(self.dir, "regression")
        os.makedirs(directory)
        run = train(directory, task={"problem_type": "regression", "normalize_targets": True, "labels": []},
                    data={"train": f"{ASSETS}/data/rating_train.jsonl", "label_field": "score"})
        data = f"{ASSETS}/data/rating_test.jsonl"
        predictions = os.path.join(directory, "predictions.jsonl")
        run_program("ls_predict", run, data, "--out", predictions)
        ours = [r["prediction"] for r in read_jsonl(predictions)]
        out, result = self.export("hf_regression", run=run)
        self.assertIn("normalised its targets", result.stderr)
        config = read_json(os.path.join(out, "config.json"))
        self.assertEqual(config["problem_type"], "regression")
        self.assertNotEqual(config["ls_train"]["target_std"], 1.0)
        model = transformers.AutoModelForSequenceClassification.from_pretrained(out).eval()
        self.assertEqual(model.config.num_labels, 1)
        rows = [sp_encode(r["text"]) for r in read_jsonl(data)]
        worst, scale = 0.0, config["ls_train"]["target_std"]
        for start, ids, mask in padded_batches(rows):
            with torch.no_grad():
                logits = model(input_ids=ids, attention_mask=mask).logits[:, 0]
            rescaled = logits * config["ls_train"]["target_std"] + config["ls_train"]["target_mean"]  # docs
            for mine, theirs in zip(ours[start:start + 5], rescaled):
                worst = max(worst, abs(mine - float(theirs)) / scale)
        self.assertEqual(len(ours), len(rows))
        WORST["regression relative"] = worst
        self.assertLess(worst, 1e-4)

    def test_qwen2_multilabel_export_is_a_qwen2_classifier_with_ls_predicts_probabilities(self):
        directory = os.path.join(self.dir, "qwen2")
        base = os.path.join(directory, "base")
        write_checkpoint(base, {"family": "qwen2", "vocab": 400, "hidden": 64, "inner": 128, "layers": 2,
                                "heads": 4, "kv_heads": 2, "rope": {"type": "default"}, "layout": "v5"}, seed=11)
        shutil.copy(f"{ASSETS}/model/tokenizer.model", base)
        labels = ["acting", "music", "story"]
        run = train(directory, model={"path": base},
                    task={"problem_type": "multi_label", "labels": labels, "threshold": 0.4},
                    data={"train": f"{ASSETS}/data/aspects_train.jsonl", "label_field": "labels"})
        data = f"{ASSETS}/data/aspects_validation.jsonl"
        predictions = os.path.join(directory, "predictions.jsonl")
        run_program("ls_predict", run, data, "--out", predictions)
        ours = read_jsonl(predictions)
        out, result = self.export("hf_qwen2", run=run)
        self.assertIn("Qwen2ForSequenceClassification", result.stdout)
        config = read_json(os.path.join(out, "config.json"))
        self.assertEqual(config["model_type"], "qwen2")
        self.assertEqual(config["problem_type"], "multi_label_classification")
        self.assertEqual(config["ls_train"]["threshold"], 0.4)
        model = transformers.AutoModelForSequenceClassification.from_pretrained(out).eval()
        self.assertEqual(type(model).__name__, "Qwen2ForSequenceClassification")
        rows = [sp_encode(r["text"]) for r in read_jsonl(data)]
        worst, padded = 0.0, 0
        for start, ids, mask in padded_batches(rows):
            padded += int((mask == 0).any())
            with torch.no_grad():
                probs = model(input_ids=ids, attention_mask=mask).logits.sigmoid()
            for record, p in zip(ours[start:start + 5], probs):
                mine = torch.tensor([record["probabilities"][name] for name in labels])
                worst = max(worst, float((mine - p).abs().max()))
                self.assertEqual(record["labels"], [n for n, q in zip(labels, p) if q >= 0.4])
        self.assertGreater(padded, 0)
        WORST["qwen2 multi-label probabilities"] = worst
        self.assertLess(worst, 1e-4)


def unmask_layers(model, first_layer=0, attend_to_padding=False):
    """docs/EXPORT.md, verbatim: layers >= first_layer of an exported model attend bidirectionally."""
    def hook(module, args, kwargs):
        mask = kwargs.get("attention_mask")  # [B, 1, Q, K], bool or additive float; None: no padding
        if mask is not None:
            row = mask[..., -1:, :]
            if attend_to_padding:
                row = torch.ones_like(row) if mask.dtype == torch.bool else torch.zeros_like(row)
            kwargs["attention_mask"] = row.expand_as(mask)
        return args, kwargs
    for layer in model.model.layers[first_layer:]:
        layer.self_attn.is_causal = False
        layer.register_forward_pre_hook(hook, with_kwargs=True)


class TokenExport(unittest.TestCase):
    def test_bidirectional_token_export_matches_ls_forward_with_the_documented_unmasking(self):
        with tempfile.TemporaryDirectory() as directory:
            run = train(directory, kind="token")
            # The adapter alone reads CoNLL and tags words as the run does (its data options travel).
            data = f"{ASSETS}/data/ner_validation.conll"
            expected, mine = os.path.join(directory, "run.jsonl"), os.path.join(directory, "adapter.jsonl")
            run_program("ls_predict", run, data, "--out", expected)
            run_program("ls_predict", os.path.join(run, "adapter"), data, "--out", mine)
            self.assertEqual(read_jsonl(mine), read_jsonl(expected))
            self.assertIn("tags", read_jsonl(mine)[0])
            out = os.path.join(directory, "hf")
            result = run_program("ls_export", run, out)
            self.assertIn("LlamaForTokenClassification", result.stdout)
            self.assertIn("attention is bidirectional", result.stderr)
            self.assertIn("stock HF runs this model causally", result.stderr)
            config = read_json(os.path.join(out, "config.json"))
            self.assertEqual(config["architectures"], ["LlamaForTokenClassification"])
            self.assertEqual(config["id2label"], {str(i): n for i, n in enumerate(NER)})
            self.assertEqual(config["ls_train"]["attention"], "bidirectional")
            weights = load_file(os.path.join(out, "model.safetensors"))
            self.assertEqual(tuple(weights["score.bias"].shape), (3,))

            # Padded batches of real sentences (different lengths), and one unpadded row, where
            # HF skips the mask and sdpa falls back on the layer's is_causal.
            sentences = []
            with open(f"{ASSETS}/data/ner_validation.conll") as f:
                words = []
                for line in f:
                    if line.strip():
                        words.append(line.split()[0])
                    elif words:
                        sentences.append(" ".join(words))
                        words = []
            rows = [sp_encode(s) for s in sentences[:10]]
            batches = [(ids, mask) for _, ids, mask in padded_batches(rows)]
            batches.append((torch.tensor([rows[0]]), torch.ones(1, len(rows[0]), dtype=torch.long)))
            self.assertTrue(any(bool((m == 0).any()) for _, m in batches))

            def load():
                return transformers.AutoModelForTokenClassification.from_pretrained(out).eval()

            def logits(model):
                with torch.no_grad():
                    return [model(input_ids=ids, attention_mask=mask).logits for ids, mask in batches]

            stock = logits(load())
            model = load()
            model.config.is_causal = False  # docs/EXPORT.md: LS-unLLaMA in stock HF
            for layer in model.model.layers:
                layer.self_attn.is_causal = False
            unmasked = logits(model)
            hooked = {}
            for first_layer, attend_to_padding in ((0, False), (1, False), (0, True)):
                model = load()
                unmask_layers(model, first_layer, attend_to_padding)
                hooked[first_layer, attend_to_padding] = logits(model)

            def ls_forward_logits(attention, *extra):
                result = []
                for i, (ids, mask) in enumerate(batches):
                    inputs = os.path.join(directory, f"in{i}.safetensors")
                    save_file({"input_ids": ids.contiguous(), "attention_mask": mask.contiguous()}, inputs)
                    forward = os.path.join(directory, f"out{i}.safetensors")
                    run_program("ls_forward", "--model", f"{ASSETS}/model", "--adapter", os.path.join(run, "adapter"),
                                "--task", "token", "--attention", attention, "--inputs", inputs, "--out", forward, *extra)
                    result.append(load_file(forward)["logits"])
                return result

            def worst(hf, ours, name):
                error = 0.0
                for (_, mask), a, b in zip(batches, hf, ours):
                    keep = mask.bool()
                    error = max(error, float((a[keep] - b[keep]).abs().max() / b[keep].abs().max()))
                WORST[f"token logits relative, {name}"] = error
                return error

            bidirectional = ls_forward_logits("bidirectional")
            self.assertLess(worst(unmasked, bidirectional, "is_causal lines"), 1e-4)
            self.assertLess(worst(hooked[0, False], bidirectional, "hook"), 1e-4)
            self.assertLess(worst(hooked[1, False], ls_forward_logits("bidirectional:1-"), "hook from layer 1"), 1e-4)
            self.assertLess(worst(hooked[0, True], ls_forward_logits("bidirectional", "--attend-to-padding"),
                                  "hook attending to padding"), 1e-4)
            self.assertGreater(worst(hooked[0, True], bidirectional, "attending to padding vs not"), 1e-3,
                               "attending to padding should change the padded rows")
            self.assertGreater(worst(stock, bidirectional, "stock HF (causal)"), 1e-3,
                               "stock HF should differ: it runs causally")


if __name__ == "__main__":
    unittest.main()
