#!/bin/sh
# test_install.sh: `make install` into a staging folder, then a user's program is compiled and
# linked with `pkg-config --cflags --libs aqa` alone (shared library), with `--static` (static
# library), and as C++, and run; a binding's dlopen of libaqa.so.0 works; every installed header
# compiles on its own as C and C++.  Run from the build folder.
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
if ! make install DESTDIR="$stage" >"$stage/install.log" 2>&1; then
    echo "FAIL test_make_install: make install failed"; tail -5 "$stage/install.log"; exit 1
fi
echo "PASS test_make_install"
pc=$(find "$stage" -name aqa.pc | head -1)
[ -n "$pc" ] || { echo "FAIL test_pkg_config_program: no aqa.pc installed"; exit 1; }
cat >"$stage/user.c" <<'C'
#include <aqa.h>
#include <stdio.h>
int main(void) {
    aqa_scope_begin();
    aqa_tensor *w = aqa_requires_grad(aqa_ones(AQA_SHAPE(2, 2), AQA_F64), true);
    aqa_tensor *loss = aqa_sum_all(aqa_square(aqa_matmul(w, w)));
    if (aqa_backward(loss, NULL, false) != AQA_OK) return 1;
    /* d/dw sum((w w)^2) at w = ones: 2 (ww) w^T + w^T 2 (ww) = 16 everywhere */
    double g = aqa_item(aqa_select(aqa_select(w->grad, 0, 1), 0, 0));
    aqa_scope_end();
    printf("%g\n", g);
    return g == 16.0 ? 0 : 1;
}
C
flags=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --define-prefix --cflags --libs aqa) || { echo "FAIL test_pkg_config_program: pkg-config failed"; exit 1; }
libdir=$(dirname "$(find "$stage" -name 'libaqa.so.0' | head -1)")
# the shared library: the program needs libaqa.so.0 (and nothing else of aqa's dependencies)
if cc "$stage/user.c" $flags -o "$stage/user" 2>"$stage/cc.log" && LD_LIBRARY_PATH=$libdir "$stage/user" >/dev/null &&
   readelf -d "$stage/user" | grep -q 'NEEDED.*libaqa\.so\.0'; then
    echo "PASS test_pkg_config_program"
else
    echo "FAIL test_pkg_config_program: $(head -3 "$stage/cc.log")"; exit 1
fi
# the static library with pkg-config --static: runs without libaqa.so
static=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --define-prefix --static --cflags --libs aqa)
if cc "$stage/user.c" -Wl,--as-needed "$libdir/libaqa.a" $static -o "$stage/user_static" 2>"$stage/cc.log" &&
   "$stage/user_static" >/dev/null && ! readelf -d "$stage/user_static" | grep -q 'libaqa\.so'; then
    echo "PASS test_pkg_config_static_program"
else
    echo "FAIL test_pkg_config_static_program: $(head -3 "$stage/cc.log")"; exit 1
fi
# what a binding does: dlopen libaqa.so.0 by name and call into it
cat >"$stage/binding.c" <<'C'
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
int main(void) {
    void *h = dlopen("libaqa.so.0", RTLD_NOW);
    if (!h) { fprintf(stderr, "%s\n", dlerror()); return 1; }
    void *(*zeros)(int, const int64_t *, int) = (void *(*)(int, const int64_t *, int))dlsym(h, "aqa_zeros");
    int64_t (*numel)(const void *) = (int64_t (*)(const void *))dlsym(h, "aqa_numel");
    void (*tfree)(void *) = (void (*)(void *))dlsym(h, "aqa_tensor_free");
    if (!zeros || !numel || !tfree) return 2;
    int64_t shape[2] = {3, 4};
    void *t = zeros(2, shape, 0);
    int ok = t && numel(t) == 12;
    tfree(t);
    return ok ? 0 : 3;
}
C
# (a sanitizer build's library needs its runtime first in the program: the flags pkg-config gives)
sanitize=$(echo "$flags" | tr ' ' '\n' | grep '^-fsanitize' | tr '\n' ' ')
if cc "$stage/binding.c" $sanitize -o "$stage/binding" -ldl 2>"$stage/cc.log" &&
   LD_LIBRARY_PATH=$libdir "$stage/binding" 2>"$stage/run.log"; then
    echo "PASS test_shared_library_dlopen"
else
    echo "FAIL test_shared_library_dlopen: $(head -3 "$stage/cc.log" "$stage/run.log")"; exit 1
fi
# the same program as C++ links against the C library only if the headers declare extern "C"
if command -v c++ >/dev/null; then
    if c++ -x c++ "$stage/user.c" -x none $flags -o "$stage/user_cxx" 2>"$stage/cxx.log" &&
       LD_LIBRARY_PATH=$libdir "$stage/user_cxx" >/dev/null; then
        echo "PASS test_pkg_config_program_cxx"
    else
        echo "FAIL test_pkg_config_program_cxx: $(head -3 "$stage/cxx.log")"; exit 1
    fi
fi
# Every installed header compiles on its own (it includes what it needs), as C and as C++ (its
# declarations sit in extern "C"), so a user may include any one of them.
inc=$(dirname "$(find "$stage" -name aqa.h | head -1)")
bad=""
for h in $(cd "$inc/.." && find aqa -name '*.h' | sort); do
    rel=${h#aqa/}
    printf '#include "%s"\n' "$rel" >"$stage/one.c"
    cc -std=gnu11 -fsyntax-only -Wall -Werror $flags -I"$inc" "$stage/one.c" 2>"$stage/one.log" || bad="$bad $rel(C)"
    if command -v c++ >/dev/null; then
        printf '#include "%s"\nextern "C" int aqa_header_check_%s(void);\n' "$rel" "$(echo "$rel" | tr '/.-' '___')" >"$stage/one.cc"
        c++ -fsyntax-only -Wall $flags -I"$inc" "$stage/one.cc" 2>>"$stage/one.log" || bad="$bad $rel(C++)"
    fi
done
if [ -z "$bad" ]; then
    echo "PASS test_installed_headers_standalone"
else
    echo "FAIL test_installed_headers_standalone:$bad"; head -5 "$stage/one.log"; exit 1
fi
