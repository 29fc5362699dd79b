#!/usr/bin/env bash
# clang-format over every tracked C++ file, with the repository's .clang-format.
#   tools/format.sh            reformat in place
#   tools/format.sh --check    list files that differ and exit 1 (CTest's format_check runs this)
# The style is pinned to clang-format 14 (Debian 12's); another major version formats some
# constructs differently, so --check skips (exit 77) rather than report false diffs.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
want_major=14
tool="${CLANG_FORMAT:-$(command -v clang-format-14 || echo clang-format)}"
check=0; [ "${1:-}" = "--check" ] && check=1
if ! command -v "$tool" >/dev/null 2>&1; then
  echo "format: $tool not found; skipped" >&2; exit 77
fi
major=$("$tool" --version | sed -E 's/.*version ([0-9]+).*/\1/')
if [ "$major" != "$want_major" ]; then
  echo "format: $tool is version $major, the style is pinned to $want_major; skipped" >&2; exit 77
fi
mapfile -t files < <(git ls-files '*.cpp' '*.h' '*.cu' 2>/dev/null || find core data parallel launch tools tests -name '*.cpp' -o -name '*.h' -o -name '*.cu')
if [ "$check" = 0 ]; then
  "$tool" -i "${files[@]}"
  exit 0
fi
bad=()
for f in "${files[@]}"; do
  "$tool" --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ ${#bad[@]} -gt 0 ]; then
  printf 'format: not clang-formatted (run tools/format.sh): %s\n' "${bad[@]}" >&2
  exit 1
fi
echo "format: ${#files[@]} files clean"
