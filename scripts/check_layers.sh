#!/bin/sh
# check_layers.sh: checks that every #include "folder/..." in the library points down the layers
# of docs/architecture.md (or stays in its own layer).  Prints each include that points up or
# sideways and exits 1 if there is one.  Usage: scripts/check_layers.sh [source folder]
#
# Layers from the bottom; a folder may include its own layer and the layers below it.  ops/ and
# autograd/ are one layer (ops record nodes, the engine runs backward functions that are ops);
# models/ and datasets/ stand side by side and neither includes the other.
set -u
top=${1:-$(cd "$(dirname "$0")/.." && pwd)}
layers="base io image tensor ops,autograd nn,dist models,datasets eval"
folders=$(echo "$layers" | tr ', ' '\n\n')

# the layer number of a folder, 0 for folders outside the library (examples, tests, ...)
layer_of() {
    n=0
    for l in $layers; do
        n=$((n + 1))
        case ",$l," in *",$1,"*) echo $n; return ;; esac
    done
    echo 0
}

bad=0
for dir in $folders; do
    [ -d "$top/$dir" ] || continue
    own=$(layer_of "$dir")
    # every quoted include of a top-level folder, as file:line:folder
    hits=$(cd "$top" && grep -rnoE '^[[:space:]]*#[[:space:]]*include[[:space:]]+"[a-z_]+/' "$dir" \
        --include='*.c' --include='*.h' --include='*.cu' | sed -E 's/#[[:space:]]*include[[:space:]]+"//; s|/$||; s/:[[:space:]]*/:/')
    for h in $hits; do
        to=${h##*:}
        where=${h%:*}
        [ "$to" = "$dir" ] && continue
        target=$(layer_of "$to")
        [ "$target" -eq 0 ] && continue
        ok=1
        [ "$target" -gt "$own" ] && ok=0
        # side by side: models and datasets never include each other
        { [ "$dir" = models ] && [ "$to" = datasets ]; } && ok=0
        { [ "$dir" = datasets ] && [ "$to" = models ]; } && ok=0
        if [ $ok = 0 ]; then
            echo "layer violation: $where includes $to/ ($dir/ may include only itself and the layers below it)"
            bad=1
        fi
    done
done
exit $bad
