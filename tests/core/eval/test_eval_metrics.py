"""ls-train's metrics equal scikit-learn's (accuracy, macro-F1; multi-label micro/macro/per-label F1
and subset accuracy), scipy's (Pearson, Spearman with average ranks for ties) and seqeval's (entity
P/R/F1 in default and strict IOB2 modes) on random cases, including ill-formed tag sequences (I-
after O, type switches inside an entity) where the modes differ, labels never seen in a multi-label
case, and regression values with many ties."""
import json
import os
import random
import subprocess
import unittest

from seqeval.metrics import f1_score, precision_score, recall_score
from seqeval.scheme import IOB2
import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score
from sklearn.metrics import f1_score as sk_f1
from sklearn.metrics import mean_absolute_error, mean_squared_error

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

    def test_multilabel_scores_equal_sklearn(self):
        rng = random.Random(2)
        cases = []
        for _ in range(200):
            n, k = rng.randint(1, 25), rng.randint(2, 6)  # one column would be "binary" to sklearn
            density = rng.choice([0.1, 0.3, 0.6])
            row = lambda: [int(rng.random() < density) for _ in range(k)]  # noqa: E731
            gold = [row() for _ in range(n)]
            pred = [row() if rng.random() < 0.6 else list(g) for g in gold]
            cases.append({"kind": "multilabel", "gold": gold, "pred": pred})
        for case, got in zip(cases, self.run_cli(cases)):
            g, p = np.array(case["gold"]), np.array(case["pred"])
            self.assertAlmostEqual(got["micro_f1"], sk_f1(g, p, average="micro", zero_division=0), places=12)
            self.assertAlmostEqual(got["macro_f1"], sk_f1(g, p, average="macro", zero_division=0), places=12)
            self.assertAlmostEqual(got["subset_accuracy"], accuracy_score(g, p), places=12)
            for ours, theirs in zip(got["per_label_f1"], sk_f1(g, p, average=None, zero_division=0), strict=True):
                self.assertAlmostEqual(ours, theirs, places=12)

    def test_regression_scores_equal_sklearn_and_scipy(self):
        rng = random.Random(3)
        cases = []
        for i in range(200):
            n = rng.randint(3, 40)
            if i % 2:  # ties: values from a small set, as ratings are
                gold = [float(rng.randint(0, 5)) for _ in range(n)]
                pred = [rng.choice([0.5, 1.0, 2.5, 4.0]) for _ in range(n)]
            else:
                gold = [rng.uniform(-3, 3) for _ in range(n)]
                pred = [g + rng.gauss(0, 1) for g in gold]
            if len(set(gold)) < 2 or len(set(pred)) < 2:
                continue  # scipy's correlations are undefined for a constant input
            cases.append({"kind": "regression", "gold": gold, "pred": pred})
        for case, got in zip(cases, self.run_cli(cases)):
            g, p = case["gold"], case["pred"]
            self.assertAlmostEqual(got["mse"], mean_squared_error(g, p), places=10)
            self.assertAlmostEqual(got["mae"], mean_absolute_error(g, p), places=10)
            self.assertAlmostEqual(got["pearson"], pearsonr(p, g).statistic, places=10)
            self.assertAlmostEqual(got["spearman"], spearmanr(p, g).statistic, places=10)

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
