#!/bin/sh
# seeds.sh OUT: the seed corpora of the fuzzing harnesses (tests/fuzz/fuzz_*.c), one folder per
# target under OUT, made from the files in tests/data (and the real annotation files of
# ../shared/data when present).  Inputs of multi-file targets are the files joined with the
# separator of tests/fuzz/fuzz.h.  Seeds that need aqa to write them (a checkpoint, a feature
# cache file) come from `tests/test_fuzz_regress --write-seeds OUT`.
set -eu
out=$1
src=${AQA_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
data=$src/tests/data
shared=${AQA_SHARED_DATA:-$src/../shared/data}
sep='
--aqa-fuzz-next-file--
'
mkdir -p "$out"
for t in safetensors checkpoint feature_cache pickle ann_finediving ann_mtl_aqa ann_jigsaws ann_fisv npy png jpeg \
         bpe_vocab bpe_hf tokenizer config json text_set; do
    mkdir -p "$out/$t"
done
# join FILE... : the files joined by the separator, on stdout
join() {
    first=1
    for f in "$@"; do
        [ "$first" -eq 1 ] || printf '%s' "$sep"
        first=0
        if [ -f "$f" ]; then cat "$f"; fi
    done
}
cp "$data/safetensors/golden.safetensors" "$data/golden_mlp.safetensors" "$out/safetensors/"
cp "$data"/annotations/*.pkl "$data"/finediving/*.pkl "$out/pickle/"
n=0
for d in "$data/finediving" "$data"/finediving/bad_*; do
    n=$((n + 1))
    join "$d/FineDiving_fine-grained_annotation.pkl" "$d/FineDiving_coarse_annotation.pkl" "$d/train_split.pkl" \
        "$d/test_split.pkl" "$d/Sub_action_Types_Table.pkl" > "$out/ann_finediving/fixture$n"
done
d=$data/annotations/bad_mtl
join "$d/final_annotations_dict_with_dive_number.pkl" "$d/train_split_0.pkl" "$d/test_split_0.pkl" > "$out/ann_mtl_aqa/bad_mtl"
join "$data/annotations/bad_jigsaws/label.pkl" "$data/annotations/bad_jigsaws/splits.pkl" > "$out/ann_jigsaws/bad_jigsaws"
if [ -d "$shared/JIGSAWS" ]; then
    join "$shared/JIGSAWS/label.pkl" "$shared/JIGSAWS/splits.pkl" > "$out/ann_jigsaws/real"
    cp "$shared/JIGSAWS/splits.pkl" "$out/pickle/jigsaws_splits.pkl"
fi
if [ -f "$shared/MTL-AQA/test_split_0.pkl" ]; then cp "$shared/MTL-AQA/test_split_0.pkl" "$out/pickle/mtl_test_split.pkl"; fi
printf '1 28.71 29.36 1\n2 30.5 27.25 0\n' > "$out/ann_fisv/a.txt"
{ printf '1 28.71 29.36 1\n3 32.2 28.9 0\n'; printf '%s' "$sep"; printf '2 28.88 27.08 1\r\n\n'; } > "$out/ann_fisv/two"
if [ -d "$shared/Fis-V" ]; then
    join "$shared/Fis-V/train_dataset.txt" "$shared/Fis-V/test_dataset.txt" > "$out/ann_fisv/real"
fi
cp "$data"/metrics/*.npy "$out/npy/"
cp "$data"/metrics/*.npy "$out/feature_cache/"
for f in "$data"/image/*.png; do cp "$f" "$out/png/"; done
for f in "$data"/image/*.jpg; do cp "$f" "$out/jpeg/"; done
vocab=$src/models/clip/data/bpe_simple_vocab_16e6.txt.gz
head -c 4096 "$vocab" > "$out/bpe_vocab/head.gz"
gzip -dc "$vocab" | head -n 300 > "$out/bpe_vocab/head.txt"
join "$data/tokenizer/tiny_vocab.json" "$data/tokenizer/tiny_merges.txt" > "$out/bpe_hf/tiny"
i=0
awk -F '\t' '!/^#/ { print $2 }' "$data/tokenizer/clip_golden.txt" | head -n 60 | while IFS= read -r line; do
    i=$((i + 1))
    printf '%s' "$line" > "$out/tokenizer/line$i"
done
printf 'A photo of an inward 3.5 somersault tuck, &amp; a big splash!' > "$out/tokenizer/text"
{ printf 'epochs = 3\nlr = 1e-2 # comment\nhead = core\nlabels = a\nlabels = b\n'; printf '%s' "$sep";
  printf -- '--epochs\0004\000--no-resume\000--labels\000x\000y\000--lr=0.5'; } > "$out/config/run"
printf '{"data": "d", "epochs": "3", "lr": "0.001", "resume": "true", "head": "core"}' > "$out/json/settings"
printf '{"width_multiplier": 0.25, "num_classes": 10, "input": [2, 3, 8, 20, 16]}' > "$out/json/i3d_config"
printf 'inward take-off\nentry into the water\n' > "$out/text_set/stages"
cp "$data/fina/dive_numbers.txt" "$out/text_set/"
