"""tokenizer.json content that a simple reader gets wrong, against the pip `tokenizers` library:
ls_tokenize gives the library's ids, or refuses the file in one line naming the file and the
construct (where the library refuses it too, or where PCRE2 cannot be made to match Oniguruma).

  - Split and Replace regexes that match the empty string split and replace there;
  - Oniguruma constructs PCRE2 reads otherwise are translated (\\h, \\v, \\uHHHH, {,n}, (?m),
    . and $ with LF newlines, [\\S]) or refused (\\w, \\b, \\Q, POSIX and nested classes, ...);
  - added token ids are the library's (the vocabulary's id, else the next one), not the file's;
    single_word uses Rust's \\w (Alphabetic, so the circled letters are word characters);
  - a merge listed twice takes its last rank;
  - Metaspace with add_prefix_space false and prepend_scheme always/first is refused; a Strip or
    Replace normalizer before Metaspace "first" gives the same ids in encode and --words;
  - the file's truncation and padding are ignored, as transformers' tokenizer(text) ignores them.
Each tokenizer is built here from JSON (no network)."""
import json
import os
import subprocess
import tempfile
import unicodedata
import unittest

from tokenizers import Tokenizer, trainers

BUILD_DIR = os.environ.get("LS_BUILD_DIR", "build")
LS_TOKENIZE = os.path.join(BUILD_DIR, "bin", "ls_tokenize")

TRAINING_TEXT = ["HelloWorld fooBar camelCaseWords and UPPER lower", "aaa baab abba x{y}",
                 "0fz G \t 1A2b deadBEEF", "line one | line two || three", "ss ß ﬀ Ⓐb tok"]
CORPUS = ["HelloWorld fooBar", "camelCaseWords", "", " ", "a", "baab", "aaaa", "abba aab",
          "0fz G \t 1A2b", "deadBEEF cafe", "x\x0by", "a\x85b a\u00a0b", "a\rb", "UPPER lower",
          "x{y} a{,2}", "|", " leading and trailing "]


def tokenizer_json(vocab, merges=(), *, normalizer=None, pre_tokenizer=None, added=(),
                   **extra):
    d = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": list(added),
         "normalizer": normalizer, "pre_tokenizer": pre_tokenizer, "post_processor": None,
         "decoder": None,
         "model": {"type": "BPE", "dropout": None, "unk_token": None,
                   "continuing_subword_prefix": None, "end_of_word_suffix": None,
                   "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                   "vocab": vocab, "merges": list(merges)}}
    d.update(extra)
    return d


def trained_model():
    """Vocabulary and merges learned over whole lines (no pre-tokenizer), so merges cross the
    places a Split cuts at: a cut in another place gives other ids."""
    tok = Tokenizer.from_str(json.dumps(tokenizer_json({})))
    trainer = trainers.BpeTrainer(vocab_size=400, show_progress=False,
                                  initial_alphabet=sorted(set("".join(CORPUS))))
    tok.train_from_iterator(TRAINING_TEXT * 10 + CORPUS, trainer)
    model = json.loads(tok.to_str())["model"]
    return model["vocab"], model["merges"]


def split(regex, behavior="Isolated", invert=False, string=False):
    return {"type": "Split", "pattern": {"String" if string else "Regex": regex},
            "behavior": behavior, "invert": invert}


def added_token(content, special=False, **flags):
    return {"id": flags.pop("id", 0), "content": content, "single_word": False, "lstrip": False,
            "rstrip": False, "normalized": not special, "special": special, **flags}


class TokenizerJsonEdgeCases(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="ls_tok_edges_")
        cls.vocab, cls.merges = trained_model()
        cls.count = 0

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def save(self, d):
        type(self).count += 1
        path = os.path.join(self.tmp.name, f"t{self.count}", "tokenizer.json")
        os.makedirs(os.path.dirname(path))
        with open(path, "w", encoding="utf-8") as f:
            json.dump(d, f, ensure_ascii=False)
        return path

    def run_ls(self, path, lines, *flags):
        return subprocess.run([LS_TOKENIZE, "--tokenizer", path, *flags],
                              input="\n".join(lines) + "\n", capture_output=True, text=True,
                              encoding="utf-8")

    def assert_same_ids(self, d, lines=CORPUS, words=False):
        path = self.save(d)
        tok = Tokenizer.from_file(path)
        out = self.run_ls(path, lines)
        self.assertEqual(out.returncode, 0, out.stderr)
        ours = [json.loads(line) for line in out.stdout.splitlines()]
        self.assertEqual(len(ours), len(lines))
        for line, ids in zip(lines, ours):
            enc = tok.encode(line)
            self.assertEqual(ids, enc.ids, f"{line!r}: library pieces {enc.tokens}")
        if words:  # the word-aligned path encodes the same sentence
            out = self.run_ls(path, lines, "--words")
            self.assertEqual(out.returncode, 0, out.stderr)
            for line, got in zip(lines, out.stdout.splitlines()):
                self.assertEqual(json.loads(got)["ids"], tok.encode(" ".join(line.split(" "))).ids,
                                 f"--words {line!r}")

    def assert_refused(self, d, *needles):
        path = self.save(d)
        out = self.run_ls(path, ["x"])
        self.assertEqual(out.returncode, 2, out.stderr)
        self.assertEqual(len(out.stderr.strip().splitlines()), 1, out.stderr)
        self.assertIn(path, out.stderr)
        for needle in needles:
            self.assertIn(needle, out.stderr)

    # ---- regexes that match the empty string ------------------------------------------------

    def test_split_at_empty_matches_as_the_library_does(self):
        for regex in [r"(?=[A-Z])", r"(?=[A-Z])|a", r"a*", r"", r"\G", r"^", r"$", r"(?<=a)"]:
            for behavior in ["Isolated", "Removed", "MergedWithPrevious", "MergedWithNext",
                             "Contiguous"]:
                for invert in (False, True):
                    with self.subTest(regex=regex, behavior=behavior, invert=invert):
                        self.assert_same_ids(tokenizer_json(
                            self.vocab, self.merges,
                            pre_tokenizer=split(regex, behavior, invert)))

    def test_empty_string_pattern_splits_between_characters(self):
        self.assert_same_ids(tokenizer_json(self.vocab, self.merges,
                                            pre_tokenizer=split("", string=True)))

    def test_replace_inserts_at_empty_matches(self):
        for regex in [r"(?=[A-Z])", r"a*", r"$", r"^", r"(?=b)|b"]:
            with self.subTest(regex=regex):
                self.assert_same_ids(tokenizer_json(
                    self.vocab, self.merges,
                    normalizer={"type": "Replace", "pattern": {"Regex": regex}, "content": "|"}))

    # ---- Oniguruma syntax ---------------------------------------------------------------------

    def test_translated_oniguruma_constructs_match_the_library(self):
        for regex in [r"\h+", r"\H+", r"[\h ]+", r"\v", r"\u0041|\u0062+", r"a{,2}",
                      r"a{1,2}?", r"(?m)a.b", r"(?i)[a-c]+", r"(?i:hello)|world", r"a.b",
                      r".$", r"^.", r"[\S]+", r"[^\S]+", r"\S+", r"\s+", r"\p{Lu}\p{Ll}+",
                      r"\x{41}\p{Ll}*", r"\d+", r"a++", r"(?>a+)b"]:
            with self.subTest(regex=regex):
                self.assert_same_ids(tokenizer_json(self.vocab, self.merges,
                                                    pre_tokenizer=split(regex)))

    def test_oniguruma_constructs_pcre2_reads_otherwise_are_refused_naming_them(self):
        for regex, construct in [(r"\w+", r"\w"), (r"\W", r"\W"), (r"\bx", r"\b"),
                                 (r"\B", r"\B"), (r"\Qa.\E", r"\Q"), (r"\C-a", r"\C"),
                                 (r"[[:alpha:]]+", "POSIX class"),
                                 (r"[a-z&&[^aeiou]]", "&& in a character class"),
                                 (r"[a-c[x-z]]", "class inside a class"),
                                 (r"(?x) a", "(?x)"), (r"a{2}?", "{2}?"),
                                 (r"a{1,2}+", "{1,2}+"), (r"[\H]", r"\H in a character class")]:
            with self.subTest(regex=regex):
                Tokenizer.from_str(json.dumps(tokenizer_json(
                    self.vocab, self.merges, pre_tokenizer=split(regex))))  # the library loads it
                self.assert_refused(
                    tokenizer_json(self.vocab, self.merges,
                                   pre_tokenizer={"type": "Sequence",
                                                  "pretokenizers": [split(regex)]}),
                    "pre_tokenizer.pretokenizers[0].pattern", construct)

    # ---- added tokens -------------------------------------------------------------------------

    def test_added_token_ids_are_the_librarys_not_the_files(self):
        in_vocab = next(p for p in self.vocab if len(p) > 2 and " " not in p)
        added = [added_token("<s>", special=True, id=0), added_token(in_vocab, id=3),
                 added_token("<tool>", id=99999), added_token("", id=5),
                 added_token("[new]", id=7), added_token("<|end|>", special=True, id=1)]
        lines = CORPUS + [f"x <s>{in_vocab} <tool>[new]<|end|>", in_vocab]
        self.assert_same_ids(tokenizer_json(self.vocab, self.merges, added=added), lines)
        holes = {piece: 2 * i for i, piece in enumerate(self.vocab)}  # ids with gaps
        self.assert_same_ids(tokenizer_json(holes, self.merges, added=added), lines)

    def test_an_added_token_listed_twice_is_refused(self):
        self.assert_refused(tokenizer_json(self.vocab, self.merges,
                                           added=[added_token("<t>", id=500),
                                                  added_token("<u>", id=501),
                                                  added_token("<t>", id=502, lstrip=True)]),
                            'added_tokens[2].content "<t>" repeats added_tokens[0]')

    def test_single_word_uses_rusts_word_characters(self):
        # Every character before and after a single_word token: the library's \w is Rust's
        # (Alphabetic, marks, Nd, Pc, joiners): circled and squared letters are word characters.
        # Characters of later Unicode versions than Python's tables differ by the tables' versions
        # (docs/TOKENIZERS.md) and are left out.
        added = [added_token("tok", single_word=True)]
        points = [c for c in list(range(0x20, 0x32000)) + list(range(0xE0000, 0xE01F0))
                  if unicodedata.category(chr(c)) not in ("Cn", "Cs")
                  and c not in (0x85, 0x2028, 0x2029)]
        lines = [f"{chr(c)}tok tok{chr(c)}" for c in points]
        alphabet = {ch: i for i, ch in enumerate(sorted(_byte_alphabet()))}
        d = tokenizer_json(alphabet, pre_tokenizer={"type": "ByteLevel", "add_prefix_space": False,
                                                    "trim_offsets": False, "use_regex": False},
                           added=added)
        path = self.save(d)
        tok = Tokenizer.from_file(path)
        tok_id = tok.token_to_id("tok")
        self.assertNotIn(tok_id, tok.encode("\u24b6tok").ids)  # Ⓐ is a word character there
        self.assertIn(tok_id, tok.encode("\u00b2tok").ids)  # ² is not
        out = self.run_ls(path, lines)
        self.assertEqual(out.returncode, 0, out.stderr)
        want = [e.ids for e in tok.encode_batch(lines)]
        got = [json.loads(line) for line in out.stdout.splitlines()]
        self.assertEqual(len(got), len(lines))
        differ = [f"U+{c:04X}" for c, a, b in zip(points, got, want) if a != b]
        self.assertEqual(differ, [], "single_word disagrees next to these")

    # ---- merges -------------------------------------------------------------------------------

    def test_a_merge_listed_twice_takes_its_last_rank(self):
        vocab = {"a": 0, "b": 1, "c": 2, "ab": 3, "bc": 4, "abc": 5}
        for merges in (["a b", "b c", "a b"], ["b c", "a b", "b c"], [["a", "b"], ["b", "c"], ["a", "b"]]):
            with self.subTest(merges=merges):
                self.assert_same_ids(tokenizer_json(vocab, merges), ["abc", "abcabc", "cab"])

    # ---- Metaspace ----------------------------------------------------------------------------

    def metaspace(self, **fields):
        return {"type": "Metaspace", "replacement": "\u2581", "split": True, **fields}

    def test_metaspace_add_prefix_space_false_with_prepend_is_refused_as_the_library_does(self):
        for fields in ({"add_prefix_space": False, "prepend_scheme": "always"},
                       {"add_prefix_space": False, "prepend_scheme": "first"},
                       {"add_prefix_space": False}):
            with self.subTest(**fields):
                d = tokenizer_json(self.vocab, self.merges, pre_tokenizer=self.metaspace(**fields))
                with self.assertRaises(Exception):
                    Tokenizer.from_str(json.dumps(d))
                self.assert_refused(d, "pre_tokenizer.add_prefix_space is false")
        self.assert_same_ids(tokenizer_json(
            self.vocab, self.merges,
            pre_tokenizer=self.metaspace(add_prefix_space=False, prepend_scheme="never")))

    def test_normalizer_before_metaspace_first_gives_the_same_ids_in_both_paths(self):
        vocab = dict(self.vocab)
        for piece in ["\u2581", "\u2581H", "\u2581l", "\u2581a"]:
            vocab.setdefault(piece, len(vocab))
        lines = [" Hello", "  Hello world", "Hello", "\tHe llo ", " a b", "a"]
        for normalizer in ({"type": "Strip", "strip_left": True, "strip_right": True},
                           {"type": "Replace", "pattern": {"String": " "}, "content": ""},
                           {"type": "Sequence", "normalizers": [
                               {"type": "Strip", "strip_left": True, "strip_right": False},
                               {"type": "NFC"}]}):
            with self.subTest(normalizer=normalizer["type"]):
                self.assert_same_ids(tokenizer_json(
                    vocab, self.merges, normalizer=normalizer,
                    pre_tokenizer=self.metaspace(prepend_scheme="first")), lines, words=True)

    # ---- truncation and padding ---------------------------------------------------------------

    def test_truncation_and_padding_are_ignored_as_transformers_ignores_them(self):
        from transformers import PreTrainedTokenizerFast
        d = tokenizer_json(self.vocab, self.merges,
                           truncation={"direction": "Right", "max_length": 3, "strategy":
                                       "LongestFirst", "stride": 0},
                           padding={"strategy": {"Fixed": 40}, "direction": "Right",
                                    "pad_to_multiple_of": None, "pad_id": 0, "pad_type_id": 0,
                                    "pad_token": "<pad>"})
        path = self.save(d)
        self.assertIsNotNone(Tokenizer.from_file(path).truncation)
        hf = PreTrainedTokenizerFast(tokenizer_file=path)
        out = self.run_ls(path, CORPUS)
        self.assertEqual(out.returncode, 0, out.stderr)
        for line, ids in zip(CORPUS, out.stdout.splitlines()):
            self.assertEqual(json.loads(ids), hf(line)["input_ids"], repr(line))


def _byte_alphabet():
    from tokenizers import pre_tokenizers
    return pre_tokenizers.ByteLevel.alphabet()


if __name__ == "__main__":
    unittest.main(verbosity=2)
