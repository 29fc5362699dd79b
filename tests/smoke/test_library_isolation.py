"""Guards for two symbol-interposition traps of linking the pip libtorch into programs.

1. The protobuf trap: libtorch and Debian's libsentencepiece each carry a protobuf. If
both export the same protobuf symbols, one interposes the other in our programs and they crash
before main(). The pip torch 2.11 wheel hides its protobuf; this test reads the dynamic symbol
tables of the libraries a real ls-train binary loads and fails on any shared protobuf symbol
other than the byteswap templates (identical trivial inlines in every protobuf version).

2. The libstdc++ trap: the pip libtorch exports its own builds of libstdc++ functions
(std::filesystem, string streams). A program must list libstdc++ before libtorch in its NEEDED
entries so its calls bind to the system libstdc++ (CMakeLists.txt arranges it)."""
import os
import re
import subprocess
import unittest

BINARY = os.path.join(os.environ.get("LS_BUILD_DIR", "build"), "bin", "toolchain_smoke_test")


def loaded_libraries(binary):
    out = subprocess.run(["ldd", binary], check=True, capture_output=True, text=True).stdout
    return [m.group(1) for m in re.finditer(r"=>\s+(\S+)\s+\(", out)]


def exported_protobuf_symbols(library):
    out = subprocess.run(["nm", "-D", "--defined-only", library], capture_output=True, text=True).stdout
    return {line.split()[-1] for line in out.splitlines() if " _ZN6google8protobuf" in line}


class ProtobufIsolation(unittest.TestCase):
    def test_torch_and_sentencepiece_share_no_protobuf_symbols(self):
        libs = loaded_libraries(BINARY)
        torch_libs = [l for l in libs if "/torch/lib/" in l]
        spm_libs = [l for l in libs if "libsentencepiece" in l]
        self.assertTrue(torch_libs, f"{BINARY} does not load libtorch: {libs}")
        self.assertTrue(spm_libs, f"{BINARY} does not load libsentencepiece: {libs}")
        torch_syms = set().union(*(exported_protobuf_symbols(l) for l in torch_libs))
        spm_syms = set().union(*(exported_protobuf_symbols(l) for l in spm_libs))
        shared = {s for s in torch_syms & spm_syms if "8byteswap" not in s}
        self.assertEqual(shared, set(), "libtorch and libsentencepiece export the same protobuf "
                         "symbols; they will interpose each other (see data/tokenizer/tokenizer.h)")

    def test_libstdcxx_is_needed_before_libtorch(self):
        dynamic = subprocess.run(["readelf", "-d", BINARY], check=True, capture_output=True, text=True).stdout
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(\S+)\]", dynamic)
        self.assertIn("libstdc++.so.6", needed)
        torch_positions = [i for i, name in enumerate(needed) if name.startswith(("libtorch", "libc10"))]
        self.assertTrue(torch_positions, needed)
        self.assertLess(needed.index("libstdc++.so.6"), min(torch_positions), needed)


if __name__ == "__main__":
    unittest.main(verbosity=2)
