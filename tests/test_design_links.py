"""docs/DESIGN.md's link graph is CMake's: every library of ours links exactly the libraries of ours
that the block between the link-graph markers lists, each only ones listed above it (so no library
links one above it), and the model links no data/ library, directly or through another."""
import os
import re
import unittest

SOURCE = os.environ.get("LS_SOURCE_DIR", os.path.join(os.path.dirname(__file__), ".."))


def cmake_links():
    """{target: set of ls_* libraries it links} for every ls_* library target_link_libraries names."""
    links = {}
    for top in ("core", "parallel", "data"):
        for root, _, files in os.walk(os.path.join(SOURCE, top)):
            if "CMakeLists.txt" not in files:
                continue
            with open(os.path.join(root, "CMakeLists.txt")) as f:
                text = re.sub(r"#[^\n]*", "", f.read())
            for target, body in re.findall(r"target_link_libraries\(\s*(ls_\w+)\s+([^)]*)\)", text):
                if target == "ls_core":  # the programs' umbrella, not a layer
                    continue
                deps = {w for w in body.split() if w.startswith("ls_")}
                links.setdefault(target, set()).update(deps)
    return links


def documented_links():
    """[(target, set of libraries)] in the order DESIGN.md lists them."""
    with open(os.path.join(SOURCE, "docs", "DESIGN.md")) as f:
        text = f.read()
    block = text.split("<!-- link-graph:begin -->", 1)[1].split("<!-- link-graph:end -->", 1)[0]
    rows = []
    for line in block.splitlines():
        if "->" not in line:
            continue
        target, deps = line.split("->", 1)
        rows.append((target.strip(), {w for w in deps.split() if w.startswith("ls_")}))
    return rows


class DesignLinkGraph(unittest.TestCase):
    def test_the_documented_graph_is_cmakes(self):
        documented = documented_links()
        self.assertEqual({t: d for t, d in documented}, cmake_links())

    def test_every_library_links_only_libraries_listed_above_it(self):
        seen = set()
        for target, deps in documented_links():
            self.assertLessEqual(deps, seen, f"{target} links a library listed below it")
            seen.add(target)

    def test_the_model_links_no_data_library_even_indirectly(self):
        links = cmake_links()
        closure, pending = set(), ["ls_core_model"]
        while pending:
            for dep in links.get(pending.pop(), ()):
                if dep not in closure:
                    closure.add(dep)
                    pending.append(dep)
        self.assertFalse({d for d in closure if d.startswith("ls_data")}, closure)


if __name__ == "__main__":
    unittest.main()
