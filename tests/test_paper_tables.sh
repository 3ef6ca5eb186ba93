#!/bin/sh
# test_paper_tables.sh: scripts/paper_tables.sh at its --quick size (tiny synthetic sets, one row
# per dataset, one epoch, two seeds) on Table 3, which covers JIGSAWS' folds and Fis-V's two
# targets: it must print the markdown table and write the CSV, the Fis-V TES cell must be the mean
# +- std of the two seeds' rho in that row's metrics.json, a rerun must train nothing, and a row
# whose metrics.json is removed must be finished from its checkpoints (not retrained from
# scratch).  Run from the build folder.
src=${AQA_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
if [ ! -x examples/train_mvla ] || [ ! -x examples/make_synthetic ]; then
    echo "SKIP test_paper_tables: programs not built"
    exit 0
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
run() { BIN=examples sh "$src/scripts/paper_tables.sh" --table 3 --quick --seeds 2 --out "$out/t" >"$out/stdout" 2>"$out/stderr"; }
if ! run; then
    echo "FAIL test_paper_tables_runs: exit status $?"; tail -8 "$out/stderr"; exit 1
fi
# the two quick rows, each with its cells; the CSV with a header and 4 + 3 rows
jig=$(grep -c '^| I3D+MLP |' "$out/stdout")
fisv=$(awk -F '|' '$2 == " MLP-Mixer " && NF == 9' "$out/stdout" | wc -l)
csv=$(($(wc -l <"$out/t/table3.csv") - 1))
if [ "$jig" -eq 1 ] && [ "$fisv" -eq 1 ] && [ "$csv" -eq 7 ] && [ -s "$out/t/table3.md" ]; then
    echo "PASS test_paper_tables_runs"
else
    echo "FAIL test_paper_tables_runs: JIGSAWS row $jig, Fis-V row $fisv, CSV rows $csv"; cat "$out/stdout"; exit 1
fi
# the TES rho cell against the row's own metrics.json (both seeds)
m=$out/t/table3/fisv/mixer/tes/metrics.json
want=$(sed -n 's/^\t\t\t"test_selected_rho":\t\([^,]*\),$/\1/p' "$m" |
    awk '{ x[n++] = $1 } END { if (n != 2) { print "seeds?"; exit } m = (x[0] + x[1]) / 2; printf "%.3f +- %.3f\n", m, sqrt((x[0] - m) ^ 2 + (x[1] - m) ^ 2) }')
got=$(awk -F '|' '$2 == " MLP-Mixer " { gsub(/^ +| +$/, "", $3); print $3 }' "$out/stdout")
if [ -n "$want" ] && [ "$got" = "$want" ]; then
    echo "PASS test_paper_tables_cells"
else
    echo "FAIL test_paper_tables_cells: TES rho cell '$got', the seeds in $m give '$want'"; exit 1
fi
# a rerun trains nothing; a row without metrics.json is finished from its checkpoints
if run && ! grep -q -e 'training' -e 'generating' -e 'pretraining' -e 'extracting' "$out/stderr" &&
    [ "$(grep -c 'done already' "$out/stderr")" -eq 3 ]; then
    echo "PASS test_paper_tables_resumes"
else
    echo "FAIL test_paper_tables_resumes: the rerun redid finished work"; cat "$out/stderr"; exit 1
fi
rm "$out/t/table3/fisv/mixer/pcs/metrics.json"
if run && grep -q 'training .*fisv/mixer/pcs' "$out/stderr" && grep -q 'the run finished' "$out/t/table3/fisv/mixer/pcs.err" &&
    [ -s "$out/t/table3/fisv/mixer/pcs/metrics.json" ]; then
    echo "PASS test_paper_tables_interrupted_row"
else
    echo "FAIL test_paper_tables_interrupted_row: the row was not finished from its checkpoints"; cat "$out/stderr"
    cat "$out/t/table3/fisv/mixer/pcs.err"; exit 1
fi
