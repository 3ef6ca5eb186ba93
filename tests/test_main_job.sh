#!/bin/sh
# test_main_job.sh: the README's main job (scripts/main_job.sh) end to end at a toy size (24 dives,
# 5 CLIP steps, 1 epoch): it must finish, print both models' metrics for the validation-selected
# and the last checkpoint, write the CSV and figures, and a second run must reuse every finished
# step; a second fresh run of the same job (same machine, BLAS kernel and threads) must print the
# same numbers (the determinism the README states).  Run from the build folder.
src=${AQA_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
run() { OUT="$out/${1:-run}" BIN=examples VIDEOS=24 EPOCHS=1 CLIP_STEPS=5 sh "$src/scripts/main_job.sh" >"$out/stdout$1" 2>"$out/stderr$1"; }
if ! run; then
    echo "FAIL test_main_job_runs: exit status $?"; tail -5 "$out/stderr"; exit 1
fi
# four rows of the table (each model: the validation-selected and the last checkpoint), each with
# five numbers; the labelled best-over-epochs line
rows=$(awk '($1 == "TSA-MVLA" || $1 == "TSA") && NF == 7 && $3 + 0 == $3 && $5 + 0 == $5 { n++ } END { print n + 0 }' "$out/stdout")
if [ "$rows" -eq 4 ] && grep -q '^targets: ' "$out/stdout" && grep -q '^best rho over the epochs on the test split' "$out/stdout"; then
    echo "PASS test_main_job_runs"
else
    echo "FAIL test_main_job_runs: expected four result rows, the best-over-epochs line and the targets line"; cat "$out/stdout"; exit 1
fi
n_test=$(awk '$1 == "n" { print $2 }' "$out/run/eval_tsa_mvla.txt")
csv_rows=$(($(wc -l <"$out/run/eval_tsa_mvla/predictions.csv") - 1))
if [ -n "$n_test" ] && [ "$n_test" -gt 0 ] && [ "$csv_rows" -eq "$n_test" ] && [ -s "$out/run/eval_tsa_mvla/scatter.png" ] &&
   ls "$out/run/eval_tsa_mvla"/boundaries_*.png >/dev/null 2>&1 && [ -s "$out/run/tsa/last.safetensors" ] &&
   [ -s "$out/run/tsa/best.safetensors" ] && [ -s "$out/run/tsa_mvla/metrics.json" ]; then
    echo "PASS test_main_job_outputs"
else
    echo "FAIL test_main_job_outputs: n=$n_test, csv rows=$csv_rows, or a figure/checkpoint is missing"; ls -R "$out/run" | head -30; exit 1
fi
# the second run resumes: nothing is generated or pretrained again
if run && ! grep -q -e 'generating' -e 'pretraining' "$out/stderr" && grep -q '^targets: ' "$out/stdout"; then
    echo "PASS test_main_job_resumes"
else
    echo "FAIL test_main_job_resumes: the second run redid finished steps or failed"; tail -5 "$out/stderr"; exit 1
fi

# determinism: the same job in a fresh folder, same machine and threads: every metric both training runs
# print (name value lines; timings left out) and the CLIP pretraining's numbers are the same
numbers() { grep -v -i -e seconds -e '/s' -e elapsed "$1"; }
if run again; then
    same=1
    for f in train_tsa_mvla.txt train_tsa.txt clip.txt i3d.txt eval_tsa_mvla.txt; do
        if ! numbers "$out/run/$f" >"$out/a" || ! numbers "$out/again/$f" >"$out/b" || ! cmp -s "$out/a" "$out/b"; then
            echo "    $f differs between the two runs:"; diff "$out/a" "$out/b" | head -10; same=0
        fi
    done
    if [ "$same" = 1 ]; then echo "PASS test_main_job_deterministic"; else echo "FAIL test_main_job_deterministic"; exit 1; fi
else
    echo "FAIL test_main_job_deterministic: the second run failed"; tail -5 "$out/stderragain"; exit 1
fi
