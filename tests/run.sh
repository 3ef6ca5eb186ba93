#!/bin/sh
# Runs test programs and sums their per-case lines ("PASS x", "FAIL x: ...", "SKIP x: ...").
# A program that exits non-zero without reporting a failure (a crash, a sanitizer report, a leak
# found by valgrind) counts as one failed case named after the program.
# The last line printed is the summary: "N passed, N failed, N skipped".
# Environment: AQA_TEST_WRAPPER (e.g. valgrind ...) runs each program under a wrapper.
here=$(cd "$(dirname "$0")" && pwd)
: "${AQA_TEST_DATA:=$here/data}"
: "${AQA_SHARED_DATA:=$here/../../shared/data}"
: "${AQA_SRCDIR:=$here/..}"
# Spinning OpenMP workers starve each other (and OpenBLAS) when the test machine is busy; the
# suite's many small ops run much faster with sleeping workers.
: "${OMP_WAIT_POLICY:=passive}"
export AQA_TEST_DATA AQA_SHARED_DATA AQA_SRCDIR OMP_WAIT_POLICY
passed=0; failed=0; skipped=0
log=$(mktemp)
for prog in "$@"; do
    case "$prog" in */*) path=$prog ;; *) path=./$prog ;; esac
    echo "== $prog"
    $AQA_TEST_WRAPPER "$path" >"$log" 2>&1
    rc=$?
    cat "$log"
    p=$(grep -c '^PASS ' "$log"); f=$(grep -c '^FAIL ' "$log"); s=$(grep -c '^SKIP ' "$log")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL $prog: exited with status $rc without reporting a failed case"
        f=1
    fi
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
done
rm -f "$log"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
