/* nvrtc_jit.c: run-time compilation of the backend's CUDA C programs with NVRTC, and their caches.
 *
 * A program (a name such as "unary_f32", whose source kernels_src.c generates) is compiled to a
 * CUBIN for the device's own architecture, clamped to what the loaded NVRTC supports
 * (nvrtcGetSupportedArchs): CUBIN rather than PTX, which a driver older than NVRTC refuses.  When
 * the clamped architecture has another major version than the device (a cc 10.0 GPU with an NVRTC
 * that stops at sm_90), no CUBIN would load, so the program is compiled to PTX for compute_<arch>
 * and the driver compiles that for the device.
 *
 * Caches, fastest first:
 *   - loaded functions, by (device, program, kernel);
 *   - CUBINs in memory, by the key below;
 *   - CUBINs on disk in $AQA_KERNEL_CACHE, else ~/.cache/aqa/kernels, else /tmp/aqa-kernels-<uid>
 *     when home is not writable; AQA_KERNEL_CACHE=off disables it.  The key is a 128-bit hash
 *     (two FNV-1a 64 passes) of the source, the options, the arch, the NVRTC version and aqa's
 *     version; a file holds a header (magic, key, payload length, payload checksum, header
 *     checksum) then the CUBIN, is written atomically (io/atomic_file.h), and is recompiled and
 *     rewritten when any check fails (a corrupt or truncated entry).
 * A failed compile returns AQA_EDEVICE with NVRTC's log and the numbered source lines around the
 * first error; the whole log with the whole numbered source goes to a file named in the message
 * (and to stderr when AQA_CUDA_VERBOSE=1). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "io/atomic_file.h"
#include "tensor/cuda/cuda-impl.h"

static pthread_mutex_t jit_lock = PTHREAD_MUTEX_INITIALIZER;
static aqa_nvrtc_counters counters;

uint64_t aqa__fnv1a(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

int aqa__nvrtc_version(void) {
    static int v = -1;
    if (v >= 0) return v;
    if (!aqa__nvrtc.Version) return 0;
    int major = 0, minor = 0;
    if (aqa__nvrtc.Version(&major, &minor) != NVRTC_SUCCESS) return 0;
    v = major * 1000 + minor * 10;
    return v;
}

int aqa__nvrtc_pick_arch(int cc, const int *archs, int n, bool *ptx) {
    int best = 0;
    for (int i = 0; i < n; i++)
        if (archs[i] <= cc && archs[i] > best) best = archs[i];
    /* a CUBIN runs on later minor versions of its major only (sm_80 code on cc 8.6, never on
     * 9.0): across majors, PTX for compute_<best>, which the driver compiles for the device */
    *ptx = best && best / 10 != cc / 10;
    return best;
}

int aqa__nvrtc_arch_for(int cc, bool *ptx) {
    *ptx = false;
    if (aqa__cuda_load_nvrtc() != AQA_OK) return 0;
    int n = 0;
    if (aqa__nvrtc.GetNumSupportedArchs(&n) != NVRTC_SUCCESS || n <= 0 || n > 256) {
        aqa_fail(AQA_EDEVICE, "NVRTC: nvrtcGetNumSupportedArchs failed");
        return 0;
    }
    int archs[256];
    if (aqa__nvrtc.GetSupportedArchs(archs) != NVRTC_SUCCESS) {
        aqa_fail(AQA_EDEVICE, "NVRTC: nvrtcGetSupportedArchs failed");
        return 0;
    }
    int best = aqa__nvrtc_pick_arch(cc, archs, n, ptx);
    if (!best) {
        aqa_fail(AQA_EUNSUPPORTED, "NVRTC %d.%d cannot compile for compute capability %d.%d (oldest target sm_%d)",
                 aqa__nvrtc_version() / 1000, (aqa__nvrtc_version() % 1000) / 10, cc / 10, cc % 10, archs[0]);
        return 0;
    }
    return best;
}

/* ---- a small string-keyed map -------------------------------------------------------------- */

typedef struct map_entry {
    char *key;   /* malloc'd, NULL = empty */
    void *value; /* payload */
    size_t size; /* payload size (CUBINs) */
} map_entry;
typedef struct map {
    map_entry *e;
    size_t cap, n;
} map;

static map_entry *map_find(map *m, const char *key) {
    if (!m->cap) return NULL;
    size_t j = (size_t)aqa__fnv1a(AQA_FNV_OFFSET, key, strlen(key)) & (m->cap - 1);
    while (m->e[j].key) {
        if (strcmp(m->e[j].key, key) == 0) return &m->e[j];
        j = (j + 1) & (m->cap - 1);
    }
    return NULL;
}

static bool map_put(map *m, const char *key, void *value, size_t size) {
    if ((m->n + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 256;
        map_entry *e = calloc(cap, sizeof *e);
        if (!e) return false;
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->e[i].key) continue;
            size_t j = (size_t)aqa__fnv1a(AQA_FNV_OFFSET, m->e[i].key, strlen(m->e[i].key)) & (cap - 1);
            while (e[j].key) j = (j + 1) & (cap - 1);
            e[j] = m->e[i];
        }
        free(m->e);
        m->e = e;
        m->cap = cap;
    }
    char *k = strdup(key);
    if (!k) return false;
    size_t j = (size_t)aqa__fnv1a(AQA_FNV_OFFSET, key, strlen(key)) & (m->cap - 1);
    while (m->e[j].key) j = (j + 1) & (m->cap - 1);
    m->e[j].key = k;
    m->e[j].value = value;
    m->e[j].size = size;
    m->n++;
    return true;
}

static map cubin_cache;    /* key hex -> CUBIN bytes */
static map module_cache;   /* "dev/program" -> CUmodule */
static map function_cache; /* "dev/program/kernel" -> CUfunction */

aqa_nvrtc_counters aqa__nvrtc_counters(void) {
    pthread_mutex_lock(&jit_lock);
    aqa_nvrtc_counters c = counters;
    pthread_mutex_unlock(&jit_lock);
    return c;
}

void aqa__nvrtc_forget_memory_cache(void) {
    pthread_mutex_lock(&jit_lock);
    for (size_t i = 0; i < cubin_cache.cap; i++) {
        free(cubin_cache.e[i].key);
        free(cubin_cache.e[i].value);
    }
    free(cubin_cache.e);
    memset(&cubin_cache, 0, sizeof cubin_cache);
    pthread_mutex_unlock(&jit_lock);
}

/* ---- disk cache ---------------------------------------------------------------------------- */

#define CACHE_MAGIC "AQAKCUB1"
typedef struct cache_header {
    char magic[8];        /* CACHE_MAGIC */
    uint64_t key[2];      /* the 128-bit key */
    uint64_t payload_len; /* CUBIN bytes that follow */
    uint64_t payload_sum; /* FNV-1a 64 of the CUBIN */
    uint64_t header_sum;  /* FNV-1a 64 of the fields above */
} cache_header;

static int mkdir_p(const char *path) {
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
    return access(tmp, W_OK) == 0 ? 0 : -1;
}

const char *aqa__nvrtc_cache_dir(void) {
    /* re-read each time: tests switch AQA_KERNEL_CACHE between runs */
    static _Thread_local char dir[1024];
    const char *env = getenv("AQA_KERNEL_CACHE");
    if (env && (strcmp(env, "off") == 0 || strcmp(env, "0") == 0)) return "";
    if (env && *env) {
        snprintf(dir, sizeof dir, "%s", env);
        if (mkdir_p(dir) == 0) return dir;
    }
    const char *home = getenv("HOME");
    if (home && *home) {
        snprintf(dir, sizeof dir, "%s/.cache/aqa/kernels", home);
        if (mkdir_p(dir) == 0) return dir;
    }
    snprintf(dir, sizeof dir, "/tmp/aqa-kernels-%u", (unsigned)getuid());
    if (mkdir_p(dir) == 0) return dir;
    return "";
}

/* Reads the entry; returns the CUBIN (malloc'd) or NULL when absent (*corrupt false) or bad
 * (*corrupt true). */
static char *disk_read(const char *path, const uint64_t key[2], size_t *size, bool *corrupt) {
    *corrupt = false;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    cache_header h;
    char *buf = NULL;
    *corrupt = true;
    if (fread(&h, sizeof h, 1, f) != 1) goto bad;
    if (memcmp(h.magic, CACHE_MAGIC, 8) != 0) goto bad;
    if (h.header_sum != aqa__fnv1a(AQA_FNV_OFFSET, &h, offsetof(cache_header, header_sum))) goto bad;
    if (h.key[0] != key[0] || h.key[1] != key[1]) goto bad;
    if (h.payload_len == 0 || h.payload_len > ((uint64_t)1 << 30)) goto bad;
    buf = malloc(h.payload_len);
    if (!buf) goto bad;
    if (fread(buf, 1, h.payload_len, f) != h.payload_len) goto bad;
    if (fgetc(f) != EOF) goto bad; /* trailing bytes: not what we wrote */
    if (aqa__fnv1a(AQA_FNV_OFFSET, buf, h.payload_len) != h.payload_sum) goto bad;
    fclose(f);
    *corrupt = false;
    *size = h.payload_len;
    return buf;
bad:
    free(buf);
    fclose(f);
    return NULL;
}

static void disk_write(const char *path, const uint64_t key[2], const char *cubin, size_t size) {
    cache_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, CACHE_MAGIC, 8);
    h.key[0] = key[0];
    h.key[1] = key[1];
    h.payload_len = size;
    h.payload_sum = aqa__fnv1a(AQA_FNV_OFFSET, cubin, size);
    h.header_sum = aqa__fnv1a(AQA_FNV_OFFSET, &h, offsetof(cache_header, header_sum));
    aqa_atomic_file *af;
    /* a cache that cannot be written is not an error: the kernel is compiled next time */
    if (aqa_atomic_open(path, &af) != AQA_OK) return;
    if (aqa_atomic_write(af, &h, sizeof h) != AQA_OK || aqa_atomic_write(af, cubin, size) != AQA_OK) {
        aqa_atomic_abort(af);
        return;
    }
    aqa_atomic_commit(af);
}

/* ---- compiling ----------------------------------------------------------------------------- */

/* Appends source lines [from, to] (1-based) numbered, to buf. */
static size_t numbered_lines(char *buf, size_t n, size_t l, const char *src, int from, int to) {
    int line = 1;
    const char *p = src;
    while (*p && line <= to) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (line >= from) l += (size_t)snprintf(buf + l, l < n ? n - l : 0, "%5d| %.*s\n", line, (int)len, p);
        if (!e) break;
        p = e + 1;
        line++;
    }
    return l;
}

static _Thread_local char last_failure_path[1100];

/* Records the failed compile's error (log + lines around the first error) and writes the full
 * report to a file. */
static aqa_status compile_failed(const char *name, int arch, const char *src, const char *log, nvrtcResult r) {
    /* first "(<line>): error" in the log */
    int eline = 0;
    for (const char *p = log; p && (p = strchr(p, '(')); p++) {
        int v;
        char c;
        if (sscanf(p, "(%d)%c", &v, &c) == 2 && c == ':') {
            eline = v;
            break;
        }
    }
    char around[600];
    size_t l = numbered_lines(around, sizeof around, 0, src, eline > 3 ? eline - 3 : 1, eline ? eline + 2 : 6);
    (void)l;
    const char *dir = aqa__nvrtc_cache_dir();
    snprintf(last_failure_path, sizeof last_failure_path, "%s/failed-%s-sm_%d.log", *dir ? dir : "/tmp", name, arch);
    FILE *f = fopen(last_failure_path, "w");
    size_t full_n = strlen(src) * 2 + strlen(log) + 256;
    char *full = malloc(full_n);
    if (full) {
        size_t fl = (size_t)snprintf(full, full_n, "NVRTC log for %s (sm_%d):\n%s\nsource:\n", name, arch, log);
        numbered_lines(full, full_n, fl, src, 1, 1 << 30);
        if (f) fputs(full, f);
        const char *v = getenv("AQA_CUDA_VERBOSE");
        if (v && *v && strcmp(v, "0") != 0) fputs(full, stderr);
        free(full);
    }
    if (f) fclose(f);
    return aqa_fail(AQA_EDEVICE,
                    "NVRTC %d.%d could not compile program '%s' for sm_%d (%s): %.400s\nsource lines:\n%s"
                    "(full log and numbered source: %s)",
                    aqa__nvrtc_version() / 1000, (aqa__nvrtc_version() % 1000) / 10, name, arch,
                    aqa__nvrtc.GetErrorString ? aqa__nvrtc.GetErrorString(r) : "?", log, around,
                    f ? last_failure_path : "not written");
}

/* Compiles without caches (jit_lock not held). */
static aqa_status compile_now(const char *name, const char *src, const char *const *opts, int nopts,
                              int arch, bool ptx, char **cubin, size_t *size) {
    nvrtcProgram prog;
    nvrtcResult r = aqa__nvrtc.CreateProgram(&prog, src, name, 0, NULL, NULL);
    if (r != NVRTC_SUCCESS)
        return aqa_fail(AQA_EDEVICE, "NVRTC: nvrtcCreateProgram(%s) failed: %s", name, aqa__nvrtc.GetErrorString(r));
    r = aqa__nvrtc.CompileProgram(prog, nopts, opts);
    if (r != NVRTC_SUCCESS) {
        size_t ln = 0;
        char *log = NULL;
        if (aqa__nvrtc.GetProgramLogSize(prog, &ln) == NVRTC_SUCCESS && (log = malloc(ln + 1))) {
            if (aqa__nvrtc.GetProgramLog(prog, log) != NVRTC_SUCCESS) log[0] = '\0';
            log[ln] = '\0';
        }
        aqa_status st = compile_failed(name, arch, src, log ? log : "(no log)", r);
        free(log);
        aqa__nvrtc.DestroyProgram(&prog);
        return st;
    }
    size_t n = 0;
    r = ptx ? aqa__nvrtc.GetPTXSize(prog, &n) : aqa__nvrtc.GetCUBINSize(prog, &n);
    char *bin = r == NVRTC_SUCCESS && n ? malloc(n) : NULL;
    if (bin) r = ptx ? aqa__nvrtc.GetPTX(prog, bin) : aqa__nvrtc.GetCUBIN(prog, bin);
    aqa__nvrtc.DestroyProgram(&prog);
    if (!bin || r != NVRTC_SUCCESS) {
        free(bin);
        return aqa_fail(AQA_EDEVICE, "NVRTC: no %s for %s (%s_%d): %s", ptx ? "PTX" : "CUBIN", name,
                        ptx ? "compute" : "sm", arch, r == NVRTC_SUCCESS ? "empty" : aqa__nvrtc.GetErrorString(r));
    }
    *cubin = bin;
    *size = n;
    return AQA_OK;
}

aqa_status aqa__nvrtc_compile(const char *name, const char *source, int arch, bool ptx, char **cubin, size_t *size) {
    aqa_status st = aqa__cuda_load_nvrtc();
    if (st) return st;
    char archopt[48];
    snprintf(archopt, sizeof archopt, "--gpu-architecture=%s_%d", ptx ? "compute" : "sm", arch);
    const char *opts[] = {archopt, "--std=c++17", "--device-as-default-execution-space"};
    int nopts = (int)(sizeof opts / sizeof opts[0]);
    /* the key: source, options, arch, NVRTC version, aqa version */
    uint64_t key[2];
    int nv = aqa__nvrtc_version();
    for (int k = 0; k < 2; k++) {
        uint64_t h = AQA_FNV_OFFSET ^ (k ? 0x5bd1e9955bd1e995ull : 0);
        h = aqa__fnv1a(h, source, strlen(source) + 1);
        for (int i = 0; i < nopts; i++) h = aqa__fnv1a(h, opts[i], strlen(opts[i]) + 1);
        h = aqa__fnv1a(h, &arch, sizeof arch);
        h = aqa__fnv1a(h, &nv, sizeof nv);
        h = aqa__fnv1a(h, PACKAGE_VERSION, sizeof PACKAGE_VERSION);
        key[k] = h;
    }
    char hex[80];
    snprintf(hex, sizeof hex, "%016llx%016llx-%s_%d", (unsigned long long)key[0], (unsigned long long)key[1],
             ptx ? "compute" : "sm", arch);

    pthread_mutex_lock(&jit_lock);
    map_entry *e = map_find(&cubin_cache, hex);
    if (e) {
        counters.memory_hits++;
        *cubin = malloc(e->size);
        if (*cubin) memcpy(*cubin, e->value, e->size);
        *size = e->size;
        pthread_mutex_unlock(&jit_lock);
        return *cubin ? AQA_OK : aqa_fail(AQA_ENOMEM, "NVRTC cache: out of host memory");
    }
    const char *dir = aqa__nvrtc_cache_dir();
    char path[1200] = "";
    char *bin = NULL;
    size_t n = 0;
    if (*dir) {
        snprintf(path, sizeof path, "%s/%s-%s.cubin", dir, name, hex);
        bool corrupt = false;
        bin = disk_read(path, key, &n, &corrupt);
        if (bin) counters.disk_hits++;
        if (corrupt) counters.disk_corrupt++;
    }
    if (!bin) {
        /* compile outside the lock (NVRTC is thread safe): programs compile in parallel; two
         * threads asking for the same one both compile it, which is harmless */
        counters.compiles++;
        pthread_mutex_unlock(&jit_lock);
        st = compile_now(name, source, opts, nopts, arch, ptx, &bin, &n);
        if (st) return st;
        pthread_mutex_lock(&jit_lock);
        if (*path) disk_write(path, key, bin, n); /* under the lock: one writer per path */
    }
    char *copy = malloc(n);
    if (copy) {
        memcpy(copy, bin, n);
        if (!map_put(&cubin_cache, hex, copy, n)) free(copy);
    }
    pthread_mutex_unlock(&jit_lock);
    *cubin = bin;
    *size = n;
    return AQA_OK;
}

aqa_status aqa__cuda_kernel(aqa_cuda_dev *d, int dev_index, const char *program, const char *kernel,
                            CUfunction *out) {
    char fkey[256];
    snprintf(fkey, sizeof fkey, "%d/%s/%s", dev_index, program, kernel);
    pthread_mutex_lock(&jit_lock);
    map_entry *e = map_find(&function_cache, fkey);
    if (e) {
        *out = (CUfunction)e->value;
        pthread_mutex_unlock(&jit_lock);
        return AQA_OK;
    }
    char mkey[200];
    snprintf(mkey, sizeof mkey, "%d/%s", dev_index, program);
    map_entry *me = map_find(&module_cache, mkey);
    CUmodule mod = me ? (CUmodule)me->value : NULL;
    pthread_mutex_unlock(&jit_lock);
    if (!mod) {
        char *src = aqa__cuda_program_source(program);
        if (!src) return aqa_last_status();
        bool ptx;
        int arch = aqa__nvrtc_arch_for(d->cc, &ptx);
        if (!arch) {
            free(src);
            return aqa_last_status();
        }
        char *bin = NULL;
        size_t n = 0;
        aqa_status st = aqa__nvrtc_compile(program, src, arch, ptx, &bin, &n);
        free(src);
        if (st) return st;
        CUresult r = aqa__cu.ModuleLoadData(&mod, bin);
        free(bin);
        if (r != CUDA_SUCCESS) {
            char what[200];
            snprintf(what, sizeof what, "cuModuleLoadData(program %s, %s_%d)", program, ptx ? "compute" : "sm", arch);
            return aqa__cu_fail(r, what);
        }
        pthread_mutex_lock(&jit_lock);
        me = map_find(&module_cache, mkey);
        if (me) { /* another thread loaded it meanwhile: use that one (this one stays loaded) */
            mod = (CUmodule)me->value;
        } else if (!map_put(&module_cache, mkey, mod, 0)) {
            pthread_mutex_unlock(&jit_lock);
            return aqa_fail(AQA_ENOMEM, "CUDA kernel cache: out of host memory");
        }
        pthread_mutex_unlock(&jit_lock);
    }
    CUfunction f;
    CUresult r = aqa__cu.ModuleGetFunction(&f, mod, kernel);
    if (r != CUDA_SUCCESS) {
        char what[200];
        snprintf(what, sizeof what, "cuModuleGetFunction(%s in program %s)", kernel, program);
        return aqa__cu_fail(r, what);
    }
    pthread_mutex_lock(&jit_lock);
    if (!map_find(&function_cache, fkey)) map_put(&function_cache, fkey, f, 0);
    pthread_mutex_unlock(&jit_lock);
    *out = f;
    return AQA_OK;
}
