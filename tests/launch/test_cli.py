"""Every program's command line behaves the same (launch/cli.h): a usage error (an unknown flag,
a missing argument, a bad value) is one `PROGRAM: error: ...` line on stderr and exit code 2;
--help prints the usage on stdout and exits 0; ls_predict, ls_export and ls_serve share the
trained-run options (RUN|ADAPTER, --adapter, --model)."""
import os
import subprocess
import tempfile
import unittest

from test_train_e2e import BIN, assert_one_line_error

PROGRAMS = ["ls_train", "ls_predict", "ls_export", "ls_serve", "ls_forward", "ls_bench", "ls_tokenize"]


def run(program, *args):
    return subprocess.run([os.path.join(BIN, program), *args], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def built(program):
    return os.path.exists(os.path.join(BIN, program))


class CommandLine(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="ls_cli_")
        cls.dir = cls.tmp.name
        cls.file = os.path.join(cls.dir, "data.jsonl")
        with open(cls.file, "w") as f:
            f.write('{"text": "a", "label": "x"}\n')

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def usage_errors(self):
        """(program, arguments, what the error line names) for each program's usage errors."""
        d, f = self.dir, self.file
        return [
            ("ls_train", ["--bogus"], "--bogus"),
            ("ls_train", ["--resume"], "--resume"),
            ("ls_predict", [], "run"),
            ("ls_predict", [d, f, "--bogus"], "--bogus"),
            ("ls_predict", [d, f, "--batch-size", "many"], "--batch-size"),
            ("ls_export", [d], "out"),
            ("ls_export", [d, os.path.join(d, "out"), "--max-shard-bytes", "x"], "--max-shard-bytes"),
            ("ls_serve", [], "run"),
            ("ls_serve", [d, "--port", "http"], "--port"),
            ("ls_serve", [d, "--port", "70000"], "--port"),
            ("ls_serve", [d, "--bogus"], "--bogus"),
            ("ls_forward", ["--task", "sequence", "--inputs", "in.safetensors", "--out", "out.safetensors"], "--model"),
            ("ls_forward", ["--num-labels", "x"], "--num-labels"),
            ("ls_bench", ["--batch", "x"], "--batch"),
            ("ls_bench", ["--bogus"], "--bogus"),
            ("ls_tokenize", [], "--tokenizer"),
            ("ls_tokenize", ["--tokenizer", f, "--bogus"], "--bogus"),
        ]

    def test_every_usage_error_is_one_line_and_exit_2(self):
        for program, args, needle in self.usage_errors():
            if not built(program):
                continue
            with self.subTest(program=program, args=args):
                result = run(program, *args)
                assert_one_line_error(self, result, f"{program}: error:", needle)
                self.assertEqual(result.stdout, "")

    def test_help_prints_the_usage_on_stdout_and_exits_0(self):
        for program in PROGRAMS:
            if not built(program):
                continue
            with self.subTest(program=program):
                result = run(program, "--help")
                self.assertEqual(result.returncode, 0, result.stderr)
                self.assertIn("Usage:", result.stdout)
                self.assertEqual(result.stderr, "")

    def test_the_trained_run_programs_share_the_run_options(self):
        for program in ["ls_predict", "ls_export", "ls_serve"]:
            if not built(program):
                continue
            with self.subTest(program=program):
                usage = run(program, "--help").stdout
                for option in ["run TEXT REQUIRED", "--adapter", "--model"]:
                    self.assertIn(option, usage)
                missing = os.path.join(self.dir, "no_such_run")
                args = [missing, self.file] if program == "ls_predict" else [missing]
                if program == "ls_export":
                    args.append(os.path.join(self.dir, "out"))
                assert_one_line_error(self, run(program, *args), "no_such_run: does not exist")


if __name__ == "__main__":
    unittest.main()
