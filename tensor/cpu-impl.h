/* cpu-impl.h: the CPU kernels (one file per family), assembled into aqa_cpu_backend by
 * tensor/cpu_backend.c.  Signatures follow the slots of aqa_backend (backend.h). */
#ifndef AQA_CPU_IMPL_H
#define AQA_CPU_IMPL_H

#include "tensor/backend.h"

/* tensor/cpu_isa.c: the vector extensions the kernels may use (AVX2 implies FMA; AVX512 means
 * F, DQ, BW and VL), at most what AQA_CPU_ISA=baseline|avx2 allows. */
typedef enum { AQA_ISA_BASELINE, AQA_ISA_AVX2, AQA_ISA_AVX512 } aqa_cpu_isa;
aqa_cpu_isa aqa__cpu_isa(void);
const char *aqa__cpu_isa_name(aqa_cpu_isa isa);
/* tensor/cpu_copy.c */
aqa_status aqa__cpu_copy(aqa_tensor *dst, const aqa_tensor *src);
aqa_status aqa__cpu_fill(aqa_tensor *dst, double value);
aqa_status aqa__cpu_random(aqa_tensor *t, int kind, double a, double b, uint64_t seed, uint64_t offset);
/* tensor/cpu_elementwise.c */
aqa_status aqa__cpu_unary(aqa_unary_op op, aqa_tensor *out, const aqa_tensor *x, double p0, double p1);
aqa_status aqa__cpu_binary(aqa_binary_op op, aqa_tensor *out, const aqa_tensor *a, const aqa_tensor *b);
aqa_status aqa__cpu_where(aqa_tensor *out, const aqa_tensor *cond, const aqa_tensor *a, const aqa_tensor *b);
aqa_status aqa__cpu_axpy(aqa_tensor *dst, const aqa_tensor *src, double alpha);
/* tensor/cpu_reduce.c */
aqa_status aqa__cpu_reduce(aqa_reduce_op op, aqa_tensor *out, aqa_tensor *idx, const aqa_tensor *x,
                           uint32_t dim_mask);
aqa_status aqa__cpu_softmax(aqa_tensor *out, const aqa_tensor *x, int dim, bool log);
aqa_status aqa__cpu_softmax_backward(aqa_tensor *grad_x, const aqa_tensor *grad_y, const aqa_tensor *y,
                                     int dim, bool log);
/* tensor/cpu_matmul.c */
/* c = alpha * op(a) @ op(b) + beta * c (row-major float32 or float64 through BLAS, op = transpose
 * when ta / tb), split over the OpenMP team when large; BLAS's own threads are not used. */
void aqa__cpu_gemm(aqa_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const void *a,
                   int64_t lda, const void *b, int64_t ldb, double beta, void *c, int64_t ldc);
aqa_status aqa__cpu_matmul(aqa_tensor *c, const aqa_tensor *a, const aqa_tensor *b, double alpha, double beta);
/* tensor/cpu_index.c */
aqa_status aqa__cpu_index_select(aqa_tensor *out, const aqa_tensor *x, int dim, const aqa_tensor *index);
aqa_status aqa__cpu_index_add(aqa_tensor *out, int dim, const aqa_tensor *index, const aqa_tensor *src);
aqa_status aqa__cpu_gather(aqa_tensor *out, const aqa_tensor *x, int dim, const aqa_tensor *index);
aqa_status aqa__cpu_scatter_add(aqa_tensor *out, int dim, const aqa_tensor *index, const aqa_tensor *src);

#endif /* AQA_CPU_IMPL_H */
