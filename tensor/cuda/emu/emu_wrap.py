#!/usr/bin/env python3
"""emu_wrap.py SRC OUT_SO: compiles one aqa CUDA program (as NVRTC would get it) into a shared
library for the CPU emulator: every `extern "C" __global__` kernel NAME gets a wrapper
`NAME__emu(void **args, const emu_ctx *ctx, dim3 block_idx, dim3 thread_idx)` that unpacks the cuLaunchKernel argument array."""
import re
import subprocess
import sys

src, out = sys.argv[1], sys.argv[2]
here = sys.path[0]
text = open(src).read()
full = '#include "%s/emu_shim.h"\n#line 1 "program"\n' % here + text
cpp = out + ".cpp"
open(cpp, "w").write(full)
pre = subprocess.run(["g++", "-std=c++17", "-E", "-P", cpp], capture_output=True, text=True)
if pre.returncode:
    sys.stderr.write(pre.stderr)
    sys.exit(1)
wrappers = []
for m in re.finditer(r'extern "C" __attribute__\(\(used\)\) void (\w+)\(([^)]*)\)', pre.stdout):
    name, params = m.group(1), m.group(2)
    args = []
    for i, p in enumerate([p.strip() for p in params.split(",") if p.strip()]):
        ty = re.sub(r"\b\w+$", "", p).strip()  # drop the parameter name
        args.append("*(%s *)a[%d]" % (ty, i))
    wrappers.append('extern "C" void %s__emu(void **a, const emu_ctx *c, dim3 bid, dim3 tid) {\n'
                    '    emu_c = c; gridDim = c->grid; blockDim = c->block; blockIdx = bid; threadIdx = tid;\n'
                    '    %s(%s);\n}\n' % (name, name, ", ".join(args)))
if not wrappers:
    sys.stderr.write("emu_wrap: no kernels found in %s\n" % src)
    sys.exit(1)
open(cpp, "a").write("\n".join(wrappers))
r = subprocess.run(["g++", "-std=c++17", "-O1", "-shared", "-fPIC", "-w", "-o", out, cpp], capture_output=True, text=True)
sys.stderr.write(r.stderr)
sys.exit(r.returncode)
