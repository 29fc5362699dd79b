"""ls_serve against hostile and careless clients, on raw sockets (issue #22): every case the old
HTTP layer fell to gets its status code, the server's peak memory stays under twice its idle RSS
plus the body cap per connection, and /health answers after each. The cases: a 200 MB chunked
body, a gzip bomb, a POST without a length, 10^6 headers, a 1 MB header line, 1,000 slowloris
connections with /health timed, Range, pipelining, contradictory framing, 1e400, a 1 MB input,
the connection and concurrency caps, and SIGTERM with queued, slow and idle clients."""
import gzip
import json
import os
import re
import resource
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from test_serve import Server, in_threads
from test_train_e2e import ASSETS, BIN, ls_train, setUpModule, write_config  # noqa: F401

DATA = f"{ASSETS}/data"
MiB = 1 << 20


class Conn:
    """A client socket with what it read past the last response (pipelined answers)."""

    def __init__(self, port, timeout=30):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.pending = b""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def sendall(self, data):
        self.sock.sendall(data)

    def recv(self, n):
        if self.pending:
            out, self.pending = self.pending[:n], self.pending[n:]
            return out
        return self.sock.recv(n)

    def fileno(self):
        return self.sock.fileno()

    def close(self):
        self.sock.close()


def connect(port, timeout=30):
    return Conn(port, timeout)


def read_response(conn, head_only=False):
    """(status, headers (lower-case names; a list per name), body) of the next response on
    `conn`, or None when the connection closed before one."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    length = 0 if head_only else int(headers.get("content-length", ["0"])[0])
    while len(rest) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        rest += chunk
    conn.pending = rest[length:] + conn.pending
    return status, headers, rest[:length]


def send_until_answered(sock, head, chunks):
    """Sends `head`, then each chunk of the generator, until the server answers (or closes);
    returns the response."""
    sock.sendall(head)
    try:
        for chunk in chunks:
            readable, _, _ = select.select([sock.sock], [], [], 0)
            if readable:
                break
            sock.sendall(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass
    return read_response(sock)


def post(path, body, extra=b"", content_type=b"application/json"):
    return (b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: " + content_type +
            b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n" + extra + b"\r\n" + body)


def proc_status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


class HostileClients(unittest.TestCase):
    BODY_CAP = MiB

    @classmethod
    def setUpClass(cls):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4096)), hard))
        cls.dir = tempfile.mkdtemp(prefix="ls_serve_hostile_")
        ls_train(write_config(cls.dir, model={"attention": "causal"},
                              task={"type": "sequence", "labels": ["negative", "positive"]},
                              data={"train": f"{DATA}/sentiment_train.jsonl",
                                    "validation": f"{DATA}/sentiment_validation.jsonl", "max_length": 12},
                              train={"max_steps": 4}))
        cls.run_dir = os.path.join(cls.dir, "run")
        with open(f"{DATA}/sentiment_validation.jsonl") as f:
            cls.texts = [json.loads(line)["text"] for line in f][:16]
        # The defaults, but for timeouts short enough to wait out in a test.
        cls.server = Server(cls.run_dir, "--header-timeout", "4", "--keep-alive-timeout", "2",
                            "--body-timeout", "4", log_dir=cls.dir)
        cls.pid = cls.server.proc.pid
        for _ in range(20):  # warm: the first forward passes allocate what later ones reuse
            cls.server.predict(cls.texts)
        time.sleep(0.3)  # the trimmer runs every 100 ms
        cls.idle_rss = proc_status(cls.pid, "VmRSS")

    @classmethod
    def tearDownClass(cls):
        cls.server.close()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def setUp(self):
        with open(f"/proc/{self.pid}/clear_refs", "w") as f:
            f.write("5")  # resets the peak RSS (VmHWM) to the current RSS

    def assertHealthyWithin(self, connections=1):
        """/health answers 200, and the peak RSS since setUp is under twice the idle RSS plus the
        body cap per connection."""
        status, _, body = self.server.request("GET", "/health", timeout=5)
        self.assertEqual((status, json.loads(body)), (200, {"status": "ok"}))
        peak = proc_status(self.pid, "VmHWM")
        bound = 2 * self.idle_rss + self.BODY_CAP * connections
        self.assertLess(peak, bound, f"peak RSS {peak / MiB:.0f} MiB, idle {self.idle_rss / MiB:.0f} MiB")
        # What the case allocated went back to the system (trimmed every 100 ms).
        time.sleep(0.3)
        rss = proc_status(self.pid, "VmRSS")
        print(f"[{self._testMethodName}] idle {self.idle_rss / MiB:.1f} MiB, peak {peak / MiB:.1f} MiB, "
              f"after {rss / MiB:.1f} MiB", flush=True)
        self.assertLess(rss, self.idle_rss + 32 * MiB, f"RSS {rss / MiB:.0f} MiB after the case")

    def answer_to(self, raw, head_only=False):
        with connect(self.server.port) as sock:
            sock.sendall(raw)
            return read_response(sock, head_only)

    def test_a_200_mb_chunked_body_gets_413_after_the_cap(self):
        head = b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        piece = b"a" * 65536
        chunk = b"%x\r\n" % len(piece) + piece + b"\r\n"
        with connect(self.server.port) as sock:
            status, _, body = send_until_answered(sock, head, (chunk for _ in range(200 * 16)))
        self.assertEqual(status, 413, body)
        self.assertIn("--max-body-bytes", json.loads(body)["error"])
        self.assertHealthyWithin()

    def test_a_gzip_bomb_gets_415_unread(self):
        bomb = gzip.compress(b"\0" * (256 * MiB), compresslevel=9)
        self.assertLess(len(bomb), MiB)
        status, _, body = self.answer_to(post("/v1/predict", bomb, b"Content-Encoding: gzip\r\n"))
        self.assertEqual(status, 415, body)
        self.assertHealthyWithin()

    def test_a_post_without_a_length_gets_411_at_once(self):
        with connect(self.server.port, timeout=5) as sock:
            sock.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\r\n"
                         b'{"inputs": ["good"]}')  # and the connection stays open: no EOF to read to
            started = time.monotonic()
            status, _, _ = read_response(sock)
        self.assertEqual(status, 411)
        self.assertLess(time.monotonic() - started, 1.0)
        self.assertHealthyWithin()

    def test_a_million_headers_and_a_1_mb_header_line_get_431(self):
        with connect(self.server.port) as sock:
            many = (b"X-A: b\r\n" * 10000 for _ in range(100))  # 10^6 header lines
            status, _, body = send_until_answered(sock, b"GET /health HTTP/1.1\r\nHost: x\r\n", many)
        self.assertEqual(status, 431, body)
        with connect(self.server.port) as sock:
            line = (b"a" * 65536 for _ in range(16))  # one 1 MiB header line
            status, _, body = send_until_answered(sock, b"GET /health HTTP/1.1\r\nX-Big: ", line)
        self.assertEqual(status, 431, body)
        # 101 small header fields: over the count cap, under the size cap.
        status, _, _ = self.answer_to(b"GET /health HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(101))
                                      + b"\r\n")
        self.assertEqual(status, 431)
        self.assertHealthyWithin()

    def test_1000_slowloris_connections_leave_health_under_100_ms_then_get_408(self):
        slow = []
        try:
            for i in range(1000):
                sock = connect(self.server.port)
                sock.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\n")  # a head that never ends
                slow.append(sock)
            for sock in slow[::50]:
                sock.sendall(b"X-Slow: 1\r\n")  # a byte now and then does not reset the deadline
            _, _, metrics = self.server.request("GET", "/metrics")
            self.assertRegex(metrics.decode(), r"ls_serve_open_connections (1\d\d\d)")
            timings = []
            for _ in range(20):
                started = time.monotonic()
                status, _, _ = self.server.request("GET", "/health", timeout=5)
                timings.append(time.monotonic() - started)
                self.assertEqual(status, 200)
            self.assertLess(max(timings), 0.1, f"health took {max(timings) * 1000:.0f} ms")
            # The model busy at the same time: health still answers at once.
            busy = threading.Thread(target=lambda: [self.server.predict(self.texts) for _ in range(10)])
            busy.start()
            started = time.monotonic()
            self.assertEqual(self.server.request("GET", "/health", timeout=5)[0], 200)
            self.assertLess(time.monotonic() - started, 0.1)
            busy.join()
            self.assertHealthyWithin(connections=1000)
            # The header deadline (--header-timeout 4) runs from each head's first byte.
            time.sleep(4.5)
            for sock in slow[::100]:
                response = read_response(sock)
                self.assertEqual(response[0], 408, response)
                self.assertEqual(response[1]["connection"], ["close"])
        finally:
            for sock in slow:
                sock.close()

    def test_range_is_ignored(self):
        status, headers, body = self.answer_to(b"GET /health HTTP/1.1\r\nHost: x\r\nRange: bytes=0-3\r\n\r\n")
        self.assertEqual((status, json.loads(body)), (200, {"status": "ok"}))
        self.assertNotIn("content-range", headers)
        many = b"Range: bytes=" + b",".join(b"0-%d" % i for i in range(1500)) + b"\r\n"
        status, _, body = self.answer_to(post("/v1/predict", json.dumps({"inputs": ["good"]}).encode(), many))
        self.assertEqual(status, 200)
        self.assertLess(len(body), 4096)
        self.assertHealthyWithin()

    def test_pipelined_requests_are_all_answered_in_order(self):
        one = post("/v1/predict", json.dumps({"inputs": [self.texts[0]]}).encode())
        two = post("/v1/predict", json.dumps({"inputs": self.texts[1:3]}).encode())
        with connect(self.server.port) as sock:
            sock.sendall(one + two + b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n" + b"GET /nowhere HTTP/1.1\r\n\r\n")
            first = read_response(sock)
            second = read_response(sock)
            third = read_response(sock)
            fourth = read_response(sock)
        self.assertEqual(first[0], 200)
        self.assertEqual(len(json.loads(first[2])["predictions"]), 1)
        self.assertEqual(len(json.loads(second[2])["predictions"]), 2)
        self.assertEqual(json.loads(third[2]), {"status": "ok"})
        self.assertEqual(fourth[0], 404)
        self.assertHealthyWithin()

    def test_contradictory_framing_gets_400(self):
        body = b'{"inputs": ["good"]}'
        cases = {
            "Content-Length and chunked": b"Transfer-Encoding: chunked\r\n",
            "two Content-Lengths, same": b"Content-Length: %d\r\n" % len(body),
            "two Content-Lengths, different": b"Content-Length: 3\r\n",
        }
        for what, extra in cases.items():
            with self.subTest(what):
                status, _, answer = self.answer_to(post("/v1/predict", body, extra))
                self.assertEqual(status, 400, answer)
        status, _, _ = self.answer_to(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                                      b"0\r\n\r\n")
        self.assertEqual(status, 400)
        status, _, _ = self.answer_to(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n")
        self.assertEqual(status, 400)
        self.assertHealthyWithin()

    def test_numbers_out_of_range_get_400_and_no_internal_text_in_headers(self):
        for body in (b'{"inputs": ["good"], "x": 1e400}', b'{"inputs": ["good", 1e400]}',
                     b'{"inputs": ["good"], "x": -1e400}', b'{"inputs": 123456789012345678901234567890}'):
            with self.subTest(body):
                status, headers, answer = self.answer_to(post("/v1/predict", body))
                self.assertEqual(status, 400, answer)
                self.assertIn("error", json.loads(answer))
                self.assertLessEqual(set(headers), {"server", "content-type", "content-length", "connection"})
        self.assertHealthyWithin()

    def test_any_content_type_is_read_as_json(self):
        body = json.dumps({"inputs": self.texts * 16}).encode()  # over 8 KB
        self.assertGreater(len(body), 8192)
        for content_type in (b"application/x-www-form-urlencoded", b"text/plain", b"multipart/form-data"):
            with self.subTest(content_type):
                status, _, answer = self.answer_to(post("/v1/predict", body, content_type=content_type))
                self.assertEqual(status, 200, answer)
        # curl -d sends that form type and Expect: 100-continue for large bodies.
        result = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-d", body.decode(),
                                 f"http://127.0.0.1:{self.server.port}/v1/predict"],
                                capture_output=True, text=True, timeout=30)
        if result.returncode != 127:
            self.assertEqual(result.stdout, "200", result.stderr)

    def test_a_1_mb_input_gets_413_naming_the_limit_or_is_cut_when_asked(self):
        text = ("the film was a superb and moving story " * 27000)[:MiB - 100]
        body = json.dumps({"inputs": [text]}).encode()
        status, _, answer = self.answer_to(post("/v1/predict", body))
        self.assertEqual(status, 413, answer)
        self.assertIn("--max-input-chars", json.loads(answer)["error"])
        started = time.monotonic()
        status, headers, answer = self.answer_to(post("/v1/predict", json.dumps({"inputs": [text], "truncate": True}).encode()))
        self.assertEqual(status, 200, answer)
        self.assertLess(time.monotonic() - started, 0.5)
        cut = json.loads(answer)["predictions"][0]
        self.assertTrue(cut["truncated"])
        # The same as the text cut after its first few hundred characters (max_length 12 keeps far
        # fewer tokens): the kept tokens are a full tokenization's first ones.
        short = self.server.predict([text[:400]])[0]
        for name, p in short["probabilities"].items():
            self.assertAlmostEqual(cut["probabilities"][name], p, delta=1e-6)
        self.assertHealthyWithin(connections=2)

    def test_the_connection_cap_refuses_at_once_and_the_concurrency_cap_answers_429(self):
        server = Server(self.run_dir, "--max-connections", "8", "--max-concurrent-requests", "2",
                        "--max-wait-ms", "1500", "--max-batch-size", "64", log_dir=self.dir)
        try:
            idle = [connect(server.port) for _ in range(8)]
            time.sleep(0.2)
            with connect(server.port, timeout=5) as extra:
                started = time.monotonic()
                response = read_response(extra)
                self.assertLess(time.monotonic() - started, 1.0)
                self.assertEqual(response[0], 503)
                self.assertIn("--max-connections", json.loads(response[2])["error"])
            for sock in idle:
                sock.close()
            time.sleep(0.3)
            results = in_threads(6, lambda i: server.request("POST", "/v1/predict", {"inputs": [self.texts[i]]}))
            statuses = sorted(status for status, _, _ in results)
            self.assertIn(200, statuses)
            self.assertIn(429, statuses)
            for status, headers, body in results:
                if status == 429:
                    self.assertEqual(headers["Retry-After"], "1")
                    self.assertIn("--max-concurrent-requests", json.loads(body)["error"])
            _, _, metrics = server.request("GET", "/metrics")
            text = metrics.decode()
            ran = int(re.search(r'ls_serve_requests_total{status="200"} (\d+)', text).group(1))
            # Only predictions that ran are in the latency histogram: not the 429s, 503s or /metrics.
            counted = int(re.search(r"^ls_serve_request_duration_seconds_count (\d+)", text, re.M).group(1))
            self.assertEqual(counted, statuses.count(200))
            self.assertGreaterEqual(ran, counted)
            self.assertRegex(text, r"ls_serve_refused_connections_total [1-9]")
        finally:
            server.close()

    def test_timing_headers_on_predictions(self):
        status, headers, _ = self.server.request("POST", "/v1/predict", {"inputs": self.texts[:2]})
        self.assertEqual(status, 200)
        for name in ("x-compute-time", "x-queue-time", "x-inference-time", "x-tokenization-time",
                     "x-compute-tokens", "x-compute-characters"):
            self.assertRegex(headers[name], r"^\d+$", name)

    def test_idle_and_slow_connections_are_closed(self):
        with connect(self.server.port) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertEqual(read_response(sock)[0], 200)
            started = time.monotonic()
            self.assertEqual(sock.recv(1), b"")  # closed by the keep-alive timeout (2 s)
            self.assertLess(time.monotonic() - started, 3.5)
        with connect(self.server.port) as sock:  # a body that never finishes: 408
            sock.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
            self.assertEqual(read_response(sock)[0], 408)


class GracefulShutdown(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="ls_serve_sigterm_")
        ls_train(write_config(cls.dir, model={"attention": "causal"},
                              task={"type": "sequence", "labels": ["negative", "positive"]},
                              data={"train": f"{DATA}/sentiment_train.jsonl",
                                    "validation": f"{DATA}/sentiment_validation.jsonl"},
                              train={"max_steps": 2}))
        cls.run_dir = os.path.join(cls.dir, "run")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_sigterm_answers_queued_requests_with_close_cuts_slow_clients_and_exits_0(self):
        server = Server(self.run_dir, "--max-queue", "8192", "--shutdown-timeout", "4", log_dir=self.dir)
        try:
            idle = connect(server.port)
            slow_head = connect(server.port)
            slow_head.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\n")
            slow_body = connect(server.port)
            slow_body.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
            time.sleep(0.3)
            # Requests of 256 inputs each: most are still queued behind the model at the signal.
            texts = [f"text number {i} was a superb and moving film" for i in range(256)]
            request = post("/v1/predict", json.dumps({"inputs": texts}).encode())
            queued = [connect(server.port) for _ in range(12)]
            for sock in queued:
                sock.sendall(request)
            started = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            for sock in queued:
                status, headers, body = read_response(sock)
                self.assertEqual(status, 200, body)
                self.assertEqual(len(json.loads(body)["predictions"]), 256)
                self.assertEqual(headers["connection"], ["close"])
                self.assertEqual(sock.recv(1), b"")  # then closed
            self.assertEqual(idle.recv(1), b"")  # an idle connection: closed at once
            self.assertLess(time.monotonic() - started, 3.5)
            rc = server.proc.wait(timeout=10)  # slow clients hold it until --shutdown-timeout
            elapsed = time.monotonic() - started
            self.assertEqual(rc, 0)
            self.assertGreater(elapsed, 3.5)
            self.assertLess(elapsed, 6.0)
            for slow in (slow_head, slow_body):  # cut
                try:
                    self.assertEqual(slow.recv(1), b"")
                except ConnectionResetError:
                    pass
            with self.assertRaises(OSError):
                connect(server.port, timeout=2)
            server.stderr.seek(0)
            self.assertIn("--shutdown-timeout cut the connections left", server.stderr.read())
        finally:
            server.close()

    def test_a_second_signal_exits_at_once(self):
        server = Server(self.run_dir, "--shutdown-timeout", "60", log_dir=self.dir)
        try:
            slow_body = connect(server.port)
            slow_body.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
            time.sleep(0.2)
            server.proc.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            self.assertIsNone(server.proc.poll())  # draining: the slow body may still finish
            started = time.monotonic()
            server.proc.send_signal(signal.SIGINT)
            rc = server.proc.wait(timeout=5)
            self.assertLess(time.monotonic() - started, 1.0)
            self.assertEqual(rc, 128 + signal.SIGINT)
            slow_body.close()
        finally:
            server.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
