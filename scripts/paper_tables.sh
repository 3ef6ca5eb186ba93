#!/bin/sh
# paper_tables.sh: one command per table of the MVLA paper (ECCV 2024): trains every row of the
# table, the method X and X-MVLA, with --seeds N seeds each, prints the table as markdown
# (mean +- std over the seeds) and writes it as CSV.
#
#     scripts/paper_tables.sh --table 1|2|3 [--data DIR] [--seeds N] [--out DIR] [--quick]
#
#   Table 1  FineDiving: USDL, MUSDL, CoRe, TSA, TSA-MVLA, w/o DN and w/ DN (AIoU@0.5, AIoU@0.75,
#            rho, R-l2 x 100; the paper's rows: TSA-MVLA is the only MVLA row)
#   Table 2  MTL-AQA: USDL, MUSDL, CoRe, TSA, TPT, HGCN and each with MVLA, w/o DD and w/ DD (rho,
#            R-l2 x 100)
#   Table 3  JIGSAWS: I3D+MLP, USDL, MUSDL, CoRe, TPT, HGCN and each but the MLP with MVLA, four
#            folds of each task (S, NP, KT), rho as the folds' Fisher-z average and Avg. as the
#            tasks' Fisher-z average, R-l2 x 100; Fis-V: MS-LSTM, GDLT, CoRe, TPT, MLP-Mixer and
#            each with MVLA, TES and PCS trained separately (--target), rho and MSE with their
#            average (Fisher-z for rho, as the paper's).  M-BERT (Late) is not implemented.
# Every number is the test split's for the checkpoint selected on the validation videos (held out
# of the training split; the test split never selects anything).
#
# Data.  Without --data the synthetic sets are generated under <out>/data (make_synthetic's
# finediving, mtl-aqa, jigsaws and fisv layouts), a tiny CLIP is pretrained on the synthetic dives
# (its vocabulary covering every set's texts) and the features are extracted with a random I3D:
# sized so that all three tables finish in under an hour on 2 cores (7.4 min measured at commit 19d82db, with
# --seeds 2: docs/paper_tables.md).
# With --data DIR, DIR holds the real releases as finediving/, mtl-aqa/, jigsaws/ (annotation
# files and frames in their published layouts) and fisv/ (train_dataset.txt, test_dataset.txt,
# features/<id>.npy from the paper's Video Swin and clip_features/<id>.npy per-clip CLIP image
# features); give the CLIP and the I3D in the environment: CLIP (weights), BPE (CLIP's
# bpe_simple_vocab_16e6.txt.gz), I3D (Kinetics weights, pytorch-i3d names).  Real data also
# drops the small synthetic sizes: the heads run at their papers' settings, EPOCHS (default 20
# with --data) epochs.
#
# Resumes: a row whose metrics.json exists is not trained again (delete it to retrain); an
# interrupted row continues from its checkpoints (train_mvla --resume); generation, CLIP
# pretraining and feature extraction are skipped or resumed likewise.  Outputs:
# <out>/table<T>.md (what is printed), <out>/table<T>.csv, the runs under <out>/table<T>/.
#
# Settings (environment): BIN (examples), EPOCHS (synthetic 5, real 20), TRAIN_FLAGS (more
# train_mvla flags for every row, e.g. "--device cuda"), plus CLIP, BPE, I3D.
# --quick: a smoke test (tiny sets, one row of the table, one epoch), for tests.
set -eu

usage() {
    echo "usage: paper_tables.sh --table 1|2|3 [--data DIR] [--seeds N] [--out DIR] [--quick]" >&2
    exit 2
}

TABLE=
DATA=
SEEDS=2
OUT=runs/tables
QUICK=0
while [ $# -gt 0 ]; do
    case "$1" in
    --table) TABLE=${2:-}; shift 2 || usage ;;
    --data) DATA=${2:-}; shift 2 || usage ;;
    --seeds) SEEDS=${2:-}; shift 2 || usage ;;
    --out) OUT=${2:-}; shift 2 || usage ;;
    --quick) QUICK=1; shift ;;
    -h | --help) sed -n '2,40p' "$0"; exit 0 ;;
    *) echo "paper_tables: unknown argument '$1'" >&2; usage ;;
    esac
done
case "$TABLE" in 1 | 2 | 3) ;; *) echo "paper_tables: --table must be 1, 2 or 3" >&2; usage ;; esac
case "$SEEDS" in '' | *[!0-9]* | 0) echo "paper_tables: --seeds must be a positive integer" >&2; usage ;; esac

BIN=${BIN:-examples}
for p in make_synthetic pretrain_clip extract_features train_mvla; do
    if [ ! -x "$BIN/$p" ]; then
        echo "paper_tables: $BIN/$p is not built (run make first, or set BIN)" >&2
        exit 1
    fi
done
mkdir -p "$OUT"
start=$(date +%s)
stamp() { echo "[paper_tables $(($(date +%s) - start)) s] $*" >&2; }

# ---- data, CLIP and features -------------------------------------------------------------------

if [ -z "$DATA" ]; then
    D=$OUT/data
    if [ "$QUICK" = 1 ]; then
        N_FD=16 N_MTL=16 N_JIG=24 N_FISV=20 CLIP_STEPS=5 EPOCHS=${EPOCHS:-1}
    else
        N_FD=200 N_MTL=120 N_JIG=72 N_FISV=100 CLIP_STEPS=200 EPOCHS=${EPOCHS:-5}
    fi
    gen() { # layout folder count [flags]: one synthetic set, unless it is there
        if [ ! -f "$D/$2/synthetic_config.txt" ]; then
            stamp "generating the synthetic $1 set ($3)"
            "$BIN/make_synthetic" --out "$D/$2" --layout "$1" --videos "$3" --seed 0 --size 32 --quiet ${4:-} >/dev/null
        fi
    }
    # every set at once: the CLIP's vocabulary covers them all, whichever table runs first
    gen finediving finediving "$N_FD" "--frames 40:96"
    gen mtl-aqa mtl-aqa "$N_MTL"
    gen jigsaws jigsaws "$N_JIG" "--frames 96:192"
    gen fisv fisv "$N_FISV" "--feature-dim 32 --frames 640:960"
    if [ ! -f "$OUT/clip/clip.safetensors" ]; then
        stamp "pretraining a tiny CLIP ($CLIP_STEPS steps)"
        "$BIN/pretrain_clip" --data "$D/finediving" --out "$OUT/clip" --steps "$CLIP_STEPS" --lr 1e-3 --quality \
            --res 16 --patch 4 --width 32 --embed 32 --text-width 32 --seed 0 --progress false \
            --vocab-from "mtl-aqa:$D/mtl-aqa,jigsaws:$D/jigsaws,fisv:$D/fisv" >"$OUT/clip.txt"
    fi
    CLIP_ARGS="--clip $OUT/clip/clip.safetensors --vocab $OUT/clip/vocab.txt"
    I3D_ARGS="--i3d-width 0.125 --i3d-short 32 --i3d-size 32"
    # small heads for the synthetic sets (the real data runs them at their papers' sizes)
    SIZES="--temporal-heads 4 --tsa-heads 4 --tpt-dim 64 --gdlt-dim 64 --mslstm-hidden 64 --mixer-dim 64 --batch 8"
    # JIGSAWS: 80 frames in 5 clips of 16 (the paper: 160 in 10), half the cost of each trial
    JIG_SAMPLING="--frames 80 --clips 5 --clip-stride 16"
else
    D=$DATA
    EPOCHS=${EPOCHS:-20}
    [ -n "${CLIP:-}" ] && [ -n "${BPE:-}" ] && [ -n "${I3D:-}" ] || {
        echo "paper_tables: with --data give CLIP, BPE and I3D in the environment (CLIP weights, its BPE vocabulary, Kinetics I3D)" >&2
        exit 1
    }
    CLIP_ARGS="--clip $CLIP --bpe $BPE"
    I3D_ARGS="--i3d $I3D"
    SIZES= JIG_SAMPLING=
fi

features() { # dataset folder [sampling]: the frozen CLIP and I3D features of a frame dataset, once (resumed per video)
    if [ ! -f "$OUT/features/$2/.done" ]; then
        stamp "extracting $2 features"
        # shellcheck disable=SC2086
        "$BIN/extract_features" --data "$D/$2" --dataset "$1" --out "$OUT/features/$2" $CLIP_ARGS $I3D_ARGS ${3:-} \
            --progress false >"$OUT/features_$2.txt"
        : >"$OUT/features/$2/.done"
    fi
}

COMMON="--epochs $EPOCHS --seeds $SEEDS --seed 0 --progress false --workers 2 --no-test-each-epoch $SIZES ${TRAIN_FLAGS:-}"

# Trains one row into folder $1 (the rest: train_mvla's flags), unless its metrics.json is there.
run_row() {
    dir=$1
    shift
    if [ -f "$dir/metrics.json" ]; then
        stamp "done already: $dir"
        return 0
    fi
    res=
    [ -d "$dir" ] && res=--resume # an interrupted row: each seed / fold continues or starts
    [ -n "$res" ] && [ "$SEEDS" = 1 ] && ! echo "$*" | grep -q -- --folds && [ ! -f "$dir/last.safetensors" ] && res=
    stamp "training $dir"
    t0=$(date +%s)
    mkdir -p "$dir"
    # shellcheck disable=SC2086
    if ! "$BIN/train_mvla" "$@" $COMMON $res --out "$dir" >"$dir.out" 2>"$dir.err"; then
        echo "paper_tables: train_mvla failed for $dir (see $dir.err):" >&2
        tail -5 "$dir.err" >&2
        exit 1
    fi
    echo "$(($(date +%s) - t0))" >"$dir.seconds"
}

# ---- reading metrics.json ----------------------------------------------------------------------

# The per-seed values of key $2 in $1/metrics.json (one per line; "nan" for null).
seed_values() {
    # cJSON_Print writes each key of a "runs" object on its own line, indented by three tabs
    awk -F '\t' -v key="\"$2\":" '$1 == "" && $2 == "" && $3 == "" && $4 == key {
        v = $5; sub(/,$/, "", v); if (v == "null") v = "nan"; print v
    }' "$1/metrics.json"
}

# "mean +- std" of the lines on stdin, scaled by $1, with $2 decimals (Fisher-z mean for $3 = z).
summarise() {
    awk -v scale="$1" -v dec="$2" -v mode="${3:-}" '
        { x[n++] = $1 }
        END {
            if (n == 0) { print "-"; exit }
            s = 0
            for (i = 0; i < n; i++) { if (x[i] == "nan") { print "undefined"; exit } s += x[i] * scale }
            m = s / n; q = 0
            for (i = 0; i < n; i++) q += (x[i] * scale - m) ^ 2
            sd = n > 1 ? sqrt(q / (n - 1)) : 0
            printf "%." dec "f +- %." dec "f\n", m, sd
        }'
}

# Per seed, the Fisher-z average (z) or the plain mean of the rows of several files (one value per
# line, the same seeds in the same order): paste | awk.
combine() {
    mode=$1
    shift
    paste "$@" | awk -v mode="$mode" '{
        s = 0; bad = 0
        for (i = 1; i <= NF; i++) {
            if ($i == "nan" || (mode == "z" && ($i >= 1 || $i <= -1))) bad = 1
            else s += (mode == "z") ? 0.5 * log((1 + $i) / (1 - $i)) : $i
        }
        if (bad) print "nan"
        else if (mode == "z") { m = s / NF; print (exp(2 * m) - 1) / (exp(2 * m) + 1) }
        else print s / NF
    }'
}

cell() { # folder key scale decimals
    seed_values "$1" "$2" | summarise "$3" "$4"
}

# ---- the tables --------------------------------------------------------------------------------

MD=$OUT/table$TABLE.md
CSV=$OUT/table$TABLE.csv
T=$OUT/table$TABLE

case "$TABLE" in
1)
    ds=synthetic # the synthetic dives' layout is FineDiving's
    [ -n "$DATA" ] && ds=finediving
    features "$ds" finediving
    ROWS="usdl:USDL musdl:MUSDL core:CoRe tsa:TSA tsa-mvla:TSA-MVLA"
    [ "$QUICK" = 1 ] && ROWS="usdl:USDL"
    for r in $ROWS; do
        key=${r%%:*}
        head=${key%-mvla}
        mv=--no-mvla
        [ "$key" != "$head" ] && mv=--mvla
        for s in w/o w/DN; do
            run_row "$T/$key/$(echo "$s" | tr -d /)" --data "$D/finediving" --dataset "$ds" \
                --features "$OUT/features/finediving" --head "$head" $mv --setting "$s" $CLIP_ARGS
        done
    done
    {
        echo "Table 1: FineDiving ($SEEDS seeds, mean +- std; test split, checkpoint selected on validation)"
        echo
        echo "| Method | w/o DN AIoU@0.5 | AIoU@0.75 | rho | R-l2 (x100) | w/ DN AIoU@0.5 | AIoU@0.75 | rho | R-l2 (x100) |"
        echo "|---|---|---|---|---|---|---|---|---|"
    } >"$MD"
    echo "method,setting,aiou50,aiou75,rho,rl2_x100" >"$CSV"
    for r in $ROWS; do
        key=${r%%:*} name=${r#*:}
        line="| $name"
        for s in wo wDN; do
            f=$T/$key/$s
            if [ "$key" = tsa ] || [ "$key" = tsa-mvla ]; then
                a5=$(cell "$f" test_selected_aiou50 100 2) a7=$(cell "$f" test_selected_aiou75 100 2)
            else
                a5=/ a7=/ # no action segmentation
            fi
            rho=$(cell "$f" test_selected_rho 1 4) rl2=$(cell "$f" test_selected_rl2_x100 1 4)
            line="$line | $a5 | $a7 | $rho | $rl2"
            echo "$name,$s,$a5,$a7,$rho,$rl2" >>"$CSV"
        done
        echo "$line |" >>"$MD"
    done
    ;;
2)
    features mtl-aqa mtl-aqa
    ROWS="usdl:USDL musdl:MUSDL core:CoRe tsa:TSA tpt:TPT hgcn:HGCN"
    [ "$QUICK" = 1 ] && ROWS="usdl:USDL"
    for r in $ROWS; do
        head=${r%%:*}
        for mv in no-mvla mvla; do
            for s in w/o w/DD; do
                run_row "$T/$head-$mv/$(echo "$s" | tr -d /)" --data "$D/mtl-aqa" --dataset mtl-aqa \
                    --features "$OUT/features/mtl-aqa" --head "$head" --$mv --setting "$s" $CLIP_ARGS
            done
        done
    done
    {
        echo "Table 2: MTL-AQA ($SEEDS seeds, mean +- std; test split, checkpoint selected on validation)"
        echo
        echo "| Method | w/o DD rho | R-l2 (x100) | w/ DD rho | R-l2 (x100) |"
        echo "|---|---|---|---|---|"
    } >"$MD"
    echo "method,setting,rho,rl2_x100" >"$CSV"
    for r in $ROWS; do
        head=${r%%:*} name=${r#*:}
        for mv in no-mvla mvla; do
            label=$name
            [ "$mv" = mvla ] && label="$name-MVLA"
            line="| $label"
            for s in wo wDD; do
                f=$T/$head-$mv/$s
                rho=$(cell "$f" test_selected_rho 1 4) rl2=$(cell "$f" test_selected_rl2_x100 1 4)
                line="$line | $rho | $rl2"
                echo "$label,$s,$rho,$rl2" >>"$CSV"
            done
            echo "$line |" >>"$MD"
        done
    done
    ;;
3)
    features jigsaws jigsaws "$JIG_SAMPLING"
    JROWS="mlp:I3D+MLP usdl:USDL usdl-mvla:+MVLA musdl:MUSDL musdl-mvla:+MVLA core:CoRe core-mvla:+MVLA tpt:TPT tpt-mvla:+MVLA hgcn:HGCN hgcn-mvla:+MVLA"
    FROWS="mslstm:MS-LSTM mslstm-mvla:+MVLA gdlt:GDLT gdlt-mvla:+MVLA core:CoRe core-mvla:+MVLA tpt:TPT tpt-mvla:+MVLA mixer:MLP-Mixer mixer-mvla:+MVLA"
    TASKS="Suturing Needle_Passing Knot_Tying"
    if [ "$QUICK" = 1 ]; then
        JROWS="mlp:I3D+MLP" FROWS="mixer:MLP-Mixer" TASKS=Knot_Tying
    fi
    for r in $JROWS; do
        key=${r%%:*}
        head=${key%-mvla}
        mv=--no-mvla
        [ "$key" != "$head" ] && mv=--mvla
        for task in $TASKS; do
            run_row "$T/jigsaws/$key/$task" --data "$D/jigsaws" --dataset jigsaws --features "$OUT/features/jigsaws" \
                --head "$head" $mv --setting w/o --folds "$task" $JIG_SAMPLING $CLIP_ARGS
        done
    done
    for r in $FROWS; do
        key=${r%%:*}
        head=${key%-mvla}
        mv="--no-mvla"
        [ "$key" != "$head" ] && mv="--mvla --clip-features $D/fisv/clip_features"
        for tg in tes pcs; do
            # shellcheck disable=SC2086
            run_row "$T/fisv/$key/$tg" --data "$D/fisv" --dataset fisv --features "$D/fisv/features" --head "$head" \
                $mv --setting w/o --target "$tg" $CLIP_ARGS
        done
    done
    tmp=$T/.cells
    mkdir -p "$tmp"
    {
        echo "Table 3: JIGSAWS (four folds per task) and Fis-V ($SEEDS seeds, mean +- std; test split, checkpoint selected on validation)"
        echo
        echo "| JIGSAWS | rho S | NP | KT | Avg. | R-l2 (x100) S | NP | KT | Avg. |"
        echo "|---|---|---|---|---|---|---|---|---|"
    } >"$MD"
    echo "dataset,method,part,rho,rl2_x100_or_mse" >"$CSV"
    for r in $JROWS; do
        key=${r%%:*} name=${r#*:}
        rhos= rl2s= rf= lf=
        for task in Suturing Needle_Passing Knot_Tying; do
            f=$T/jigsaws/$key/$task
            if [ -f "$f/metrics.json" ]; then
                seed_values "$f" test_selected_rho >"$tmp/$task.rho"
                seed_values "$f" test_selected_rl2_x100 >"$tmp/$task.rl2"
                rf="$rf $tmp/$task.rho" lf="$lf $tmp/$task.rl2"
                rho=$(summarise 1 2 <"$tmp/$task.rho") rl2=$(summarise 1 3 <"$tmp/$task.rl2")
            else
                rho=- rl2=-
            fi
            rhos="$rhos | $rho" rl2s="$rl2s | $rl2"
            echo "JIGSAWS,$name,$task,$rho,$rl2" >>"$CSV"
        done
        # shellcheck disable=SC2086
        if [ -n "$rf" ]; then
            arho=$(combine z $rf | summarise 1 2) arl2=$(combine mean $lf | summarise 1 3)
        else
            arho=- arl2=-
        fi
        echo "JIGSAWS,$name,Avg.,$arho,$arl2" >>"$CSV"
        echo "| $name$rhos | $arho$rl2s | $arl2 |" >>"$MD"
    done
    {
        echo
        echo "| Fis-V | rho TES | PCS | Avg. | MSE TES | PCS | Avg. |"
        echo "|---|---|---|---|---|---|---|"
    } >>"$MD"
    for r in $FROWS; do
        key=${r%%:*} name=${r#*:}
        for tg in tes pcs; do
            seed_values "$T/fisv/$key/$tg" test_selected_rho >"$tmp/$tg.rho"
            seed_values "$T/fisv/$key/$tg" test_selected_mse >"$tmp/$tg.mse"
        done
        rt=$(summarise 1 3 <"$tmp/tes.rho") rp=$(summarise 1 3 <"$tmp/pcs.rho")
        mt=$(summarise 1 2 <"$tmp/tes.mse") mp=$(summarise 1 2 <"$tmp/pcs.mse")
        ra=$(combine z "$tmp/tes.rho" "$tmp/pcs.rho" | summarise 1 3)
        ma=$(combine mean "$tmp/tes.mse" "$tmp/pcs.mse" | summarise 1 2)
        echo "| $name | $rt | $rp | $ra | $mt | $mp | $ma |" >>"$MD"
        echo "Fis-V,$name,TES,$rt,$mt" >>"$CSV"
        echo "Fis-V,$name,PCS,$rp,$mp" >>"$CSV"
        echo "Fis-V,$name,Avg.,$ra,$ma" >>"$CSV"
    done
    rm -rf "$tmp"
    ;;
esac

elapsed=$(($(date +%s) - start))
echo "" >>"$MD"
echo "(paper_tables.sh --table $TABLE, $EPOCHS epochs, $SEEDS seeds; this invocation ${elapsed} s)" >>"$MD"
cat "$MD"
echo "table written to $MD and $CSV" >&2
