/* stages.h: splitting frame (or clip) sequences into stages by boundaries, as matrices.
 *
 * A split of T steps into S = L + 1 stages is given by L boundaries per sample (I64 [B, L]):
 * boundary l is the first step of stage l + 1, so stage s covers [b_{s-1}, b_s) with b_{-1} = 0 and
 * b_L = T (TSA's convention: the boundary frame opens the next stage).  Pooling and TSA's linear
 * interpolation of each stage to K tokens are linear maps of the sequence, so they are built here
 * as constant matrices M [B, rows, T] and applied with one batched matmul (M @ x): differentiable
 * in x, cheap, and identical on every device. */
#ifndef AQA_MVLA_STAGES_H
#define AQA_MVLA_STAGES_H

#include <stdint.h>

#include "tensor/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Checks that every row of `boundaries` (I64 [B, L]) is strictly increasing inside [1, T - 1]
 * (every stage non-empty).  AQA_EINVAL naming `what` otherwise. */
aqa_status aqa_stage_check_boundaries(const aqa_tensor *boundaries, int64_t T, const char *what);

/* Mean pooling: [B, L + 1, T] with 1 / len(stage) on each stage's steps (dtype float). */
aqa_tensor *aqa_stage_pool_matrix(const aqa_tensor *boundaries, int64_t T, aqa_dtype dtype);

/* TSA's per-stage resampling (F.interpolate(mode='linear', align_corners=True) of each stage
 * to K tokens): [B, (L + 1) * K, T]. */
aqa_tensor *aqa_stage_interp_matrix(const aqa_tensor *boundaries, int64_t T, int64_t K, aqa_dtype dtype);

/* Stage index of every step: I64 [B, T]. */
aqa_tensor *aqa_stage_of_steps(const aqa_tensor *boundaries, int64_t T);

/* x [B, T, C] -> [B, L + 1, C], the mean of each stage. */
aqa_tensor *aqa_stage_mean(aqa_tensor *x, const aqa_tensor *boundaries);

/* t on like's device: t itself when it is already there, else a copy (owned as op results are).
 * The matrices and index tensors built here and in the heads come from host memory (on the
 * default device); this puts them beside the features, which may live on CUDA. */
aqa_tensor *aqa_stage_on_device(aqa_tensor *t, const aqa_tensor *like);

/* Boundaries spread evenly: boundary l = round((l + 1) T / (L + 1)) for every sample (I64 [B, L]);
 * used for fixed (FUM) splits when none is given. */
aqa_tensor *aqa_stage_even_boundaries(int64_t B, int64_t L, int64_t T);

#ifdef __cplusplus
}
#endif

#endif /* AQA_MVLA_STAGES_H */
