"""Broken checkpoints, configs, adapters and inputs through ls_forward: each must end with exit
code 2, exactly one stderr line "ls_forward: error: ..." naming the file and the tensor or key,
no output file, and no crash."""
import json
import shutil
import struct
import sys
import tempfile
import unittest
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "support"))
from model_reference import load_file, run_ls_forward, save_file  # noqa: E402

GOLDEN = Path(__file__).resolve().parents[2] / "fixtures" / "golden_tiny"


def read_header(path):
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def write_raw(path, header, data, length_override=None):
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    length = len(text) if length_override is None else length_override
    path.write_bytes(struct.pack("<Q", length) + text + data)


class BrokenCheckpoints(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)
        self.model = self.dir / "model"
        shutil.copytree(GOLDEN / "model", self.model)
        self.weights = self.model / "model.safetensors"
        self.config = self.model / "config.json"
        shutil.copy(GOLDEN / "golden.safetensors", self.dir / "inputs.safetensors")
        self.out = self.dir / "out.safetensors"

    def tearDown(self):
        self.tmp.cleanup()

    def expect_error(self, *mentions, extra=(), adapter=None):
        args = ["--model", self.model, "--task", "sequence", "--inputs", self.dir / "inputs.safetensors",
                "--out", self.out, "--labels", *extra]
        if adapter:
            args += ["--adapter", adapter]
        result = run_ls_forward(*args, check=False)
        lines = result.stderr.strip().splitlines()
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertEqual(len(lines), 1, result.stderr)
        self.assertTrue(lines[0].startswith("ls_forward: error: "), lines[0])
        for mention in mentions:
            self.assertIn(str(mention), lines[0])
        self.assertFalse(self.out.exists(), "an output file was left behind")
        self.assertEqual([p.name for p in self.dir.iterdir() if ".tmp" in p.name], [])

    def test_the_unbroken_copy_runs(self):
        result = run_ls_forward("--model", self.model, "--task", "sequence", "--num-labels", "3",
                                "--inputs", self.dir / "inputs.safetensors", "--out", self.out, "--labels")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(sorted(load_file(self.out)), ["hidden", "logits", "loss"])

    def test_truncated_file(self):
        raw = self.weights.read_bytes()
        self.weights.write_bytes(raw[:-100])
        self.expect_error(self.weights, "model.norm.weight", "truncated")

    def test_header_length_past_the_end(self):
        header, data = read_header(self.weights)
        write_raw(self.weights, header, data, length_override=10**9)
        self.expect_error(self.weights, "header length")

    def test_lying_offsets(self):
        header, data = read_header(self.weights)
        begin, end = header["model.layers.0.mlp.up_proj.weight"]["data_offsets"]
        header["model.layers.0.mlp.up_proj.weight"]["data_offsets"] = [begin, end - 4]
        write_raw(self.weights, header, data)
        self.expect_error(self.weights, "model.layers.0.mlp.up_proj.weight", "data_offsets")

    def test_overlapping_offsets(self):
        header, data = read_header(self.weights)
        norm = header["model.norm.weight"]
        begin = header["model.layers.0.input_layernorm.weight"]["data_offsets"][0]
        norm["data_offsets"] = [begin, begin + norm["data_offsets"][1] - norm["data_offsets"][0]]
        write_raw(self.weights, header, data)
        self.expect_error(self.weights, "overlaps", "model.norm.weight")

    def test_unknown_dtype(self):
        header, data = read_header(self.weights)
        header["model.norm.weight"]["dtype"] = "F8_E5M2"
        write_raw(self.weights, header, data)
        self.expect_error(self.weights, "model.norm.weight", "F8_E5M2")

    def test_missing_tensor(self):
        tensors = load_file(self.weights)
        del tensors["model.layers.1.mlp.up_proj.weight"]
        save_file(tensors, self.weights)
        self.expect_error(self.model, "model.layers.1.mlp.up_proj.weight")

    def test_shapes_contradicting_the_config(self):
        config = json.loads(self.config.read_text())
        config["intermediate_size"] = 128
        self.config.write_text(json.dumps(config))
        self.expect_error(self.weights, "model.layers.0.mlp.gate_proj.weight", "[160, 64]", "[128, 64]")

    def test_config_missing_a_key(self):
        config = json.loads(self.config.read_text())
        del config["num_hidden_layers"]
        self.config.write_text(json.dumps(config))
        self.expect_error(self.config, "num_hidden_layers")

    def test_config_not_json(self):
        self.config.write_text('{"hidden_size": 64,')
        self.expect_error(self.config, "not valid JSON")

    def test_index_naming_a_missing_shard(self):
        tensors = load_file(self.weights)
        names = sorted(tensors)
        shards = {"model-00001-of-00002.safetensors": names[:10], "model-00002-of-00002.safetensors": names[10:]}
        for shard, keys in shards.items():
            save_file({k: tensors[k] for k in keys}, self.model / shard)
        self.weights.unlink()
        index = {"metadata": {}, "weight_map": {k: s for s, keys in shards.items() for k in keys}}
        (self.model / "model.safetensors.index.json").write_text(json.dumps(index))
        # The sharded copy works...
        result = run_ls_forward("--model", self.model, "--task", "token", "--inputs",
                                self.dir / "inputs.safetensors", "--out", self.out)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.out.unlink()
        # ... until a shard goes missing.
        (self.model / "model-00002-of-00002.safetensors").unlink()
        self.expect_error("model.safetensors.index.json", "model-00002-of-00002.safetensors", names[10])

    def test_inputs_without_attention_mask(self):
        save_file({"input_ids": torch.ones(2, 3, dtype=torch.long)}, self.dir / "inputs.safetensors")
        self.expect_error("inputs.safetensors", "attention_mask")

    def test_token_id_outside_the_vocabulary(self):
        save_file({"input_ids": torch.full((1, 3), 999, dtype=torch.long),
                   "attention_mask": torch.ones(1, 3, dtype=torch.long),
                   "seq_labels": torch.zeros(1, dtype=torch.long)}, self.dir / "inputs.safetensors")
        self.expect_error("inputs.safetensors", "input_ids", "999")

    def test_adapter_missing_a_tensor_and_adapter_config_not_lora(self):
        adapter = self.dir / "adapter"
        shutil.copytree(GOLDEN / "adapter_seq", adapter)
        tensors = load_file(adapter / "adapter_model.safetensors")
        del tensors["base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight"]
        save_file(tensors, adapter / "adapter_model.safetensors")
        self.expect_error(adapter / "adapter_model.safetensors",
                          "base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight", adapter=adapter)
        config = json.loads((adapter / "adapter_config.json").read_text())
        config["peft_type"] = "IA3"
        (adapter / "adapter_config.json").write_text(json.dumps(config))
        self.expect_error(adapter / "adapter_config.json", "peft_type", adapter=adapter)

    def test_unknown_adapter_config_keys_are_tolerated(self):
        adapter = self.dir / "adapter"
        shutil.copytree(GOLDEN / "adapter_seq", adapter)
        config = json.loads((adapter / "adapter_config.json").read_text())
        config["a_key_from_a_future_peft"] = {"x": 1}
        (adapter / "adapter_config.json").write_text(json.dumps(config))
        result = run_ls_forward("--model", self.model, "--task", "sequence", "--adapter", adapter,
                                "--inputs", self.dir / "inputs.safetensors", "--out", self.out, "--labels")
        self.assertEqual(result.returncode, 0, result.stderr)
        golden = load_file(GOLDEN / "golden.safetensors")
        self.assertTrue(torch.allclose(load_file(self.out)["logits"], golden["seq_lora_causal_logits"], atol=1e-5))


if __name__ == "__main__":
    unittest.main(verbosity=2)
