"""ls_tokenize on HF tokenizer.json files against the pip `tokenizers` library: ids must be equal.

Small BPE tokenizers are trained here by `tokenizers` itself (no network), one per family whose
tokenizer.json ls-train reads:
  llama3:   byte-level BPE, LLaMA-3's pre-tokenizer regex, ignore_merges, TemplateProcessing BOS,
            special tokens and added tokens with lstrip/rstrip/single_word flags;
  qwen2:    byte-level BPE, NFC normalizer, Qwen2's regex (single digits), no BOS, a normalized
            added token, tokenizer_config.json naming EOS;
  llama2:   sentencepiece-style BPE with byte fallback and fused <unk> as HF converts LLaMA-2:
            normalizer Prepend("▁") + Replace(" ", "▁") (legacy), or pre-tokenizer Metaspace.
A corpus of whitespace runs, digit groups, contractions, NFC/NFD text, scripts, emoji, special-
token text and 300-character words is encoded by both; then word alignment and the errors."""
import bisect
import json
import os
import random
import subprocess
import tempfile
import unicodedata
import unittest

from tokenizers import (AddedToken, Regex, Tokenizer, decoders, models, normalizers,
                        pre_tokenizers, processors, trainers)

BUILD_DIR = os.environ.get("LS_BUILD_DIR", "build")
LS_TOKENIZE = os.path.join(BUILD_DIR, "bin", "ls_tokenize")

LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
               r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

TRAINING_TEXT = [
    "EU rejects German call to boycott British lamb .",
    "The European Commission said on Thursday it disagreed with German advice to consumers .",
    "a gripping , well-acted thriller that never lets up",
    "Paris is the capital of France ; Berlin is the capital of Germany .",
    "Numbers like 1996-08-22 and 3.14159 and 1,000,000 are everywhere",
    "I'm sure you're right, they'll say it's what we've done and he'd agree.",
    "Zürich, São Paulo, Kraków and Reykjavík are cities; café naïve",
    "北京是中国的首都。東京は日本の首都です。",
    "Das ist großartig! C'est très bien. Это хорошо. Αυτό είναι καλό.",
    "    indented code(x) {\n\treturn x + 1;\n}",
]

NFD_CAFE = unicodedata.normalize("NFD", "café naïve Ångström")
CORPUS = [
    "EU rejects German call to boycott British lamb .",
    "",
    " ",
    "\t",
    "a",
    "   leading spaces and trailing spaces   ",
    "runs     of      spaces and  two",
    "\ttabs\tbetween\t\twords\t",
    "line\rfeed and \r carriage",
    "digits 1 12 123 1234 12345 1234567 and 2024-11-26 and 1,000,000.50 and ١٢٣٤",
    "contractions I'm you're he'S THEY'LL we'VE she'd it's DON'T 'S 'll 'Re x'd",
    "NFC café naïve Ångström",
    "NFD " + NFD_CAFE,
    "hangul jamo \u1100\u1161\u11a8 and 각",
    "CJK 中文分词很难。日本語のテキスト。한국어 문장입니다.",
    "Cyrillic Привет, как дела? Greek Καλημέρα κόσμε",
    "emoji 😀🎉👍🏽 family 👨‍👩‍👧‍👦 flag 🇫🇷 keycap 1️⃣",
    "\u00a0non-breaking\u00a0spaces\u2003em space\u3000ideographic\u0085nel \u200bzw",
    "specials <|begin_of_text|>inside<|end_of_text|> and <|eot_id|><|eot_id|> <|begin_of_text",
    "sentencepiece specials <s> </s> <unk> and <s>x</s>",
    "qwen specials <|im_start|>user\\n<|im_end|> <|endoftext|>",
    "added tokens <tool>  call   <tool>x and Hello World and xHello World and [mask] a[mask]",
    "normalized added token naïve and " + unicodedata.normalize("NFD", "naïve"),
    "a" * 300,
    "ab" * 150 + " " + "x" * 299 + "é",
    "long " + "🙂" * 40 + " " + "ж" * 300,
    "mixed scripts: עברית, العربية, हिन्दी, ไทย ∮ ∑ ∞ 𝔸 \ue000",
    "code: if (x < 10) { return f(x) * 2; } // done?!",
    "\"quotes\" and 'single' and `back` ... --- ___ !!! ???",
]

# Random lines over the characters where pre-tokenizers and normalizers disagree most easily.
FUZZ_ALPHABET = (list("aZé'sSltTdDmM") + [" ", "  ", "\t", "\r", "\u00a0", "\u0085", "\u2003",
                 "\u3000", "\u200b", "\u0301", "\u0308", "\u1100", "\u1161"] + list("0123456789") +
                 list(".,;!?-_()[]<>|") + ["中", "文", "ж", "Ω", "😀", "👨\u200d👩", "🏽",
                 "<s>", "</s>", "<|eot_id|>", "<|im_end|>", "<tool>", "[mask]", "Hello World", "▁", "Ġ"])
FUZZ = ["".join(random.Random(seed).choices(FUZZ_ALPHABET, k=random.Random(-seed).randint(1, 40)))
        .rstrip("\r")  # ls_tokenize reads a line-final \r as a CRLF line end
        for seed in range(400)]

SPECIALS_LLAMA3 = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>",
                   "<|reserved_special_token_0|>"]
SPECIALS_QWEN2 = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
SPECIALS_LLAMA2 = ["<unk>", "<s>", "</s>"]


def train_byte_level(regex, specials, normalizer=None):
    tok = Tokenizer(models.BPE(ignore_merges=True))
    if normalizer is not None:
        tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(regex), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=700, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(TRAINING_TEXT * 20, trainer)
    return tok


def train_llama2_model():
    """Vocabulary and merges of a LLaMA-2-style model: <unk> <s> </s>, the 256 byte pieces, then
    merges learned on ▁-joined words (few characters kept, so unseen ones fall back to bytes)."""
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.BpeTrainer(vocab_size=500, special_tokens=SPECIALS_LLAMA2,
                                  limit_alphabet=70, show_progress=False)
    tok.train_from_iterator(TRAINING_TEXT * 20, trainer)
    model = json.loads(tok.to_str())["model"]
    vocab = {t: i for i, t in enumerate(SPECIALS_LLAMA2)}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for piece, _ in sorted(model["vocab"].items(), key=lambda kv: kv[1]):
        vocab.setdefault(piece, len(vocab))
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    return vocab, merges


def llama2_tokenizer(vocab, merges, metaspace):
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True,
                               byte_fallback=True))
    if metaspace:  # HF's LlamaConverter with legacy=False
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first",
                                                     split=False)
        tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    else:  # legacy
        tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"),
                                               normalizers.Replace(" ", "▁")])
        tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(),
                                         decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                            for t in SPECIALS_LLAMA2])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A",
                                                       special_tokens=[("<s>", 1)])
    return tok


class TokenizerJsonParity(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="ls_tok_json_")
        cls.files = {}

        llama3 = train_byte_level(LLAMA3_REGEX, SPECIALS_LLAMA3)
        llama3.add_tokens([AddedToken("<tool>", lstrip=True, rstrip=True, normalized=False),
                           AddedToken("Hello World", single_word=True),
                           AddedToken("[mask]", single_word=True, lstrip=True)])
        bos = llama3.token_to_id("<|begin_of_text|>")
        llama3.post_processor = processors.Sequence([
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                          special_tokens=[("<|begin_of_text|>", bos)])])
        cls.save("llama3", llama3)

        qwen2 = train_byte_level(QWEN2_REGEX, SPECIALS_QWEN2, normalizers.NFC())
        qwen2.add_tokens([AddedToken(unicodedata.normalize("NFD", "naïve"))])  # normalized
        qwen2.post_processor = processors.ByteLevel(trim_offsets=False)
        cls.save("qwen2", qwen2)
        with open(os.path.join(cls.tmp.name, "qwen2", "tokenizer_config.json"), "w") as f:
            json.dump({"bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
                      f)

        vocab, merges = train_llama2_model()
        cls.save("llama2", llama2_tokenizer(vocab, merges, metaspace=False))
        cls.save("llama2_metaspace", llama2_tokenizer(vocab, merges, metaspace=True))

    @classmethod
    def save(cls, name, tok):
        os.makedirs(os.path.join(cls.tmp.name, name))
        path = os.path.join(cls.tmp.name, name, "tokenizer.json")
        tok.save(path)
        cls.files[name] = (path, Tokenizer.from_file(path))

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def ls_tokenize(self, path, lines, *flags):
        out = subprocess.run([LS_TOKENIZE, "--tokenizer", path, *flags],
                             input="\n".join(lines) + "\n", capture_output=True, text=True,
                             encoding="utf-8")
        self.assertEqual(out.returncode, 0, out.stderr)
        return [json.loads(line) for line in out.stdout.splitlines()]

    def assert_ids_equal(self, name, flags=(), expected=lambda tok, line: tok.encode(line).ids,
                         lines=CORPUS):
        path, tok = self.files[name]
        ours = self.ls_tokenize(path, lines, *flags)
        self.assertEqual(len(ours), len(lines))
        for line, ids in zip(lines, ours):
            want = expected(tok, line)
            self.assertEqual(ids, want, f"{name} {flags} {line!r}: pieces "
                             f"{[tok.id_to_token(i) for i in want]}")

    def test_llama3_byte_level_ids_equal_the_library(self):
        self.assert_ids_equal("llama3")

    def test_qwen2_nfc_byte_level_ids_equal_the_library(self):
        self.assert_ids_equal("qwen2")

    def test_llama2_legacy_normalizer_ids_equal_the_library(self):
        self.assert_ids_equal("llama2")

    def test_llama2_metaspace_ids_equal_the_library(self):
        self.assert_ids_equal("llama2_metaspace")

    def test_random_lines_give_the_library_ids(self):
        for name in self.files:
            self.assert_ids_equal(name, lines=FUZZ)

    def test_corpus_reaches_the_hard_cases(self):
        _, llama3 = self.files["llama3"]
        _, llama2 = self.files["llama2"]
        ids = [i for line in CORPUS for i in llama3.encode(line).ids]
        for special in ("<|end_of_text|>", "<|eot_id|>", "<tool>", "Hello World", "[mask]"):
            self.assertIn(llama3.token_to_id(special), ids, special)
        pieces = [p for line in CORPUS for p in llama2.encode(line).tokens]
        self.assertIn("<0xF0>", pieces)  # byte fallback
        self.assertIn("</s>", pieces)
        qwen_path, qwen2 = self.files["qwen2"]
        self.assertEqual(qwen2.encode("naïve").ids, qwen2.encode(NFD_CAFE.split()[1]).ids)

    def test_no_bos_and_eos_keep_their_meaning(self):
        plain = lambda tok, line: tok.encode(line, add_special_tokens=False).ids
        _, llama3 = self.files["llama3"]
        eot = llama3.token_to_id("<|end_of_text|>")
        self.assert_ids_equal("llama3", ["--no-bos"], plain)
        self.assert_ids_equal("llama3", ["--eos"], lambda tok, line: tok.encode(line).ids + [eot])
        self.assert_ids_equal("llama3", ["--no-bos", "--eos"],
                              lambda tok, line: plain(tok, line) + [eot])
        # Qwen2: no BOS in the template; EOS from tokenizer_config.json beside the file.
        _, qwen2 = self.files["qwen2"]
        im_end = qwen2.token_to_id("<|im_end|>")
        self.assert_ids_equal("qwen2", ["--eos"], lambda tok, line: plain(tok, line) + [im_end])
        self.assert_ids_equal("llama2", ["--no-bos", "--eos"],
                              lambda tok, line: plain(tok, line) + [2])

    def test_word_ids_follow_the_library_offsets(self):
        sentences = [["EU", "rejects", "German", "call", "."],
                     ["Zürich", "北京", "😀", "1234567", "don't", "x"],
                     ["a", "", "b", "<s>", "c"],
                     ["naïve", NFD_CAFE.split()[0], "Ångström", "Hello", "World"],
                     ["tab\tinside", "\t", "x", "ǅ", "end"]]
        for name in ("llama3", "qwen2", "llama2", "llama2_metaspace"):
            path, tok = self.files[name]
            ours = self.ls_tokenize(path, [" ".join(words) for words in sentences], "--words")
            for words, got in zip(sentences, ours):
                text, begins = "", []  # byte where each word's share begins: its space too
                for k, word in enumerate(words):
                    text += " " if k else ""
                    begins.append(len(text.encode()) - 1 if k else 0)
                    text += word
                enc = tok.encode(text)
                byte_of = [len(text[:i].encode()) for i in range(len(text) + 1)]
                want = [-1 if special else bisect.bisect_right(begins, byte_of[start]) - 1
                        for (start, _), special in zip(enc.offsets, enc.special_tokens_mask)]
                self.assertEqual(got["ids"], enc.ids, f"{name} {words}")
                self.assertEqual(got["word_ids"], want, f"{name} {words}: {enc.tokens}")

    def run_error(self, path):
        proc = subprocess.run([LS_TOKENIZE, "--tokenizer", path], input=b"x\n",
                              capture_output=True)
        err = proc.stderr.decode()
        self.assertEqual(proc.returncode, 2, err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        return err

    def test_unsupported_model_names_the_file_and_key(self):
        path = os.path.join(self.tmp.name, "wordpiece.json")
        Tokenizer(models.WordPiece({"[UNK]": 0, "a": 1}, unk_token="[UNK]")).save(path)
        err = self.run_error(path)
        self.assertIn(path, err)
        self.assertIn('model.type "WordPiece" is not supported', err)

    def test_unsupported_normalizer_names_the_key(self):
        _, llama3 = self.files["llama3"]
        tok = Tokenizer.from_str(llama3.to_str())
        tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()])
        path = os.path.join(self.tmp.name, "lowercase.json")
        tok.save(path)
        self.assertIn('normalizer.normalizers[1].type "Lowercase" is not supported',
                      self.run_error(path))

    def test_missing_file_is_a_user_error(self):
        err = self.run_error(os.path.join(self.tmp.name, "nope", "tokenizer.json"))
        self.assertIn("tokenizer.json: tokenizer model not found", err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
