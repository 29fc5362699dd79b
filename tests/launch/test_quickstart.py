"""The README's first command, as a new user runs it: tools/quickstart.sh trains the embedded
default and its numbers clear the thresholds the README states:
- learning happened: sentiment test accuracy >= 0.90, and LS-unLLaMA NER test entity F1 >= 0.80;
- the paper's finding: LS-unLLaMA (bidirectional) beats LS-LLaMA (causal) on NER by >= 0.20 F1,
  because the NER tags of the quickstart data depend on the word to the right;
- the other problem types learn: multi-label test micro-F1 >= 0.85, regression test Pearson >= 0.85;
- the LLaMA-3-style model with its byte-level BPE tokenizer.json learns sentiment: accuracy >= 0.90."""
import json
import os
import subprocess
import unittest

SOURCE = os.environ.get("LS_SOURCE_DIR", ".")


class Quickstart(unittest.TestCase):
    def test_quickstart_learns_and_bidirectional_beats_causal(self):
        result = subprocess.run(["bash", os.path.join(SOURCE, "tools", "quickstart.sh")], capture_output=True,
                                text=True, env=dict(os.environ))
        self.assertEqual(result.returncode, 0, result.stdout[-3000:] + result.stderr[-3000:])
        self.assertIn("NER LS-unLLaMA", result.stdout)
        with open(os.path.join(SOURCE, "runs", "quickstart-summary.json")) as f:
            summary = json.load(f)
        sentiment, causal, bidirectional = (summary["sentiment LS-LLaMA"], summary["NER LS-LLaMA"],
                                            summary["NER LS-unLLaMA"])
        self.assertGreaterEqual(sentiment["test"], 0.90, summary)
        self.assertGreaterEqual(bidirectional["test"], 0.80, summary)
        self.assertGreaterEqual(bidirectional["test"] - causal["test"], 0.20, summary)
        self.assertGreaterEqual(summary["aspects multi-label"]["test"], 0.85, summary)
        self.assertGreaterEqual(summary["rating regression"]["test"], 0.85, summary)
        self.assertGreaterEqual(summary["sentiment LLaMA-3-style"]["test"], 0.90, summary)


if __name__ == "__main__":
    unittest.main(verbosity=2)
