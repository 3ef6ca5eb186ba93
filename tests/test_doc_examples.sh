#!/bin/sh
# test_doc_examples.sh: every C example in the documentation compiles, and the runnable ones run,
# so that none can rot.  Run from the build folder by `make check` (tests/run.sh).
#
# An example is a fenced block opened by ```c in README.md and docs/*.md, or by ```c after the
# " * " of a comment in a header (any .h under the source tree), and closed by ```.
#   ```c run   a program: either a whole file with main(), or statements that are run as the body
#              of main(); it is compiled, linked with libaqa and run (exit status 0) in an empty
#              temporary folder (AQA_TEST_DATA and AQA_SHARED_DATA point at the data).
#   ```c       compiled only.  A block with a function definition at its top level is a file of
#              its own; any other block is the body of a function whose parameters are the names
#              examples may use without declaring them (see CONTEXT below).
#   ```c from FILE   an excerpt of FILE (a program the build compiles and a test runs, such as
#              examples/own_model.c): its lines must appear in FILE as they are, in one piece.
# Header examples get `#include <aqa.h>` and their own header first; Markdown examples include
# what they need.  Each block compiles with -Wall -Werror (unused names aside): a call to a
# function that does not exist fails.
#
# Environment (set by `make check`): AQA_EXAMPLE_CC, AQA_EXAMPLE_CFLAGS (include paths and the
# build's flags), AQA_EXAMPLE_LIBS (libaqa.a and its libraries), AQA_SRCDIR.
srcdir=${AQA_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
if [ -z "$AQA_EXAMPLE_CC" ] || [ -z "$AQA_EXAMPLE_LIBS" ]; then
    echo "SKIP test_doc_examples: run through make check (AQA_EXAMPLE_CC/CFLAGS/LIBS unset)"
    exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The names a compile-only fragment may use without declaring them.
CONTEXT='aqa_tensor *x, aqa_tensor *y, aqa_tensor *w, aqa_tensor *b, aqa_tensor *logits, aqa_tensor *labels,
    aqa_tensor *target, aqa_tensor *loss, aqa_tensor **params, int n, aqa_optimizer *opt, aqa_module *model,
    int64_t step, int epoch'

# Extracts the blocks of one file into $work/<id>.body and prints "id line mode" per block.
extract() { # file id_prefix
    awk -v out="$work" -v pre="$2" -v hdr="$(case "$1" in *.h) echo 1 ;; *) echo 0 ;; esac)" '
    function flush(   i, s, min, ind) {
        min = 1000 # header blocks are indented inside the comment: dedent them
        for (i = 1; i <= nl; i++) if (body[i] ~ /[^ \t]/) { match(body[i], /^ */); if (RLENGTH < min) min = RLENGTH }
        if (hdr != 1) min = 0
        for (i = 1; i <= nl; i++) print substr(body[i], min + 1) > (out "/" pre "_" nb ".body")
        close(out "/" pre "_" nb ".body")
        print pre "_" nb, start, mode, from
    }
    {
        line = $0
        if (hdr == 1) { if (line !~ /^ \*/) { inb = 0; next }; sub(/^ \* ?/, "", line) }
        if (!inb && line ~ /^[ \t]*```c( run| from [^ \t]+)?[ \t]*$/) {
            inb = 1; nb++; nl = 0; start = FNR + 1; from = ""
            mode = (line ~ /run/) ? "run" : (line ~ / from /) ? "from" : "compile"
            if (mode == "from") { from = line; sub(/^.* from /, "", from); sub(/[ \t]*$/, "", from) }
            next
        }
        if (inb && line ~ /^[ \t]*```[ \t]*$/) { inb = 0; flush(); next }
        if (inb) body[++nl] = line
    }' "$1"
}

files="$srcdir/README.md $(ls "$srcdir"/docs/*.md 2>/dev/null)
$(cd "$srcdir" && find . -name '*.h' -not -path './tests/*' -not -path './.git/*' | sed 's|^\./||' | sort)"
failed=0
count=0
k=0
for f in $files; do
    case "$f" in /*) path=$f ;; *) path=$srcdir/$f ;; esac
    rel=${path#"$srcdir"/}
    k=$((k + 1))
    extract "$path" "f$k" >"$work/list" || { echo "FAIL doc_examples: cannot read $rel"; failed=1; continue; }
    while read -r id line mode from; do
        count=$((count + 1))
        name="doc_example $rel:$line"
        if [ "$mode" = from ]; then # an excerpt: the lines must be in the file, contiguous, as they are
            if [ ! -f "$srcdir/$from" ]; then echo "FAIL $name: excerpt of $from, which does not exist"; failed=1; continue; fi
            if awk 'NR == FNR { b[++nb] = $0; next } { f[++nf] = $0 }
                    END { for (s = 1; s + nb - 1 <= nf; s++) { for (i = 1; i <= nb && f[s + i - 1] == b[i]; i++) ;
                          if (i > nb) exit 0 }; exit 1 }' "$work/$id.body" "$srcdir/$from"; then
                echo "PASS $name"
            else
                echo "FAIL $name: not (or no longer) an excerpt of $from: copy it again from there"; failed=1
            fi
            continue
        fi
        src="$work/$id.c"
        {
            echo "#include <stdio.h>"
            echo "#include <stdlib.h>"
            echo "#include <string.h>"
            echo "#include <math.h>"
            echo "#include <aqa.h>"
            case "$rel" in *.h) echo "#include \"$rel\"" ;; esac
            grep '^#include' "$work/$id.body" # a block's own includes go before any wrapper
        } >"$src"
        sed -i 's/^#include.*//' "$work/$id.body" # (emptied, not removed: line numbers stay right)
        if grep -q '\bmain *(' "$work/$id.body" || { [ "$mode" = compile ] &&
            grep -E '^[A-Za-z_][A-Za-z0-9_ *]*\(.*\) *\{ *$' "$work/$id.body" | grep -Evq '^(for|while|if|switch|do)\b'; }; then
            shape=file
        elif [ "$mode" = run ]; then
            shape=main
        else
            shape=context
        fi
        case $shape in
            main) echo "int main(void) {" >>"$src" ;;
            # the inner block lets an example declare a context name again (shadowing it)
            context) printf 'void aqa_doc_example(%s);\nvoid aqa_doc_example(%s) { {\n' "$CONTEXT" "$CONTEXT" >>"$src" ;;
        esac
        printf '#line %s "%s"\n' "$line" "$rel" >>"$src"
        cat "$work/$id.body" >>"$src"
        case $shape in main) printf '\nreturn 0;\n}\n' >>"$src" ;; context) printf '\n} }\n' >>"$src" ;; esac
        warn="-Wall -Werror -Wno-unused-variable -Wno-unused-but-set-variable -Wno-unused-but-set-parameter -Wno-unused-function -Wno-unused-parameter"
        if [ "$mode" = run ]; then
            # shellcheck disable=SC2086
            if ! $AQA_EXAMPLE_CC $AQA_EXAMPLE_CFLAGS $warn "$src" -o "$work/$id" $AQA_EXAMPLE_LIBS >"$work/cc.log" 2>&1; then
                echo "FAIL $name: does not compile"; head -8 "$work/cc.log"; failed=1; continue
            fi
            mkdir "$work/$id.run"
            if ! (cd "$work/$id.run" && "$work/$id") >"$work/run.log" 2>&1; then
                echo "FAIL $name: exits with a failure"; tail -8 "$work/run.log"; failed=1; continue
            fi
        else
            # shellcheck disable=SC2086
            if ! $AQA_EXAMPLE_CC $AQA_EXAMPLE_CFLAGS $warn -c "$src" -o "$work/$id.o" >"$work/cc.log" 2>&1; then
                echo "FAIL $name: does not compile"; head -8 "$work/cc.log"; failed=1; continue
            fi
        fi
        echo "PASS $name"
    done <"$work/list"
done
# code outside ```c fences is never compiled: an indented call in a header comment, or a fence of
# another language (or none) calling aqa_ functions, is a mistake to fence
stray=$(for f in $files; do
    case "$f" in /*) path=$f ;; *) path=$srcdir/$f ;; esac
    awk -v F="${path#"$srcdir"/}" '
        /^( \*)?[ \t]*```c( run| from [^ \t]+)?[ \t]*$/ { inc = 1; next }
        /^( \*)?[ \t]*```/ { if (inc) inc = 0; else ino = !ino; next }
        !inc && ((F ~ /\.h$/ && /^ \*    +.*aqa_[a-z0-9_]+\(.*\);/) || (ino && /aqa_[a-z0-9_]+\(.*\);/)) { print F ":" FNR }
    ' "$path"
done)
if [ -n "$stray" ]; then
    echo "FAIL doc_examples_fenced: code outside \`\`\`c fences (never compiled): $(echo $stray)"; failed=1
else
    echo "PASS doc_examples_fenced"
fi
# the scan itself must find the examples (a broken extraction must not pass silently)
if [ "$count" -lt 3 ]; then echo "FAIL doc_examples: only $count examples found"; failed=1; fi
exit $failed
