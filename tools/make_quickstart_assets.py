#!/usr/bin/env python3
"""Makes the embedded default's assets, seeded and offline: a tiny LLaMA-architecture model saved
by HF transformers (config.json + model.safetensors, random weights), a sentencepiece BPE tokenizer
with byte fallback trained on the generated text, and two small datasets:

- sentiment (sequence task, JSONL): a review whose label follows from its cue words;
- places-and-people (token task, CoNLL): a name is B-PER or B-LOC depending on the word that
  FOLLOWS it ("jordan said ..." vs "jordan borders ..."). Many names are used both ways, so a causal
  model, which sees only the left context of a word, cannot tag them; a bidirectional one can.
  This is the paper's LS-unLLaMA finding in miniature.

and, from the same vocabulary (so the tokenizer above serves them), two more problem types:

- aspects (multi-label, JSONL lists; the test split as CSV with "|"-separated labels): a review
  mentions some of acting (the cast), music and story (plot, script, story), each with an opinion
  word; its labels are the aspects it mentions, possibly none;
- rating (regression, JSONL): a review's target is the mean of its opinion words' fixed scores on
  a 0-5 scale (awful 0 ... superb 5).

and a second tiny model in the style of LLaMA-3 (OUT_DIR/model_llama3: llama3 RoPE scaling, a
byte-level BPE tokenizer.json trained here by pip `tokenizers` with LLaMA-3's pre-tokenizer regex
and <|begin_of_text|> added first), which reads the same data.

Usage: make_quickstart_assets.py OUT_DIR   (idempotent: the model, tokenizer and first two sets
are made once, marked by OUT_DIR/.complete; the other sets and the LLaMA-3-style model whenever
their files are missing)
"""
import json
import os
import random
import sys
import tempfile

SEED = 20231003
AMBIGUOUS = ["jordan", "georgia", "victoria", "chelsea", "madison", "austin", "florence", "sydney",
             "kent", "lincoln", "savannah", "dallas", "chad", "eugene", "orlando", "paris"]
PEOPLE = ["alice", "bob", "maria", "li", "omar", "sven", "priya", "kenji"]
PLACES = ["peru", "norway", "kenya", "nepal", "chile", "oman", "fiji", "laos"]
PER_CUES = ["said", "smiled", "laughed", "wrote", "sang", "argued", "whispered", "cooked"]
LOC_CUES = ["borders", "exports", "hosted", "flooded", "annexed", "taxes", "governs", "imports"]
FILLER = ["the", "a", "today", "we", "heard", "that", "then", "again", "quickly", "news", "report",
          "from", "yesterday", "morning", "people", "many", "it", "was", "so", "and", "with", "on"]
POSITIVE = ["great", "wonderful", "brilliant", "moving", "delightful", "superb", "charming", "fun"]
NEGATIVE = ["awful", "boring", "dull", "terrible", "clumsy", "tedious", "bland", "painful"]
NOUNS = ["movie", "film", "plot", "cast", "script", "story", "ending", "music"]


def ner_sentence(rng):
    words, tags = [], []
    for _ in range(rng.randint(0, 3)):
        words.append(rng.choice(FILLER)); tags.append("O")
    kind = rng.choice(["PER", "LOC"])
    pool = AMBIGUOUS if rng.random() < 0.7 else (PEOPLE if kind == "PER" else PLACES)
    words.append(rng.choice(pool)); tags.append("B-" + kind)
    words.append(rng.choice(PER_CUES if kind == "PER" else LOC_CUES)); tags.append("O")
    for _ in range(rng.randint(1, 4)):
        words.append(rng.choice(FILLER)); tags.append("O")
    return words, tags


def review(rng):
    label = rng.choice(["positive", "negative"])
    cues = POSITIVE if label == "positive" else NEGATIVE
    words = ["the", rng.choice(NOUNS), "was", rng.choice(cues)]
    if rng.random() < 0.5:
        words += ["and", rng.choice(cues)]
    lead = [rng.choice(FILLER) for _ in range(rng.randint(0, 3))]
    return " ".join(lead + words), label


ASPECTS = {"acting": ["cast"], "music": ["music"], "story": ["plot", "script", "story"]}
SCORES = {"awful": 0.0, "terrible": 0.5, "painful": 0.5, "boring": 1.0, "tedious": 1.0, "dull": 1.5,
          "clumsy": 1.5, "bland": 2.0, "fun": 3.0, "charming": 3.5, "moving": 3.5, "delightful": 4.0,
          "great": 4.0, "wonderful": 4.5, "brilliant": 5.0, "superb": 5.0}


def aspect_review(rng):
    names = sorted(ASPECTS)
    chosen = [a for a in names if rng.random() < 0.45]
    rng.shuffle(chosen)
    clauses = [f"the {rng.choice(ASPECTS[a])} was {rng.choice(POSITIVE + NEGATIVE)}" for a in chosen]
    if not clauses or rng.random() < 0.3:  # an aspect-free clause, so "movie"/"film" mean nothing
        clauses.insert(rng.randint(0, len(clauses)), f"the {rng.choice(['movie', 'film'])} was "
                                                       f"{rng.choice(POSITIVE + NEGATIVE)}")
    lead = [rng.choice(FILLER) for _ in range(rng.randint(0, 2))]
    return " ".join(lead + [" and ".join(clauses)]), sorted(chosen)


def rating_review(rng):
    cues = [rng.choice(sorted(SCORES)) for _ in range(rng.randint(1, 2))]
    words = ["the", rng.choice(NOUNS), "was", cues[0]] + (["and", cues[1]] if len(cues) > 1 else [])
    lead = [rng.choice(FILLER) for _ in range(rng.randint(0, 2))]
    return " ".join(lead + words), round(sum(SCORES[c] for c in cues) / len(cues), 2)


def write_atomic(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def write_problem_type_sets(data):
    """The multi-label and regression sets, each from its own seeded generator (the older sets do
    not move when these change)."""
    splits = {"train": 600, "validation": 150, "test": 150}
    rng = random.Random(SEED + 9)
    for split, n in splits.items():
        reviews = [aspect_review(rng) for _ in range(n)]
        if split == "test":
            path = os.path.join(data, "aspects_test.csv")
            if not os.path.exists(path):
                write_atomic(path, "text,labels\n" + "".join(f"{t},{'|'.join(ls)}\n" for t, ls in reviews))
        else:
            path = os.path.join(data, f"aspects_{split}.jsonl")
            if not os.path.exists(path):
                write_atomic(path, "".join(json.dumps({"text": t, "labels": ls}) + "\n" for t, ls in reviews))
    rng = random.Random(SEED + 10)
    for split, n in splits.items():
        reviews = [rating_review(rng) for _ in range(n)]
        path = os.path.join(data, f"rating_{split}.jsonl")
        if not os.path.exists(path):
            write_atomic(path, "".join(json.dumps({"text": t, "score": y}) + "\n" for t, y in reviews))


def write_conll(path, sentences):
    with open(path, "w") as f:
        f.write("-DOCSTART- -X- -X- O\n\n")
        for words, tags in sentences:
            for w, t in zip(words, tags):
                f.write(f"{w} NN O {t}\n")
            f.write("\n")


LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|finetune_right_pad_id|>"]


def byte_level_tokenizer(corpus, vocab_size, bos=True, specials=LLAMA3_SPECIALS):
    """A byte-level BPE tokenizer laid out as LLaMA-3 and Qwen2 ship theirs: the Split regex, then
    ByteLevel; merges by rank; `vocab_size` learned tokens with the byte alphabet first (so id 0 is
    "!"), then `specials` as special added tokens; <|begin_of_text|> first when `bos`. Trained on
    `corpus` by pip `tokenizers`."""
    from tokenizers import (AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers,
                            processors, trainers)
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, trainer)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    steps = [processors.ByteLevel(trim_offsets=False)]
    if bos:
        steps.append(processors.TemplateProcessing(
            single="<|begin_of_text|> $A",
            special_tokens=[("<|begin_of_text|>", tok.token_to_id("<|begin_of_text|>"))]))
    tok.post_processor = processors.Sequence(steps)
    return tok


def quickstart_corpus(data):
    """The text of the sentiment and NER training splits, as the tokenizers are trained on it."""
    corpus = []
    with open(os.path.join(data, "sentiment_train.jsonl")) as f:
        corpus += [json.loads(line)["text"] for line in f if line.strip()]
    with open(os.path.join(data, "ner_train.conll")) as f:
        words = []
        for line in f:
            if line.strip() and not line.startswith("-DOCSTART-"):
                words.append(line.split()[0])
            elif words:
                corpus.append(" ".join(words))
                words = []
    return corpus


def make_llama3_model(out):
    """OUT/model_llama3: a LLaMA-3-style model (llama3 RoPE scaling, theta 500000, GQA) with a
    byte-level BPE tokenizer.json; written into a temporary directory, then renamed."""
    import shutil
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    final = os.path.join(out, "model_llama3")
    tmp = final + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    tok = byte_level_tokenizer(quickstart_corpus(os.path.join(out, "data")), vocab_size=600)
    tok.save(os.path.join(tmp, "tokenizer.json"))
    bos, eos = tok.token_to_id("<|begin_of_text|>"), tok.token_to_id("<|end_of_text|>")
    with open(os.path.join(tmp, "tokenizer_config.json"), "w") as f:
        json.dump({"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>",
                   "tokenizer_class": "PreTrainedTokenizerFast"}, f, indent=2)
    torch.manual_seed(SEED + 3)
    config = LlamaConfig(
        vocab_size=tok.get_vocab_size(), hidden_size=64, intermediate_size=172, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        rms_norm_eps=1e-5, bos_token_id=bos, eos_token_id=eos, tie_word_embeddings=False,
        rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                         "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 64})
    LlamaForCausalLM(config).save_pretrained(tmp, safe_serialization=True)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)


def main(out):
    if not os.path.exists(os.path.join(out, ".complete")):
        make_model_and_first_sets(out)
    write_problem_type_sets(os.path.join(out, "data"))
    llama3 = os.path.join(out, "model_llama3")
    if not os.path.exists(os.path.join(llama3, "config.json")) or not has_pad_token(llama3):
        make_llama3_model(out)


def has_pad_token(model_dir):
    """Whether the LLaMA-3-style model is laid out as now (specials after the vocabulary, with
    <|finetune_right_pad_id|>); older asset directories are made again."""
    try:
        with open(os.path.join(model_dir, "tokenizer.json")) as f:
            return "<|finetune_right_pad_id|>" in f.read()
    except OSError:
        return False


def make_model_and_first_sets(out):
    import sentencepiece as spm
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    rng = random.Random(SEED)
    data = os.path.join(out, "data")
    model_dir = os.path.join(out, "model")
    os.makedirs(data, exist_ok=True)
    os.makedirs(model_dir, exist_ok=True)

    splits = {"train": 1200, "validation": 300, "test": 300}
    corpus = []
    for split, n in splits.items():
        sentences = [ner_sentence(rng) for _ in range(n)]
        write_conll(os.path.join(data, f"ner_{split}.conll"), sentences)
        corpus += [" ".join(w) for w, _ in sentences]
        reviews = [review(rng) for _ in range(n)]
        with open(os.path.join(data, f"sentiment_{split}.jsonl"), "w") as f:
            for text, label in reviews:
                f.write(json.dumps({"text": text, "label": label}) + "\n")
        corpus += [t for t, _ in reviews]

    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(corpus) + "\n")
        corpus_path = f.name
    # LLaMA's tokenizer settings: BPE, byte fallback, <unk>=0 <s>=1 </s>=2, no pad piece.
    spm.SentencePieceTrainer.train(
        input=corpus_path, model_prefix=os.path.join(model_dir, "tokenizer"), model_type="bpe",
        vocab_size=400, byte_fallback=True, character_coverage=1.0, split_digits=True,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, num_threads=1, minloglevel=2)
    os.unlink(corpus_path)
    os.unlink(os.path.join(model_dir, "tokenizer.vocab"))

    torch.manual_seed(SEED)
    config = LlamaConfig(vocab_size=400, hidden_size=64, intermediate_size=172, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                         rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2, pad_token_id=0,
                         tie_word_embeddings=False)
    LlamaForCausalLM(config).save_pretrained(model_dir, safe_serialization=True)
    open(os.path.join(out, ".complete"), "w").write(f"seed {SEED}\n")


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        sys.exit(0)
    if len(sys.argv) != 2 or sys.argv[1].startswith("-"):
        print(f"usage: {sys.argv[0]} OUT_DIR (see --help)", file=sys.stderr)
        sys.exit(2)
    main(sys.argv[1])
