"""ls_tokenize against the pip sentencepiece library: ids must be identical.

A LLaMA-style model (BPE, byte fallback, digits split, whitespace kept as written, identity
normalization, BOS=1 EOS=2 UNK=0, no pad) is trained here with the pip library, then a corpus of
unicode, emoji, CJK, digits, runs of spaces, tabs and empty lines is encoded by both ls_tokenize
(which links the system libsentencepiece) and the pip library, with and without BOS/EOS."""
import json
import os
import subprocess
import tempfile
import unittest

import sentencepiece as spm

BUILD_DIR = os.environ.get("LS_BUILD_DIR", "build")
LS_TOKENIZE = os.path.join(BUILD_DIR, "bin", "ls_tokenize")

TRAINING_TEXT = [
    "EU rejects German call to boycott British lamb .",
    "The European Commission said on Thursday it disagreed with German advice to consumers .",
    "a gripping , well-acted thriller that never lets up",
    "Paris is the capital of France ; Berlin is the capital of Germany .",
    "Numbers like 1996-08-22 and 3.14159 are split into digits",
    "Zürich, São Paulo, Kraków and Reykjavík are cities",
    "北京是中国的首都。東京は日本の首都です。",
    "Das ist großartig! C'est très bien. Это хорошо.",
]

CORPUS = [
    "EU rejects German call to boycott British lamb .",
    "",
    "   leading spaces and trailing spaces   ",
    "runs     of      spaces",
    "\ttabs\tbetween\t\twords\t",
    "digits 0123456789 and 2024-11-26 and 1,000,000.50",
    "emoji 😀🎉👍🏽 and a family 👨‍👩‍👧‍👦 and a flag 🇫🇷",
    "CJK 中文分词很难。日本語のテキスト。한국어 문장입니다.",
    "accents: naïve café coöperate façade Ångström",
    "mixed scripts: Ελληνικά, עברית, العربية, हिन्दी, ไทย",
    "unseen symbols: ∮ ∑ ∞ ≠ ≤ ⊕ 𝔸 𝕏 and the private use \ue000",
    "Zürich 北京 😀 x",
    " ",
    "\t",
    "a",
    "\u00a0non-breaking\u00a0spaces\u2003and em spaces",
]


class TokenizerParity(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="ls_pipeline_tok_")
        corpus = os.path.join(cls.tmp.name, "train.txt")
        with open(corpus, "w", encoding="utf-8") as f:
            for _ in range(30):
                f.write("\n".join(TRAINING_TEXT) + "\n")
        prefix = os.path.join(cls.tmp.name, "llama")
        spm.SentencePieceTrainer.train(
            input=corpus, model_prefix=prefix, model_type="bpe", vocab_size=500,
            hard_vocab_limit=False, byte_fallback=True, split_digits=True,
            add_dummy_prefix=True, remove_extra_whitespaces=False,
            normalization_rule_name="identity", character_coverage=0.9995,
            allow_whitespace_only_pieces=True, bos_id=1, eos_id=2, unk_id=0, pad_id=-1,
            minloglevel=2)
        cls.model = prefix + ".model"
        cls.sp = spm.SentencePieceProcessor(model_file=cls.model)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def ls_tokenize(self, lines, *flags):
        out = subprocess.run([LS_TOKENIZE, "--tokenizer", self.model, *flags],
                             input="\n".join(lines) + "\n", capture_output=True, check=True,
                             text=True, encoding="utf-8")
        return [json.loads(line) for line in out.stdout.splitlines()]

    def test_model_is_llama_style(self):
        self.assertEqual((self.sp.bos_id(), self.sp.eos_id(), self.sp.unk_id(), self.sp.pad_id()),
                         (1, 2, 0, -1))
        self.assertTrue(all(self.sp.id_to_piece(3 + b) == f"<0x{b:02X}>" for b in range(256)))
        # Characters never seen in training fall back to bytes, never to <unk>.
        self.assertNotIn(self.sp.unk_id(), self.sp.encode("∮ 😀 \ue000"))

    def test_ids_equal_the_library_with_bos(self):
        ours = self.ls_tokenize(CORPUS)
        self.assertEqual(len(ours), len(CORPUS))
        for line, ids in zip(CORPUS, ours):
            self.assertEqual(ids, [self.sp.bos_id()] + self.sp.encode(line), repr(line))

    def test_ids_equal_the_library_without_bos_and_with_eos(self):
        for flags, wrap in ((["--no-bos"], lambda ids: ids),
                            (["--eos"], lambda ids: [1] + ids + [2]),
                            (["--no-bos", "--eos"], lambda ids: ids + [2])):
            for line, ids in zip(CORPUS, self.ls_tokenize(CORPUS, *flags)):
                self.assertEqual(ids, wrap(self.sp.encode(line)), f"{flags} {line!r}")

    def test_round_trip_keeps_whitespace(self):
        for line in CORPUS:
            self.assertEqual(self.sp.decode(self.sp.encode(line)), line)

    def test_invalid_utf8_is_one_error_naming_the_line(self):
        proc = subprocess.run([LS_TOKENIZE, "--tokenizer", self.model],
                              input=b"fine\ncaf\xc3\n", capture_output=True)
        self.assertEqual(proc.returncode, 2)
        err = proc.stderr.decode()
        self.assertIn("stdin:2: invalid UTF-8", err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)

    def test_missing_model_is_a_user_error(self):
        proc = subprocess.run([LS_TOKENIZE, "--tokenizer", os.path.join(self.tmp.name, "nope.model")],
                              input=b"x\n", capture_output=True)
        self.assertEqual(proc.returncode, 2)
        self.assertIn("nope.model: tokenizer model not found", proc.stderr.decode())


if __name__ == "__main__":
    unittest.main(verbosity=2)
