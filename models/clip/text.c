/* text.c: CLIP's text encoder (OpenAI's CLIP.encode_text): token + positional embeddings, the
 * residual blocks with a causal mask, ln_final, the row at each text's EOT token (argmax of the
 * ids), text_projection.
 *
 * Two exact shortcuts: positions after the batch's last EOT are dropped before the transformer
 * when m->truncate_context (under the causal mask nothing at or before an EOT depends on them),
 * and ln_final is applied to the selected EOT rows only (LayerNorm works row by row). */
#include "autograd/autograd.h"
#include "models/clip/clip.h"
#include "ops/ops.h"

aqa_tensor *aqa_clip_encode_text(aqa_clip_model *m, aqa_tensor *ids, bool frozen) {
    if (!m) return aqa_fail_null("aqa_clip_encode_text: NULL model");
    if (!ids) return NULL;
    char buf[64];
    if (ids->dtype != AQA_I64 || ids->ndim != 2 || ids->shape[1] < 1 || ids->shape[1] > m->cfg.context_length)
        return aqa_fail_null("CLIP encode_text: ids %s %s, expected int64 [N, C] with 1 <= C <= %lld",
                             aqa_dtype_name(ids->dtype), aqa_shape_str(ids, buf, sizeof buf),
                             (long long)m->cfg.context_length);
    int64_t N = ids->shape[0], L = ids->shape[1], W = m->cfg.transformer_width;
    bool prev = aqa_set_grad_enabled(frozen ? false : aqa_is_grad_enabled());
    aqa_scope_begin();
    aqa_tensor *out = NULL;
    aqa_tensor *eot = aqa_argmax(ids, 1, false); /* [N]: EOT has the largest id */
    if (!eot) goto done;
    if (m->truncate_context && N > 0) {
        double last = aqa_item(aqa_max_all(eot));
        if (last + 1 < (double)L) L = (int64_t)last + 1;
        if (L < ids->shape[1]) ids = aqa_narrow(ids, 1, 0, L);
    }
    aqa_tensor *x = aqa_embedding(m->token_embedding->weight, ids); /* [N, L, W] */
    x = aqa_add(x, aqa_narrow(m->positional_embedding, 0, 0, L));
    x = aqa_clip_transformer_forward(m->transformer, x, true);
    if (!x) goto done;
    aqa_tensor *base = aqa_to_device(aqa_arange(0, (double)N, 1, AQA_I64), aqa_tensor_device(ids));
    aqa_tensor *rows = aqa_add(eot, aqa_mul_scalar(base, (double)L)); /* flat row of each EOT */
    x = aqa_index_select(aqa_reshape(x, 2, (const int64_t[]){N * L, W}), 0, rows); /* [N, W] */
    x = aqa_layer_norm_layer_forward(m->ln_final, x);
    out = aqa_matmul(x, m->text_projection); /* [N, D] */
done:
    aqa_keep(out);
    aqa_scope_end();
    aqa_set_grad_enabled(prev);
    return out;
}
