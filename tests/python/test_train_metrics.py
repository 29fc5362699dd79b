"""ls-train's metrics equal scikit-learn's (accuracy, macro-F1) and seqeval's (entity P/R/F1 in
default and strict IOB2 modes) on random cases, including ill-formed tag sequences (I- after O,
type switches inside an entity) where the modes differ."""
import json
import os
import random
import subprocess
import unittest

from seqeval.metrics import f1_score, precision_score, recall_score
from seqeval.scheme import IOB2
from sklearn.metrics import accuracy_score
from sklearn.metrics import f1_score as sk_f1

CLI = os.path.join(os.environ.get("LS_BUILD_DIR", "build"), "bin", "metrics_cli")


def random_tags(rng, n):
    types = ["PER", "LOC", "ORG"]
    return [rng.choice(["O", "O", "O"] + [f"{p}-{t}" for p in "BI" for t in types]) for _ in range(n)]


class MetricsMatchReferenceLibraries(unittest.TestCase):
    def run_cli(self, cases):
        text = "\n".join(json.dumps(c) for c in cases) + "\n"
        out = subprocess.run([CLI], input=text, capture_output=True, text=True, check=True).stdout
        return [json.loads(line) for line in out.splitlines()]

    def test_accuracy_and_macro_f1_equal_sklearn(self):
        rng = random.Random(0)
        cases = []
        for _ in range(200):
            n, k = rng.randint(1, 30), rng.randint(2, 6)
            cases.append({"gold": [rng.randrange(k) for _ in range(n)], "pred": [rng.randrange(k) for _ in range(n)]})
        for case, got in zip(cases, self.run_cli(cases)):
            self.assertAlmostEqual(got["accuracy"], accuracy_score(case["gold"], case["pred"]), places=12)
            self.assertAlmostEqual(got["macro_f1"], sk_f1(case["gold"], case["pred"], average="macro", zero_division=0), places=12)

    def test_entity_scores_equal_seqeval_in_both_modes(self):
        rng = random.Random(1)
        cases = []
        for _ in range(300):
            sents = [rng.randint(1, 12) for _ in range(rng.randint(1, 5))]
            gold = [random_tags(rng, n) for n in sents]
            pred = [random_tags(rng, n) if rng.random() < 0.5 else list(g) for g, n in zip(gold, sents)]
            cases.append({"gold": gold, "pred": pred})
        for case, got in zip(cases, self.run_cli(cases)):
            g, p = case["gold"], case["pred"]
            self.assertAlmostEqual(got["default"]["precision"], precision_score(g, p, zero_division=0), places=12)
            self.assertAlmostEqual(got["default"]["recall"], recall_score(g, p, zero_division=0), places=12)
            self.assertAlmostEqual(got["default"]["f1"], f1_score(g, p, zero_division=0), places=12)
            strict = dict(mode="strict", scheme=IOB2, zero_division=0)
            self.assertAlmostEqual(got["strict"]["precision"], precision_score(g, p, **strict), places=12)
            self.assertAlmostEqual(got["strict"]["recall"], recall_score(g, p, **strict), places=12)
            self.assertAlmostEqual(got["strict"]["f1"], f1_score(g, p, **strict), places=12)


if __name__ == "__main__":
    unittest.main(verbosity=2)
