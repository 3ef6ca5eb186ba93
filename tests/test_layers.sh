#!/bin/sh
# test_layers.sh: the library's folders include only downward (scripts/check_layers.sh, the rules
# of docs/architecture.md), and the checker does catch an include that points up.
src=${AQA_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
if out=$(sh "$src/scripts/check_layers.sh" "$src" 2>&1); then
    echo "PASS test_layers_point_down"
else
    echo "FAIL test_layers_point_down:"; echo "$out" | head -10; exit 1
fi
# a copy of two folders with an engine file that includes a layer above it
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/tensor" "$tmp/nn" "$tmp/models" "$tmp/datasets"
printf '#include "tensor/tensor.h"\n#include "nn/module.h"\n' >"$tmp/tensor/bad.c"
printf '#include "tensor/tensor.h"\n' >"$tmp/nn/fine.c"
printf '#include "datasets/texts.h"\n' >"$tmp/models/sideways.c"
out=$(sh "$src/scripts/check_layers.sh" "$tmp" 2>&1)
rc=$?
if [ $rc -ne 0 ] && echo "$out" | grep -q 'tensor/bad.c:2 includes nn/' && echo "$out" | grep -q 'models/sideways.c:1 includes datasets/' &&
   ! echo "$out" | grep -q 'fine.c'; then
    echo "PASS test_layers_checker_catches_violations"
else
    echo "FAIL test_layers_checker_catches_violations: exit $rc, output: $out"; exit 1
fi
