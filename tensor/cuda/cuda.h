/* cuda.h: aqa's CUDA backend, the public part: availability, versions, memory, TF32.
 *
 * Tensors go to the GPU with aqa_to_device(t, aqa_cuda_device(0)) (or aqa_set_default_device);
 * every op then runs there.  The CUDA driver, NVRTC and cuBLAS are loaded at run time, so these
 * functions exist in every build configured with the toolkit and answer "not available" (with
 * the reason in aqa_last_error()) on a machine without a GPU or driver. */
#ifndef AQA_CUDA_H
#define AQA_CUDA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* True when the driver loads and at least one GPU is present (else the reason is recorded). */
bool aqa_cuda_is_available(void);
/* Number of GPUs (0 when unavailable). */
int aqa_cuda_device_count(void);
/* "CUDA driver 13.0, NVRTC 13.0, cuBLAS 130001; cuda:0 NVIDIA H100 80GB HBM3 (sm_90, 132 SMs)",
 * listing what could be loaded; always returns buf. */
const char *aqa_cuda_version_string(char *buf, size_t n);

/* The caching allocator's state on one device. */
typedef struct aqa_cuda_memory_stats {
    size_t in_use;         /* bytes held by live tensors (rounded block sizes) */
    size_t cached;         /* bytes in free lists, ready for reuse */
    size_t peak_in_use;    /* largest in_use seen */
    size_t reserved;       /* in_use + cached: what aqa holds from the driver */
    uint64_t device_allocs;/* calls to cuMemAlloc */
    uint64_t cache_hits;   /* allocations served from the free lists */
} aqa_cuda_mem_stats;
aqa_status aqa_cuda_memory_stats(int device, aqa_cuda_mem_stats *out);
/* Returns every cached (free) block of the device to the driver, after synchronising. */
aqa_status aqa_cuda_empty_cache(int device);
/* Waits for all work queued on the device. */
aqa_status aqa_cuda_synchronize(int device);
/* Allows TF32 tensor-core math in float32 matrix products (off by default, as torch). */
void aqa_cuda_set_tf32(bool allow);
bool aqa_cuda_tf32_allowed(void);

#ifdef __cplusplus
}
#endif

#endif /* AQA_CUDA_H */
