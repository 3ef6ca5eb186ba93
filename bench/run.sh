#!/bin/sh
# run.sh: `make bench`: runs every benchmark program given, then prints the rows they marked for
# the summary as one Markdown table (the table of docs/performance.md): work, aqa, PyTorch, ratio,
# with ratio = aqa speed / PyTorch speed (PyTorch ms / aqa ms for rows in ms), > 1: aqa faster.
# Both sides run OMP_NUM_THREADS threads (default: all cores) with OMP_WAIT_POLICY=passive unless
# set; AQA_BENCH_CLOCK=cpu times CPU seconds instead of wall time (bench/bench_util.h).  Nothing
# here sets OpenBLAS's variables.  bench_i3d runs with --train9 (the 9-clip forward + backward:
# minutes, and about 10 GB for PyTorch); AQA_BENCH_I3D_ARGS replaces that.
: "${OMP_WAIT_POLICY:=passive}"
export OMP_WAIT_POLICY
if [ "${AQA_BENCH_TORCH:-1}" = 0 ]; then
    torch="skipped (AQA_BENCH_TORCH=0)"
elif torch=$(python3 -c 'import torch; print("torch", torch.__version__)' 2>/dev/null); then
    :
else
    torch="NOT FOUND"
    echo "************************************************************************************"
    echo "* bench: the python3 on PATH ($(command -v python3 || echo none)) cannot import torch:"
    echo "* every PyTorch column and ratio below stays empty.  Install PyTorch for that python3"
    echo "* (pip install torch) or put a python3 that has it first on PATH."
    echo "************************************************************************************"
fi
rows=$(mktemp)
trap 'rm -f "$rows"' EXIT
AQA_BENCH_ROWS=$rows
export AQA_BENCH_ROWS
status=0
for b in "$@"; do
    case "$b" in */*) prog=$b ;; *) prog=./$b ;; esac
    case "$b" in
    *bench_i3d) "$prog" ${AQA_BENCH_I3D_ARGS---train9} || status=1 ;;
    *) "$prog" || status=1 ;;
    esac
done
echo "## Summary ($(date -u '+%Y-%m-%d %H:%M UTC'), $(getconf _NPROCESSORS_ONLN) cores, load $(cut -d' ' -f1-3 /proc/loadavg);" \
     "threads ${OMP_NUM_THREADS:-all cores}, OMP_WAIT_POLICY=$OMP_WAIT_POLICY, ${AQA_BENCH_CLOCK:-wall} clock; PyTorch: $torch)"
echo
echo "| work | aqa | PyTorch | ratio |"
echo "|---|---|---|---|"
awk -F'|' '{ printf "| %s | %s | %s | %s |\n", $1, $2, $3, $4 }' "$rows"
echo
echo "ratio = aqa speed / PyTorch speed (for rows in ms: PyTorch ms / aqa ms); > 1 means aqa is faster."
exit $status
