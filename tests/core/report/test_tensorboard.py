"""TensorBoard reads the scalar event files ls-train writes (the pip tensorboard package's own
reader, which checks the record CRCs)."""
import os
import subprocess
import tempfile
import unittest

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

CLI = os.path.join(os.environ.get("LS_BUILD_DIR", "build"), "bin", "tensorboard_cli")


class TensorBoardEvents(unittest.TestCase):
    def test_scalars_read_back(self):
        with tempfile.TemporaryDirectory() as d:
            subprocess.run([CLI, d], check=True, capture_output=True)
            acc = EventAccumulator(d)
            acc.Reload()
            self.assertEqual(set(acc.Tags()["scalars"]), {"train/loss", "train/lr", "validation/macro_f1"})
            loss = acc.Scalars("train/loss")
            self.assertEqual([e.step for e in loss], [1, 2, 3, 4, 5])
            for e in loss:
                self.assertAlmostEqual(e.value, 1.0 / e.step, places=6)
            self.assertAlmostEqual(acc.Scalars("validation/macro_f1")[0].value, 0.875, places=6)


if __name__ == "__main__":
    unittest.main(verbosity=2)
