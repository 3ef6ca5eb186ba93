/* cuda_alloc.c: the caching device allocator.
 *
 * cuMemAlloc/cuMemFree synchronise the device and cost tens of microseconds, far too much for the
 * thousands of temporaries of a training step.  Freed blocks therefore go to size-bucketed free
 * lists and are handed out again: a request is rounded (512 B steps below 1 MiB, 128 KiB steps
 * above), and a free block of the same bucket (power of two range) is reused when it is at most
 * 1/8 larger.  All work runs on one stream per device, so a block freed by the host while a
 * kernel still uses it can be reused at once: the next user's kernels queue behind it.  When the
 * driver runs out of memory the cache is released (after a synchronisation) and the request is
 * retried; a final failure names the request and what was in use and cached. */
#include <stdlib.h>
#include <string.h>

#include "tensor/cuda/cuda-impl.h"
#include "tensor/cuda/cuda.h"

#define NBUCKETS 64

/* A cached free block. */
typedef struct block {
    CUdeviceptr ptr;    /* device address */
    size_t size;        /* its real size */
    struct block *next; /* next free block of the bucket */
} block;

/* Live block table entry (open addressing, key ptr). */
typedef struct live_entry {
    CUdeviceptr ptr; /* 0 = empty slot, 1 = deleted */
    size_t size;     /* real block size */
} live_entry;

typedef struct dev_pool {
    block *free_list[NBUCKETS]; /* free blocks by bucket */
    live_entry *live;           /* blocks in use */
    size_t live_cap, live_n, live_used; /* capacity, entries, slots not empty (incl. deleted) */
    aqa_cuda_mem_stats stats;          /* counters */
} dev_pool;

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static dev_pool pools[AQA_CUDA_MAX_DEVICES];

static size_t round_size(size_t n) {
    if (n < ((size_t)1 << 20)) return (n + 511) & ~(size_t)511;
    return (n + ((size_t)128 << 10) - 1) & ~(((size_t)128 << 10) - 1);
}

static int bucket_of(size_t n) {
    int b = 0;
    while (((size_t)1 << (b + 1)) <= n && b < NBUCKETS - 1) b++;
    return b;
}

static size_t hash_ptr(CUdeviceptr p, size_t cap) {
    uint64_t h = (uint64_t)p * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 17) & (cap - 1);
}

static bool live_grow(dev_pool *p) {
    size_t cap = p->live_cap ? p->live_cap * 2 : 1024;
    live_entry *t = calloc(cap, sizeof *t);
    if (!t) return false;
    for (size_t i = 0; i < p->live_cap; i++) {
        if (p->live[i].ptr <= 1) continue;
        size_t j = hash_ptr(p->live[i].ptr, cap);
        while (t[j].ptr) j = (j + 1) & (cap - 1);
        t[j] = p->live[i];
    }
    free(p->live);
    p->live = t;
    p->live_cap = cap;
    p->live_used = p->live_n;
    return true;
}

static bool live_put(dev_pool *p, CUdeviceptr ptr, size_t size) {
    if ((p->live_used + 1) * 2 > p->live_cap && !live_grow(p)) return false;
    size_t j = hash_ptr(ptr, p->live_cap);
    while (p->live[j].ptr > 1) j = (j + 1) & (p->live_cap - 1);
    if (p->live[j].ptr == 0) p->live_used++;
    p->live[j].ptr = ptr;
    p->live[j].size = size;
    p->live_n++;
    return true;
}

/* Removes ptr; returns its size, or 0 when unknown. */
static size_t live_take(dev_pool *p, CUdeviceptr ptr) {
    if (!p->live_cap) return 0;
    size_t j = hash_ptr(ptr, p->live_cap);
    while (p->live[j].ptr) {
        if (p->live[j].ptr == ptr) {
            size_t s = p->live[j].size;
            p->live[j].ptr = 1; /* deleted */
            p->live_n--;
            return s;
        }
        j = (j + 1) & (p->live_cap - 1);
    }
    return 0;
}

/* Frees every cached block of device i (caller holds pool_lock, device context current). */
static void release_cached(int i) {
    dev_pool *p = &pools[i];
    for (int b = 0; b < NBUCKETS; b++) {
        block *k = p->free_list[b];
        while (k) {
            block *next = k->next;
            aqa__cu.MemFree(k->ptr);
            p->stats.cached -= k->size;
            free(k);
            k = next;
        }
        p->free_list[b] = NULL;
    }
    p->stats.reserved = p->stats.in_use + p->stats.cached;
}

void *aqa__cuda_alloc(aqa_device device, size_t nbytes) {
    aqa_cuda_dev *d = aqa__cuda_dev(device.index);
    if (!d) return NULL;
    size_t want = round_size(nbytes ? nbytes : 1);
    int b = bucket_of(want);
    dev_pool *p = &pools[device.index];
    pthread_mutex_lock(&pool_lock);
    /* best fit within the bucket, at most 1/8 larger than asked */
    block **best = NULL;
    for (block **k = &p->free_list[b]; *k; k = &(*k)->next)
        if ((*k)->size >= want && (*k)->size <= want + want / 8 && (!best || (*k)->size < (*best)->size))
            best = k;
    CUdeviceptr ptr = 0;
    size_t size = 0;
    if (best) {
        block *k = *best;
        *best = k->next;
        ptr = k->ptr;
        size = k->size;
        free(k);
        p->stats.cached -= size;
        p->stats.cache_hits++;
    } else {
        CUresult r = aqa__cu.MemAlloc(&ptr, want);
        if (r == CUDA_ERROR_OUT_OF_MEMORY) {
            size_t cached = p->stats.cached;
            aqa__cu.StreamSynchronize(d->stream);
            release_cached(device.index);
            r = aqa__cu.MemAlloc(&ptr, want);
            if (r == CUDA_ERROR_OUT_OF_MEMORY) {
                size_t fr = 0, tot = 0;
                aqa__cu.MemGetInfo(&fr, &tot);
                size_t in_use = p->stats.in_use;
                pthread_mutex_unlock(&pool_lock);
                aqa_fail(AQA_ENOMEM,
                         "CUDA out of memory on cuda:%d allocating %zu bytes (%.1f MiB): %.1f MiB in use by "
                         "tensors, %.1f MiB were cached (released and retried), driver reports %.1f MiB free "
                         "of %.1f MiB [%s]",
                         device.index, nbytes, nbytes / 1048576.0, in_use / 1048576.0, cached / 1048576.0,
                         fr / 1048576.0, tot / 1048576.0, aqa__cuda_versions());
                return NULL;
            }
        }
        if (r != CUDA_SUCCESS) {
            pthread_mutex_unlock(&pool_lock);
            aqa__cu_fail(r, "cuMemAlloc");
            return NULL;
        }
        size = want;
        p->stats.device_allocs++;
    }
    if (!live_put(p, ptr, size)) {
        aqa__cu.MemFree(ptr);
        pthread_mutex_unlock(&pool_lock);
        return aqa_fail_null("CUDA allocator: out of host memory for the block table");
    }
    p->stats.in_use += size;
    if (p->stats.in_use > p->stats.peak_in_use) p->stats.peak_in_use = p->stats.in_use;
    p->stats.reserved = p->stats.in_use + p->stats.cached;
    pthread_mutex_unlock(&pool_lock);
    return (void *)(uintptr_t)ptr;
}

void aqa__cuda_free(aqa_device device, void *ptr, size_t nbytes) {
    (void)nbytes;
    if (!ptr || device.index < 0 || device.index >= AQA_CUDA_MAX_DEVICES) return;
    dev_pool *p = &pools[device.index];
    CUdeviceptr dp = (CUdeviceptr)(uintptr_t)ptr;
    pthread_mutex_lock(&pool_lock);
    size_t size = live_take(p, dp);
    if (size == 0) { /* not ours: never happens with aqa's storages; leave it alone */
        pthread_mutex_unlock(&pool_lock);
        return;
    }
    block *k = malloc(sizeof *k);
    if (!k) { /* cannot cache it: give it back to the driver */
        aqa__cu.MemFree(dp);
        p->stats.in_use -= size;
    } else {
        int b = bucket_of(size);
        k->ptr = dp;
        k->size = size;
        k->next = p->free_list[b];
        p->free_list[b] = k;
        p->stats.in_use -= size;
        p->stats.cached += size;
    }
    p->stats.reserved = p->stats.in_use + p->stats.cached;
    pthread_mutex_unlock(&pool_lock);
}

aqa_status aqa_cuda_memory_stats(int device, aqa_cuda_mem_stats *out) {
    if (!out) return aqa_fail(AQA_EINVAL, "aqa_cuda_memory_stats: out is NULL");
    if (!aqa__cuda_dev(device)) return aqa_last_status();
    pthread_mutex_lock(&pool_lock);
    *out = pools[device].stats;
    pthread_mutex_unlock(&pool_lock);
    return AQA_OK;
}

aqa_status aqa_cuda_empty_cache(int device) {
    aqa_cuda_dev *d = aqa__cuda_dev(device);
    if (!d) return aqa_last_status();
    CU_CHECK(aqa__cu.StreamSynchronize(d->stream), "cuStreamSynchronize");
    pthread_mutex_lock(&pool_lock);
    release_cached(device);
    pthread_mutex_unlock(&pool_lock);
    return AQA_OK;
}
