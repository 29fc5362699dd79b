"""ls_serve through the clients users already have (issue #22): huggingface_hub's InferenceClient
from pip, unmodified, pointed at the server's URL, for a sequence run and a NER run, gets the labels
and scores ls_predict gives; the TEI routes (POST /predict, GET /info) and vLLM's (POST /classify,
GET /v1/models) answer in those servers' published shapes, checked field by field."""
import os

# The tests run with HF_HUB_OFFLINE=1 and TRANSFORMERS_OFFLINE=1 (nothing is downloaded), which also
# stop huggingface_hub from reaching this local server: clear both before huggingface_hub reads them.
os.environ.pop("HF_HUB_OFFLINE", None)
os.environ.pop("TRANSFORMERS_OFFLINE", None)

import json  # noqa: E402
import math  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import unittest  # noqa: E402

from huggingface_hub import InferenceClient  # noqa: E402

from test_serve import Server, conll_sentences, ls_predict_lines, ls_predict_sentences  # noqa: E402
from test_train_e2e import ASSETS, ls_train, setUpModule, write_config  # noqa: E402,F401

DATA = f"{ASSETS}/data"


def post(server, path, body):
    return server.request("POST", path, body)


def char_offsets(text):
    """[start, end) of each whitespace-separated word of `text`, in characters."""
    return [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]


class ServedRun(unittest.TestCase):
    """A class whose setUpClass trains cls.run_dir under cls.dir, then calls serve(); the server and
    the directory go at tearDownClass."""

    @classmethod
    def serve(cls):
        cls.server = Server(cls.run_dir, log_dir=cls.dir)
        cls.url = f"http://127.0.0.1:{cls.server.port}"

    @classmethod
    def tearDownClass(cls):
        cls.server.close()
        shutil.rmtree(cls.dir, ignore_errors=True)


class SequenceClients(ServedRun):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="ls_serve_clients_seq_")
        ls_train(write_config(cls.dir, model={"attention": "causal"},
                              task={"type": "sequence", "labels": ["negative", "positive"]},
                              data={"train": f"{DATA}/sentiment_train.jsonl",
                                    "validation": f"{DATA}/sentiment_validation.jsonl"},
                              train={"max_steps": 20}))
        cls.run_dir = os.path.join(cls.dir, "run")
        with open(f"{DATA}/sentiment_validation.jsonl") as f:
            cls.texts = [json.loads(line)["text"] for line in f][:8] + ["what a superb film!"]
        inputs = os.path.join(cls.dir, "inputs.jsonl")
        with open(inputs, "w") as f:
            f.writelines(json.dumps({"text": t}) + "\n" for t in cls.texts)
        cls.expected = ls_predict_lines(cls.run_dir, inputs, os.path.join(cls.dir, "pred.jsonl"))
        cls.serve()

    def test_inference_client_text_classification_gets_ls_predicts_scores(self):
        client = InferenceClient(self.url)
        for text, want in zip(self.texts, self.expected):
            got = client.text_classification(text)
            self.assertEqual([e.label for e in got],
                             sorted(want["probabilities"], key=want["probabilities"].get, reverse=True))
            for element in got:
                self.assertAlmostEqual(element.score, want["probabilities"][element.label], delta=1e-5)
            top = client.text_classification(text, top_k=1)
            self.assertEqual(len(top), 1)
            self.assertEqual(top[0].label, got[0].label)
            # Raw logits: their softmax is the probabilities.
            raw = client.text_classification(text, function_to_apply="none")
            total = sum(math.exp(e.score) for e in raw)
            for element in raw:
                self.assertAlmostEqual(math.exp(element.score) / total, want["probabilities"][element.label],
                                       delta=1e-5)

    def test_tei_predict_takes_a_batch_and_answers_a_list_per_input(self):
        status, headers, body = post(self.server, "/predict", {"inputs": self.texts[:3]})
        self.assertEqual(status, 200, body)
        answer = json.loads(body)
        self.assertEqual(len(answer), 3)
        for got, want in zip(answer, self.expected[:3]):
            self.assertEqual(len(got), 2)
            self.assertGreaterEqual(got[0]["score"], got[1]["score"])
            for element in got:
                self.assertEqual(set(element), {"label", "score"})
                self.assertAlmostEqual(element["score"], want["probabilities"][element["label"]], delta=1e-5)
        for name in ("x-compute-time", "x-tokenization-time", "x-queue-time", "x-inference-time"):
            self.assertIn(name, headers)
        status, _, body = post(self.server, "/", {"inputs": self.texts[0], "raw_scores": True})
        self.assertEqual(status, 200, body)
        self.assertEqual(len(json.loads(body)), 1)

    def test_tei_info(self):
        status, _, body = self.server.request("GET", "/info")
        self.assertEqual(status, 200)
        info = json.loads(body)
        self.assertEqual(info["model_type"], {"classifier": {"id2label": {"0": "negative", "1": "positive"},
                                                             "label2id": {"negative": 0, "positive": 1}}})
        for key in ("model_id", "model_dtype", "max_concurrent_requests", "max_input_length", "max_batch_tokens",
                    "max_client_batch_size", "tokenization_workers", "version"):
            self.assertIn(key, info)
        self.assertEqual(info["max_client_batch_size"], 256)
        self.assertEqual(info["max_concurrent_requests"], 512)

    def test_vllm_classify_and_models(self):
        status, _, body = self.server.request("GET", "/v1/models")
        models = json.loads(body)
        self.assertEqual(models["object"], "list")
        card = models["data"][0]
        self.assertEqual((card["object"], card["owned_by"]), ("model", "ls-train"))
        self.assertIn("max_model_len", card)
        status, _, body = post(self.server, "/classify", {"model": "another-model", "input": "x"})
        self.assertEqual(status, 404, body)  # as vLLM answers a model it does not serve
        status, _, body = post(self.server, "/classify", {"model": card["id"], "input": self.texts[:2]})
        self.assertEqual(status, 200, body)
        answer = json.loads(body)
        self.assertEqual(set(answer), {"id", "object", "created", "model", "data", "usage"})
        self.assertRegex(answer["id"], r"^classify-[0-9a-f]{32}$")
        self.assertEqual(answer["object"], "list")
        self.assertIsInstance(answer["created"], int)
        self.assertIsInstance(answer["model"], str)
        self.assertEqual(len(answer["data"]), 2)
        for i, (item, want) in enumerate(zip(answer["data"], self.expected)):
            self.assertEqual(set(item), {"index", "label", "probs", "num_classes"} | ({"object"} & set(item)))
            self.assertEqual(item["index"], i)
            self.assertEqual(item["num_classes"], 2)
            self.assertEqual(item["label"], want["label"])
            for p, name in zip(item["probs"], ["negative", "positive"]):
                self.assertAlmostEqual(p, want["probabilities"][name], delta=1e-5)
        usage = answer["usage"]
        self.assertGreater(usage["prompt_tokens"], 0)
        self.assertEqual(usage["total_tokens"], usage["prompt_tokens"])
        self.assertEqual(usage["completion_tokens"], 0)
        status, _, body = post(self.server, "/classify", {"input": self.texts[0]})
        self.assertEqual((status, len(json.loads(body)["data"])), (200, 1))
        self.assertEqual(card["id"], answer["model"])

    def test_bad_client_bodies_are_400(self):
        for path, body in (("/", {"inputs": 3}), ("/", {}), ("/predict", {"inputs": [1]}),
                           ("/classify", {"inputs": "x"}), ("/", {"inputs": "x", "parameters": {"top_k": "a"}})):
            with self.subTest(path=path, body=body):
                status, _, answer = post(self.server, path, body)
                self.assertEqual(status, 400, answer)
                self.assertIsInstance(json.loads(answer)["error"], str)


class ByteLevelTokenizerClients(unittest.TestCase):
    """A run on the LLaMA-3-style model (byte-level BPE tokenizer.json, "!" is id 0, the specials at
    the end of the vocabulary): texts ending in "!" are served through InferenceClient with
    ls_predict's scores."""

    def test_texts_ending_in_an_exclamation_mark(self):
        work = tempfile.mkdtemp(prefix="ls_serve_clients_llama3_")
        self.addCleanup(shutil.rmtree, work, True)
        ls_train(write_config(work, model={"path": f"{ASSETS}/model_llama3", "attention": "causal"},
                              task={"type": "sequence", "labels": ["negative", "positive"]},
                              data={"train": f"{DATA}/sentiment_train.jsonl",
                                    "validation": f"{DATA}/sentiment_validation.jsonl"},
                              train={"max_steps": 10}))
        run = os.path.join(work, "run")
        with open(f"{DATA}/sentiment_validation.jsonl") as f:
            texts = [json.loads(line)["text"] + "!" for line in f][:6] + ["!", "great!!!"]
        inputs = os.path.join(work, "inputs.jsonl")
        with open(inputs, "w") as f:
            f.writelines(json.dumps({"text": t}) + "\n" for t in texts)
        expected = ls_predict_lines(run, inputs, os.path.join(work, "pred.jsonl"))
        server = Server(run, log_dir=work)
        self.addCleanup(server.close)
        client = InferenceClient(f"http://127.0.0.1:{server.port}")
        for text, want in zip(texts, expected):
            for element in client.text_classification(text):
                self.assertAlmostEqual(element.score, want["probabilities"][element.label], delta=1e-5)


class TokenClients(ServedRun):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="ls_serve_clients_ner_")
        ls_train(write_config(cls.dir, train={"max_steps": 80, "eval_every": "80", "lr": 1e-2}))
        cls.run_dir = os.path.join(cls.dir, "run")
        cls.sentences = conll_sentences(f"{DATA}/ner_validation.conll")[:12]
        cls.expected = ls_predict_sentences(cls.run_dir, cls.sentences, cls.dir)
        cls.serve()

    def test_inference_client_token_classification_gets_ls_predicts_entities(self):
        client = InferenceClient(self.url)
        found = 0
        for words, want in zip(self.sentences, self.expected):
            text = "  ".join(words)  # two spaces: offsets must count them
            offsets = char_offsets(text)
            got = client.token_classification(text)
            self.assertEqual(len(got), len(want["entities"]))
            for element, entity in zip(got, want["entities"]):
                self.assertEqual(element.entity_group, entity["type"])
                self.assertEqual((element.start, element.end),
                                 (offsets[entity["start"]][0], offsets[entity["end"] - 1][1]))
                self.assertEqual(element.word, text[element.start:element.end])
                self.assertGreater(element.score, 0.0)
                self.assertLessEqual(element.score, 1.0)
                found += 1
            per_word = client.token_classification(text, aggregation_strategy="none")
            tagged = [(i, tag) for i, tag in enumerate(want["tags"]) if tag != "O"]
            self.assertEqual([(e.start, e.end) for e in per_word], [offsets[i] for i, _ in tagged])
            self.assertEqual([e.entity for e in per_word], [tag for _, tag in tagged])
        self.assertGreater(found, 0, "the run tagged no entity")

    def test_vllm_classify_refuses_a_token_task(self):
        status, _, body = post(self.server, "/classify", {"input": "peru borders chile"})
        self.assertEqual(status, 400, body)
        self.assertIn("/v1/predict", json.loads(body)["error"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
