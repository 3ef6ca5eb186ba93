/* vision.c: CLIP's image encoder (OpenAI's VisionTransformer.forward): patch embedding, class
 * token, positional embedding, ln_pre, the residual blocks, ln_post on the class token, proj.
 *
 * The patch embedding is conv1 (kernel = stride = patch, no bias); since the patches do not
 * overlap it is computed as one GEMM over the image cut into patches (a reshape/permute copy of
 * the input, then [N * P, 3 p p] @ conv1.weight viewed as [W, 3 p p]^T), which gives conv1's
 * result without a convolution's column buffer. */
#include "autograd/autograd.h"
#include "models/clip/clip.h"
#include "ops/ops.h"

aqa_tensor *aqa_clip_encode_image(aqa_clip_model *m, aqa_tensor *images, bool frozen) {
    if (!m) return aqa_fail_null("aqa_clip_encode_image: NULL model");
    if (!images) return NULL;
    aqa_clip_vision *v = m->visual;
    int64_t R = v->input_resolution, p = v->patch_size, g = v->grid, W = v->width;
    char buf[64];
    if (images->ndim != 4 || images->shape[1] != 3 || images->shape[2] != R || images->shape[3] != R ||
        !aqa_dtype_is_float(images->dtype))
        return aqa_fail_null("CLIP encode_image: images %s %s, expected float [N, 3, %lld, %lld]",
                             aqa_dtype_name(images->dtype), aqa_shape_str(images, buf, sizeof buf), (long long)R,
                             (long long)R);
    int64_t N = images->shape[0];
    bool prev = aqa_set_grad_enabled(frozen ? false : aqa_is_grad_enabled());
    aqa_scope_begin();
    aqa_tensor *x = images->dtype == v->proj->dtype ? images : aqa_to_dtype(images, v->proj->dtype);
    /* [N, 3, g, p, g, p] -> [N, g, g, 3, p, p] -> [N, g*g, 3*p*p]: row (i, j) is patch (i, j) in
     * conv1's (c, ky, kx) order */
    x = aqa_reshape(x, 6, (const int64_t[]){N, 3, g, p, g, p});
    x = aqa_reshape(aqa_permute(x, (const int[]){0, 2, 4, 1, 3, 5}), 3, (const int64_t[]){N, g * g, 3 * p * p});
    aqa_tensor *w = aqa_reshape(v->conv1->weight, 2, (const int64_t[]){W, 3 * p * p});
    x = aqa_linear(x, w, NULL); /* [N, g*g, W] */
    aqa_tensor *cls = aqa_expand(aqa_view(v->class_embedding, 3, (const int64_t[]){1, 1, W}), 3,
                                 (const int64_t[]){N, 1, W});
    x = aqa_cat((aqa_tensor *[]){cls, x}, 2, 1); /* [N, 1 + g*g, W] */
    x = aqa_add(x, v->positional_embedding);
    x = aqa_layer_norm_layer_forward(v->ln_pre, x);
    x = aqa_clip_transformer_forward(v->transformer, x, false);
    x = aqa_layer_norm_layer_forward(v->ln_post, x ? aqa_select(x, 1, 0) : NULL);
    aqa_tensor *out = aqa_matmul(x, v->proj); /* [N, D] */
    aqa_keep(out);
    aqa_scope_end();
    aqa_set_grad_enabled(prev);
    return out;
}
