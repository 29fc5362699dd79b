"""ls_serve end to end: the real server on loopback (a free port it picks, --port 0) driven by
urllib. Tiny runs are trained on the quickstart assets (a sentiment sequence task, a NER token
task); served predictions equal ls_predict's unbatched ones (--batch-size 1) although the server
batches requests of different lengths together; every bad-request class gets its status and a JSON
error without disturbing the service; overload gets 503 with Retry-After; SIGTERM under load
answers every accepted request and exits 0."""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

from test_train_e2e import ASSETS, BIN, ls_train, setUpModule, write_config  # noqa: F401

DATA = f"{ASSETS}/data"


class Server:
    """ls_serve RUN --port 0 ...; the port is read from its first line."""

    def __init__(self, run, *args, log_dir):
        self.stderr = open(os.path.join(log_dir, f"serve_{time.monotonic_ns()}.err"), "w+")
        self.proc = subprocess.Popen([os.path.join(BIN, "ls_serve"), run, "--port", "0", *args],
                                     stdout=subprocess.PIPE, stderr=self.stderr, text=True)
        line = self.proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+) ", line)
        if not match:
            self.proc.kill()
            self.stderr.seek(0)
            raise RuntimeError(f"ls_serve did not start: {line!r} {self.stderr.read()}")
        self.port = int(match.group(1))

    def request(self, method, path, body=None, raw=None, timeout=60):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def predict(self, inputs):
        status, _, body = self.request("POST", "/v1/predict", {"inputs": inputs})
        assert status == 200, (status, body)
        return json.loads(body)["predictions"]

    def stop(self, timeout=20):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=timeout)
        self.stderr.seek(0)
        return rc, self.proc.stdout.read() + self.stderr.read()

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self.stderr.close()


def ls_predict_lines(run, data_file, out):
    """ls_predict's unbatched predictions (--batch-size 1: no padding anywhere)."""
    subprocess.run([os.path.join(BIN, "ls_predict"), run, data_file, "--out", out, "--batch-size", "1"],
                   check=True, capture_output=True, text=True)
    with open(out) as f:
        lines = [json.loads(line) for line in f]
    for line in lines:  # what a /v1/predict object leaves out (docs/SERVE.md)
        del line["line"]
        line.pop("gold", None)
        line.pop("text", None)
    return lines


def conll_sentences(path):
    """The word lists of a CoNLL file's sentences."""
    sentences, words = [], []
    with open(path) as f:
        for line in f:
            if line.startswith("-DOCSTART-"):
                continue
            if not line.strip():
                if words:
                    sentences.append(words)
                words = []
            else:
                words.append(line.split()[0])
    return sentences


def ls_predict_sentences(run, sentences, work_dir):
    """ls_predict's unbatched objects for word lists (written as CoNLL, tags unknown)."""
    conll = os.path.join(work_dir, "inputs.conll")
    with open(conll, "w") as f:
        for s in sentences:
            f.writelines(f"{w} NN O O\n" for w in s)
            f.write("\n")
    return ls_predict_lines(run, conll, os.path.join(work_dir, "pred.jsonl"))


def in_threads(count, work):
    """Runs work(i) in `count` threads; returns their results in order."""
    results = [None] * count

    def run(i):
        results[i] = work(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


class ServeSequenceTask(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="ls_serve_seq_")
        # max_length 12 cuts the longer reviews: the response must say so.
        ls_train(write_config(cls.dir, model={"attention": "causal"},
                              task={"type": "sequence", "labels": ["negative", "positive"]},
                              data={"train": f"{DATA}/sentiment_train.jsonl",
                                    "validation": f"{DATA}/sentiment_validation.jsonl", "max_length": 12}))
        cls.run_dir = os.path.join(cls.dir, "run")
        with open(f"{DATA}/sentiment_validation.jsonl") as f:
            cls.texts = [json.loads(line)["text"] for line in f][:48]
        inputs = os.path.join(cls.dir, "inputs.jsonl")
        with open(inputs, "w") as f:
            f.writelines(json.dumps({"text": t}) + "\n" for t in cls.texts)
        cls.expected = ls_predict_lines(cls.run_dir, inputs, os.path.join(cls.dir, "pred.jsonl"))
        cls.server = Server(cls.run_dir, "--max-body-bytes", "65536", "--max-inputs", "64",
                            "--max-batch-size", "16", "--max-wait-ms", "20", log_dir=cls.dir)

    @classmethod
    def tearDownClass(cls):
        cls.server.close()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def assertSamePrediction(self, served, expected):
        self.assertEqual(set(served), set(expected))
        self.assertEqual(served.get("truncated"), expected.get("truncated"))
        for name, p in expected["probabilities"].items():
            self.assertAlmostEqual(served["probabilities"][name], p, delta=1e-5)
        if abs(max(expected["probabilities"].values()) - 0.5) > 1e-4:
            self.assertEqual(served["label"], expected["label"])

    def test_predictions_equal_unbatched_ls_predict_ones(self):
        served = self.server.predict(self.texts)
        self.assertEqual(len(served), len(self.texts))
        self.assertTrue(any(p.get("truncated") for p in served), "no input was cut by max_length 12")
        self.assertTrue(any(not p.get("truncated") for p in served))
        for got, want in zip(served, self.expected):
            self.assertSamePrediction(got, want)

    def test_concurrent_requests_share_batches_and_get_their_own_results(self):
        def client(i):
            out = []
            for k in range(4):
                picks = [(i * 7 + k * 5 + j * 3) % len(self.texts) for j in range(1 + (i + k) % 5)]
                out.append((picks, self.server.predict([self.texts[p] for p in picks])))
            return out

        for results in in_threads(8, client):
            for picks, served in results:
                self.assertEqual(len(served), len(picks))
                for p, got in zip(picks, served):
                    self.assertSamePrediction(got, self.expected[p])
        _, _, metrics = self.server.request("GET", "/metrics")
        batches = re.search(r"^ls_serve_batch_size_count (\d+)", metrics.decode(), re.M)
        inputs = re.search(r"^ls_serve_inputs_total (\d+)", metrics.decode(), re.M)
        self.assertLess(int(batches.group(1)), int(inputs.group(1)), "no forward pass held two inputs")

    def test_every_bad_request_gets_its_status_and_a_json_error(self):
        s = self.server
        cases = [
            ("malformed JSON", "POST", "/v1/predict", b'{"inputs": ["a"', 400),
            ("inputs not an array", "POST", "/v1/predict", b'{"inputs": "a film"}', 400),
            ("an input not a string", "POST", "/v1/predict", b'{"inputs": ["fine", 3]}', 400),
            ("word lists in a sequence task", "POST", "/v1/predict", b'{"inputs": [["a", "b"]]}', 400),
            ("body not an object", "POST", "/v1/predict", b'["a film"]', 400),
            ("missing inputs", "POST", "/v1/predict", b'{"text": "a film"}', 400),
            ("empty inputs", "POST", "/v1/predict", b'{"inputs": []}', 400),
            ("empty text", "POST", "/v1/predict", b'{"inputs": [""]}', 400),
            ("invalid UTF-8", "POST", "/v1/predict", b'{"inputs": ["caf\xc3\x28 \xff"]}', 400),
            ("body over --max-body-bytes", "POST", "/v1/predict",
             json.dumps({"inputs": ["the film was great " * 4000]}).encode(), 413),
            ("more than --max-inputs", "POST", "/v1/predict", json.dumps({"inputs": ["ok"] * 65}).encode(), 413),
            ("unknown path", "GET", "/v2/predict", None, 404),
            ("unknown path, POST", "POST", "/v2/predict", b"{}", 404),
            ("GET on predict", "GET", "/v1/predict", None, 405),
            ("POST on health", "POST", "/health", b"{}", 405),
            ("DELETE on model", "DELETE", "/v1/model", None, 405),
        ]
        for what, method, path, raw, status in cases:
            with self.subTest(what):
                got, headers, body = s.request(method, path, raw=raw)
                self.assertEqual(got, status, body)
                self.assertIsInstance(json.loads(body)["error"], str)
                if status == 405:
                    self.assertIn(headers["Allow"], ("GET", "POST"))
        # The service is unharmed.
        self.assertEqual(s.request("GET", "/health")[0], 200)
        self.assertSamePrediction(s.predict([self.texts[0]])[0], self.expected[0])
        _, _, metrics = s.request("GET", "/metrics")
        for status in (400, 404, 405, 413):
            self.assertRegex(metrics.decode(), rf'ls_serve_requests_total{{status="{status}"}} [1-9]')

    def test_an_adapter_directory_alone_serves_the_same_predictions(self):
        """A self-describing adapter copied away from its run, with --model, serves as the run."""
        adapter = os.path.join(self.dir, "shared_adapter")
        shutil.copytree(os.path.join(self.run_dir, "adapter"), adapter, dirs_exist_ok=True)
        server = Server(adapter, "--model", f"{ASSETS}/model", log_dir=self.dir)
        try:
            status, _, body = server.request("GET", "/v1/model")
            model = json.loads(body)
            self.assertEqual(status, 200)
            self.assertIsNone(model["run"])
            self.assertEqual(model["base_model"], f"{ASSETS}/model")
            served = server.predict(self.texts[:12])
        finally:
            server.close()
        for got, want in zip(served, self.expected[:12]):
            self.assertSamePrediction(got, want)

    def test_health_model_and_metrics(self):
        status, _, body = self.server.request("GET", "/health")
        self.assertEqual((status, json.loads(body)), (200, {"status": "ok"}))
        status, _, body = self.server.request("GET", "/v1/model")
        model = json.loads(body)
        self.assertEqual(status, 200)
        self.assertEqual((model["task"], model["labels"], model["attention"]),
                         ("sequence", ["negative", "positive"], "causal"))
        self.assertEqual(model["base_model"], f"{ASSETS}/model")
        self.assertEqual(os.path.realpath(model["adapter"]), os.path.realpath(os.path.join(self.run_dir, "adapter")))
        self.server.predict(self.texts[:3])
        status, headers, body = self.server.request("GET", "/metrics")
        text = body.decode()
        self.assertTrue(headers["Content-Type"].startswith("text/plain"))
        for family in ("ls_serve_requests_total counter", "ls_serve_request_duration_seconds histogram",
                       "ls_serve_batch_size histogram", "ls_serve_queue_depth gauge"):
            self.assertIn(f"# TYPE {family}", text)
        self.assertRegex(text, r'ls_serve_requests_total{status="200"} [1-9]')
        self.assertRegex(text, r'ls_serve_request_duration_seconds_bucket{le="\+Inf"} [1-9]')

    def test_overload_gets_503_with_retry_after_and_the_rest_is_served(self):
        # One waiting input fills the queue; the first request waits 2 s for a fuller batch.
        server = Server(self.run_dir, "--max-queue", "1", "--max-wait-ms", "2000", log_dir=self.dir)
        try:
            results = in_threads(8, lambda i: server.request("POST", "/v1/predict", {"inputs": [self.texts[i]]}))
            statuses = sorted(status for status, _, _ in results)
            self.assertIn(200, statuses)
            self.assertIn(503, statuses)
            self.assertEqual(set(statuses), {200, 503})
            for status, headers, body in results:
                if status == 503:
                    self.assertEqual(headers["Retry-After"], "1")
                    self.assertIn("error", json.loads(body))
            self.assertEqual(len(server.predict(self.texts[:1])), 1)  # served again once drained
        finally:
            server.close()

    def test_sigterm_under_load_answers_every_accepted_request_and_exits_0(self):
        server = Server(self.run_dir, "--max-wait-ms", "300", log_dir=self.dir)
        sent_sigterm = []

        def client(i):
            answered, refused = [], 0
            while True:
                try:
                    status, _, body = server.request("POST", "/v1/predict", {"inputs": self.texts[i:i + 2]})
                except (urllib.error.URLError, ConnectionError, OSError):
                    refused += 1
                    if sent_sigterm:
                        return answered, refused
                    continue
                answered.append((status, len(json.loads(body).get("predictions", [])), time.monotonic()))

        try:
            threads_done = []
            worker = threading.Thread(target=lambda: threads_done.append(in_threads(16, client)))
            worker.start()
            time.sleep(1.5)
            sent_sigterm.append(time.monotonic())
            server.proc.send_signal(signal.SIGTERM)
            rc = server.proc.wait(timeout=20)
            worker.join(timeout=60)
            answered = [a for results, _ in threads_done[0] for a in results]
            self.assertEqual(rc, 0)
            self.assertTrue(answered)
            self.assertEqual({(status, n) for status, n, _ in answered}, {(200, 2)})
            self.assertTrue(any(t > sent_sigterm[0] for _, _, t in answered),
                            "no request in flight at SIGTERM was finished")
            server.stderr.seek(0)
            log = server.stderr.read()
            served = re.search(r"stopped after answering (\d+) requests", log)
            self.assertIsNotNone(served, log)
            self.assertEqual(int(served.group(1)), len(answered))  # every answer reached its client
        finally:
            server.close()


class ServeTokenTask(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="ls_serve_ner_")
        # NER, bidirectional, max_length 32; trained long enough to tag entities.
        ls_train(write_config(cls.dir, train={"max_steps": 80, "eval_every": "80", "lr": 1e-2}))
        cls.run_dir = os.path.join(cls.dir, "run")
        sentences = conll_sentences(f"{DATA}/ner_validation.conll")
        cls.sentences = sentences[:30] + [sentences[0] + sentences[1] + sentences[2] + sentences[3]]
        cls.expected = ls_predict_sentences(cls.run_dir, cls.sentences, cls.dir)
        cls.server = Server(cls.run_dir, log_dir=cls.dir)

    @classmethod
    def tearDownClass(cls):
        cls.server.close()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_word_lists_and_texts_get_ls_predicts_tags_and_entities(self):
        by_words = self.server.predict(self.sentences)
        by_text = self.server.predict([" ".join(s) for s in self.sentences])
        self.assertEqual(by_words, self.expected)
        self.assertEqual(by_text, self.expected)
        self.assertTrue(any(p["entities"] for p in by_words))
        long = by_words[-1]
        self.assertTrue(long["truncated"])
        self.assertEqual(len(long["words"]) + long["truncated_words"], len(self.sentences[-1]))
        for p in by_words:
            for e in p["entities"]:
                self.assertEqual(e["text"], " ".join(p["words"][e["start"]:e["end"]]))
                self.assertTrue(p["tags"][e["start"]].endswith(e["type"]))

    def test_a_port_in_use_is_one_error_line_and_exit_2(self):
        result = subprocess.run([os.path.join(BIN, "ls_serve"), self.run_dir, "--port", str(self.server.port)],
                                capture_output=True, text=True, timeout=120)
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIn(f"--port {self.server.port}: cannot listen there", result.stderr)
        self.assertEqual(result.stdout, "")
        self.assertEqual(self.server.request("GET", "/health")[0], 200)

    def test_token_task_bad_inputs(self):
        for raw in (b'{"inputs": [["a", 1]]}', b'{"inputs": [[]]}', b'{"inputs": ["   "]}', b'{"inputs": [{"w": 1}]}'):
            with self.subTest(raw):
                status, _, body = self.server.request("POST", "/v1/predict", raw=raw)
                self.assertEqual(status, 400, body)
                self.assertIn("inputs[0]", json.loads(body)["error"])
        status, _, body = self.server.request("GET", "/v1/model")
        self.assertEqual((json.loads(body)["task"], json.loads(body)["labels"]), ("token", ["O", "B-PER", "B-LOC"]))


class ServeTextPairs(unittest.TestCase):
    """A run on text pairs (data.text_pair_field) takes {"text", "text_pair"} items and joins them
    with data.pair_separator as training and ls_predict do (docs/SERVE.md, docs/EXPORT.md)."""

    def test_pairs_are_joined_as_training_joined_them(self):
        work = tempfile.mkdtemp(prefix="ls_serve_pairs_")
        self.addCleanup(shutil.rmtree, work, True)
        pairs = os.path.join(work, "pairs.jsonl")
        with open(f"{DATA}/sentiment_train.jsonl") as f, open(pairs, "w") as out:
            for line in f:
                record = json.loads(line)
                words = record["text"].split()
                half = len(words) // 2
                out.write(json.dumps({"premise": " ".join(words[:half]), "hypothesis": " ".join(words[half:]),
                                      "label": record["label"]}) + "\n")
        separator = " || "
        ls_train(write_config(work, model={"attention": "causal"}, task={"type": "sequence", "labels": []},
                              data={"train": pairs, "validation": "", "text_field": "premise",
                                    "text_pair_field": "hypothesis", "pair_separator": separator},
                              train={"max_steps": 4}))
        run = os.path.join(work, "run")
        with open(pairs) as f:
            records = [json.loads(line) for line in f][:6]
        subset = os.path.join(work, "subset.jsonl")
        with open(subset, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in records)
        subprocess.run([os.path.join(BIN, "ls_predict"), run, subset, "--out", os.path.join(work, "p.jsonl"),
                        "--batch-size", "1"], check=True, capture_output=True, text=True)
        with open(os.path.join(work, "p.jsonl")) as f:
            expected = [json.loads(line) for line in f]
        self.assertEqual([e["text"] for e in expected],
                         [r["premise"] + separator + r["hypothesis"] for r in records])
        server = Server(run, log_dir=work)
        self.addCleanup(server.close)
        status, _, body = server.request("GET", "/v1/model")
        self.assertEqual(json.loads(body)["pair_separator"], separator)
        served = server.predict([{"text": r["premise"], "text_pair": r["hypothesis"]} for r in records])
        joined = server.predict([r["premise"] + separator + r["hypothesis"] for r in records])
        for got, same, want in zip(served, joined, expected):
            for name, p in want["probabilities"].items():
                self.assertAlmostEqual(got["probabilities"][name], p, delta=1e-5)
                self.assertAlmostEqual(same["probabilities"][name], p, delta=1e-5)
        status, _, body = server.request("POST", "/v1/predict", {"inputs": [{"text": "a"}]})
        self.assertEqual(status, 400, body)


if __name__ == "__main__":
    unittest.main(verbosity=2)
