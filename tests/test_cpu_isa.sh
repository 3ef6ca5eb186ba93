#!/bin/sh
# test_cpu_isa.sh: the CPU kernels that have one version per vector extension (random fill,
# convolution GEMM, elementwise, reductions, optimizers, layer norm) pass the same tests with the wider
# versions turned off: each program runs again under AQA_CPU_ISA=avx2 and =baseline (on a CPU
# without AVX-512 or AVX2 the cap changes nothing and the run repeats the default one).  Case
# names get the cap appended.  Programs are looked up in tests/ of the current folder (the build).
progs="tests/test_tensor tests/test_conv tests/test_elementwise tests/test_reduce tests/test_optim tests/test_nn_layers"
status=0
for isa in avx2 baseline; do
    for p in $progs; do
        [ -x "$p" ] || { echo "SKIP $(basename "$p") [$isa]: $p not built"; continue; }
        out=$(AQA_CPU_ISA=$isa "$p" 2>&1)
        rc=$?
        echo "$out" | sed -n "s/^\(PASS\|FAIL\|SKIP\) \([^ :]*\)/\1 \2 [$isa]/p"
        if [ $rc -ne 0 ] && ! echo "$out" | grep -q '^FAIL '; then
            echo "FAIL $(basename "$p") [$isa]: exited with status $rc"
        fi
        [ $rc -eq 0 ] || status=1
    done
done
exit $status
