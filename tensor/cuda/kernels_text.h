/* kernels_text.h: the CUDA C program texts embedded from the .cu files in tensor/cuda/kernels (the generated
 * kernels_text.c); kernels_src.c assembles them into compilable programs. */
#ifndef AQA_CUDA_KERNELS_TEXT_H
#define AQA_CUDA_KERNELS_TEXT_H
extern const char aqa__cuda_text_prelude[];
extern const char aqa__cuda_text_unary[];
extern const char aqa__cuda_text_binary[];
extern const char aqa__cuda_text_where[];
extern const char aqa__cuda_text_axpy[];
extern const char aqa__cuda_text_copy[];
extern const char aqa__cuda_text_fill[];
extern const char aqa__cuda_text_random[];
extern const char aqa__cuda_text_reduce[];
extern const char aqa__cuda_text_softmax[];
extern const char aqa__cuda_text_norm[];
extern const char aqa__cuda_text_pool[];
extern const char aqa__cuda_text_adamw[];
extern const char aqa__cuda_text_attention[];
extern const char aqa__cuda_text_index[];
extern const char aqa__cuda_text_index_check[];
extern const char aqa__cuda_text_matmul_i64[];
extern const char aqa__cuda_text_conv[];
#endif
