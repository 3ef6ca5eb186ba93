/* test_clip.c: CLIP's encoders (models/clip/clip.h): configuration inference from shapes
 * (ViT-B/16, ViT-L/14, Hugging Face names, errors), state_dict names, embeddings and gradients
 * against our PyTorch implementation (tests/data/clip/, scripts/gen_golden_clip.py) loaded from
 * OpenAI-named and Hugging Face-named files, context truncation, frozen (no-grad) use, f64
 * gradchecks of tiny encoders, save/load round trip and bad files. */
#include "tests/testlib.h"

#include "config.h"

#include <unistd.h>

#include "autograd/autograd.h"
#include "image/image.h"
#include "image/resize.h"
#include "models/clip/clip.h"
#include "models/clip/tokenizer.h"
#include "nn/loss.h"
#include "nn/optim.h"
#include "tensor/tensor_file.h"
#include "ops/ops.h"
#ifdef AQA_HAVE_CUDA
#include "tensor/cuda/cuda.h"
#endif

#define GOLDEN "clip/golden.safetensors"
#define TINY_OA "clip/tiny_openai.safetensors"
#define TINY_HF "clip/tiny_hf.safetensors"

static bool have(const char *name) { return access(test_data_path(name), R_OK) == 0; }

static aqa_tensor *golden(const char *name, aqa_dtype dt) { return aqa_load_tensor(test_data_path(GOLDEN), name, dt); }

/* max |got - want| / max(|want|, 1e-6), over all elements; +inf on a shape mismatch or NULL. */
static double rel_err(aqa_tensor *got, aqa_tensor *want) {
    if (!got || !want || !aqa_same_shape(got, want)) return INFINITY;
    aqa_scope_begin();
    double e = aqa_item(aqa_max_all(aqa_abs(aqa_sub(aqa_to_dtype(got, AQA_F64), aqa_to_dtype(want, AQA_F64)))));
    double s = aqa_item(aqa_max_all(aqa_abs(aqa_to_dtype(want, AQA_F64))));
    aqa_scope_end();
    return e / (s > 1e-6 ? s : 1e-6);
}

#define CHECK_REL(got, want, tol)                                                        \
    do {                                                                                 \
        double e_ = rel_err((got), (want));                                              \
        CHECK_MSG(e_ <= (tol), "%s vs %s: relative error %.3g > %.3g", #got, #want, e_, (double)(tol)); \
    } while (0)

/* ---- configuration inference from (name, shape) lists --------------------------------------- */

typedef struct shape_builder {
    aqa_clip_named_shape e[1024];
    char names[1024][128];
    int n;
} shape_builder;

static void add(shape_builder *b, const char *name, int nd, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    if (b->n >= 1024) return;
    aqa_clip_named_shape *s = &b->e[b->n];
    snprintf(b->names[b->n], sizeof b->names[b->n], "%s", name);
    s->name = b->names[b->n];
    s->ndim = nd;
    int64_t d[4] = {d0, d1, d2, d3};
    for (int i = 0; i < nd; i++) s->shape[i] = d[i];
    b->n++;
}

/* The shapes of an OpenAI ViT state dict (as in the released .pt files, scalars included). */
static void openai_shapes(shape_builder *b, const aqa_clip_config *c) {
    b->n = 0;
    add(b, "positional_embedding", 2, c->context_length, c->transformer_width, 0, 0);
    add(b, "text_projection", 2, c->transformer_width, c->embed_dim, 0, 0);
    add(b, "logit_scale", 0, 0, 0, 0, 0);
    add(b, "input_resolution", 0, 0, 0, 0, 0);
    add(b, "context_length", 0, 0, 0, 0, 0);
    add(b, "vocab_size", 0, 0, 0, 0, 0);
    int64_t g = c->image_resolution / c->vision_patch_size, W = c->vision_width;
    add(b, "visual.class_embedding", 1, W, 0, 0, 0);
    add(b, "visual.positional_embedding", 2, g * g + 1, W, 0, 0);
    add(b, "visual.proj", 2, W, c->embed_dim, 0, 0);
    add(b, "visual.conv1.weight", 4, W, 3, c->vision_patch_size, c->vision_patch_size);
    for (int tower = 0; tower < 2; tower++) {
        int64_t w = tower ? c->transformer_width : W, L = tower ? c->transformer_layers : c->vision_layers;
        const char *pre = tower ? "transformer.resblocks." : "visual.transformer.resblocks.";
        for (int64_t i = 0; i < L; i++) {
            char nm[128];
#define ADD(suffix, nd, a, bb) (snprintf(nm, sizeof nm, "%s%lld.%s", pre, (long long)i, suffix), add(b, nm, nd, a, bb, 0, 0))
            ADD("attn.in_proj_weight", 2, 3 * w, w);
            ADD("attn.in_proj_bias", 1, 3 * w, 0);
            ADD("attn.out_proj.weight", 2, w, w);
            ADD("attn.out_proj.bias", 1, w, 0);
            ADD("ln_1.weight", 1, w, 0);
            ADD("ln_1.bias", 1, w, 0);
            ADD("mlp.c_fc.weight", 2, 4 * w, w);
            ADD("mlp.c_fc.bias", 1, 4 * w, 0);
            ADD("mlp.c_proj.weight", 2, w, 4 * w);
            ADD("mlp.c_proj.bias", 1, w, 0);
            ADD("ln_2.weight", 1, w, 0);
            ADD("ln_2.bias", 1, w, 0);
#undef ADD
        }
    }
    add(b, "token_embedding.weight", 2, c->vocab_size, c->transformer_width, 0, 0);
    add(b, "ln_final.weight", 1, c->transformer_width, 0, 0, 0);
    add(b, "ln_final.bias", 1, c->transformer_width, 0, 0, 0);
    add(b, "visual.ln_pre.weight", 1, W, 0, 0, 0);
    add(b, "visual.ln_post.weight", 1, W, 0, 0, 0);
}

/* The same model's shapes with Hugging Face CLIPModel names. */
static void hf_shapes(shape_builder *b, const aqa_clip_config *c) {
    b->n = 0;
    int64_t g = c->image_resolution / c->vision_patch_size, W = c->vision_width, T = c->transformer_width;
    add(b, "logit_scale", 0, 0, 0, 0, 0);
    add(b, "text_model.embeddings.token_embedding.weight", 2, c->vocab_size, T, 0, 0);
    add(b, "text_model.embeddings.position_embedding.weight", 2, c->context_length, T, 0, 0);
    add(b, "text_model.embeddings.position_ids", 2, 1, c->context_length, 0, 0);
    add(b, "text_model.final_layer_norm.weight", 1, T, 0, 0, 0);
    add(b, "vision_model.embeddings.class_embedding", 1, W, 0, 0, 0);
    add(b, "vision_model.embeddings.patch_embedding.weight", 4, W, 3, c->vision_patch_size, c->vision_patch_size);
    add(b, "vision_model.embeddings.position_embedding.weight", 2, g * g + 1, W, 0, 0);
    add(b, "vision_model.pre_layrnorm.weight", 1, W, 0, 0, 0);
    add(b, "visual_projection.weight", 2, c->embed_dim, W, 0, 0);
    add(b, "text_projection.weight", 2, c->embed_dim, T, 0, 0);
    for (int tower = 0; tower < 2; tower++) {
        int64_t w = tower ? T : W, L = tower ? c->transformer_layers : c->vision_layers;
        const char *pre = tower ? "text_model.encoder.layers." : "vision_model.encoder.layers.";
        for (int64_t i = 0; i < L; i++) {
            char nm[128];
            const char *qkv[] = {"q", "k", "v", "out"};
            for (int j = 0; j < 4; j++) {
                snprintf(nm, sizeof nm, "%s%lld.self_attn.%s_proj.weight", pre, (long long)i, qkv[j]);
                add(b, nm, 2, w, w, 0, 0);
            }
            snprintf(nm, sizeof nm, "%s%lld.mlp.fc1.weight", pre, (long long)i);
            add(b, nm, 2, 4 * w, w, 0, 0);
        }
    }
}

static aqa_clip_config vit_l14(void) {
    return (aqa_clip_config){.embed_dim = 768, .image_resolution = 224, .vision_layers = 24, .vision_width = 1024,
                             .vision_patch_size = 14, .vision_heads = 16, .context_length = 77, .vocab_size = 49408,
                             .transformer_width = 768, .transformer_heads = 12, .transformer_layers = 12};
}

static void check_cfg_eq(const aqa_clip_config *a, const aqa_clip_config *b) {
    CHECK_EQ_INT(a->embed_dim, b->embed_dim);
    CHECK_EQ_INT(a->image_resolution, b->image_resolution);
    CHECK_EQ_INT(a->vision_layers, b->vision_layers);
    CHECK_EQ_INT(a->vision_width, b->vision_width);
    CHECK_EQ_INT(a->vision_patch_size, b->vision_patch_size);
    CHECK_EQ_INT(a->vision_heads, b->vision_heads);
    CHECK_EQ_INT(a->context_length, b->context_length);
    CHECK_EQ_INT(a->vocab_size, b->vocab_size);
    CHECK_EQ_INT(a->transformer_width, b->transformer_width);
    CHECK_EQ_INT(a->transformer_heads, b->transformer_heads);
    CHECK_EQ_INT(a->transformer_layers, b->transformer_layers);
}

static void test_config_infer(void) {
    static shape_builder b;
    const aqa_clip_config want[3] = {aqa_clip_config_vit_b16(), vit_l14(),
                                     {.embed_dim = 512, .image_resolution = 224, .vision_layers = 12,
                                      .vision_width = 768, .vision_patch_size = 32, .vision_heads = 12,
                                      .context_length = 77, .vocab_size = 49408, .transformer_width = 512,
                                      .transformer_heads = 8, .transformer_layers = 12}}; /* ViT-B/32 */
    for (int k = 0; k < 3; k++) {
        aqa_clip_config got;
        openai_shapes(&b, &want[k]);
        CHECK(aqa_clip_config_infer(b.e, b.n, 0, 0, &got) == AQA_OK);
        check_cfg_eq(&got, &want[k]);
        hf_shapes(&b, &want[k]);
        memset(&got, 0, sizeof got);
        CHECK_MSG(aqa_clip_config_infer(b.e, b.n, 0, 0, &got) == AQA_OK, "hf: %s", aqa_last_error());
        check_cfg_eq(&got, &want[k]);
    }
}

static void test_config_infer_errors(void) {
    static shape_builder b;
    aqa_clip_config c = aqa_clip_config_vit_b16(), got;
    openai_shapes(&b, &c);
    /* a block in the middle missing */
    for (int i = 0; i < b.n; i++)
        if (strcmp(b.e[i].name, "transformer.resblocks.5.attn.in_proj_weight") == 0) b.e[i].name = "unrelated";
    CHECK(aqa_clip_config_infer(b.e, b.n, 0, 0, &got) == AQA_EFORMAT);
    CHECK(strstr(aqa_last_error(), "transformer.resblocks.5") != NULL);
    /* a positional embedding that is not grid^2 + 1 long */
    openai_shapes(&b, &c);
    for (int i = 0; i < b.n; i++)
        if (strcmp(b.e[i].name, "visual.positional_embedding") == 0) b.e[i].shape[0] = 190;
    CHECK(aqa_clip_config_infer(b.e, b.n, 0, 0, &got) == AQA_EFORMAT);
    /* a ResNet tower */
    shape_builder *r = &b;
    r->n = 0;
    add(r, "visual.layer1.0.conv1.weight", 4, 64, 64, 1, 1);
    add(r, "text_projection", 2, 512, 1024, 0, 0);
    CHECK(aqa_clip_config_infer(r->e, r->n, 0, 0, &got) == AQA_EUNSUPPORTED);
    /* width 24 has no width / 64 heads unless given */
    aqa_clip_config t = c;
    t.vision_width = 24;
    openai_shapes(&b, &t);
    CHECK(aqa_clip_config_infer(b.e, b.n, 0, 0, &got) == AQA_EFORMAT);
    CHECK(aqa_clip_config_infer(b.e, b.n, 3, 0, &got) == AQA_OK && got.vision_heads == 3);
}

static void test_hf_names(void) {
    int part;
    bool tr, ig;
    char *s = aqa_clip_hf_to_openai("vision_model.encoder.layers.11.self_attn.v_proj.bias", &part, &tr, &ig);
    CHECK_STR(s, "visual.transformer.resblocks.11.attn.in_proj_bias");
    CHECK(part == 2 && !tr && !ig);
    free(s);
    s = aqa_clip_hf_to_openai("text_model.encoder.layers.3.mlp.fc2.weight", &part, &tr, &ig);
    CHECK_STR(s, "transformer.resblocks.3.mlp.c_proj.weight");
    free(s);
    s = aqa_clip_hf_to_openai("visual_projection.weight", &part, &tr, &ig);
    CHECK_STR(s, "visual.proj");
    CHECK(tr && part == -1);
    free(s);
    s = aqa_clip_hf_to_openai("vision_model.pre_layrnorm.bias", &part, &tr, &ig);
    CHECK_STR(s, "visual.ln_pre.bias");
    free(s);
    s = aqa_clip_hf_to_openai("text_model.embeddings.position_ids", &part, &tr, &ig);
    CHECK(s == NULL && ig);
    s = aqa_clip_hf_to_openai("text_model.encoder.layers.x.mlp.fc1.weight", &part, &tr, &ig);
    CHECK(s == NULL && !ig);
}

/* ---- the module tree --------------------------------------------------------------------------- */

static aqa_clip_config tiny_config(void) { /* the golden model's configuration */
    return (aqa_clip_config){.embed_dim = 16, .image_resolution = 16, .vision_layers = 2, .vision_width = 24,
                             .vision_patch_size = 4, .vision_heads = 3, .context_length = 16, .vocab_size = 128,
                             .transformer_width = 24, .transformer_heads = 2, .transformer_layers = 2};
}

static void test_state_dict_names(void) {
    int64_t live = aqa_live_tensors();
    aqa_clip_config c = tiny_config();
    aqa_clip_model *m = aqa_clip_model_new(&c);
    CHECK(m != NULL);
    if (!m) return;
    aqa_named_tensor *list;
    int n = aqa_module_named_tensors(&m->base, true, &list);
    /* PyTorch's state_dict order of OpenAI's CLIP */
    CHECK_EQ_INT(n, 3 + (3 + 1 + 2 + 2 * 12 + 2) + 2 * 12 + 1 + 2);
    if (n > 10) {
        CHECK_STR(list[0].name, "positional_embedding");
        CHECK_STR(list[1].name, "text_projection");
        CHECK_STR(list[2].name, "logit_scale");
        CHECK_STR(list[3].name, "visual.class_embedding");
        CHECK_STR(list[4].name, "visual.positional_embedding");
        CHECK_STR(list[5].name, "visual.proj");
        CHECK_STR(list[6].name, "visual.conv1.weight");
        CHECK_STR(list[7].name, "visual.ln_pre.weight");
        CHECK_STR(list[9].name, "visual.transformer.resblocks.0.attn.in_proj_weight");
        CHECK_STR(list[10].name, "visual.transformer.resblocks.0.attn.in_proj_bias");
        CHECK_STR(list[11].name, "visual.transformer.resblocks.0.attn.out_proj.weight");
        CHECK_STR(list[15].name, "visual.transformer.resblocks.0.mlp.c_fc.weight");
        CHECK_STR(list[n - 3].name, "token_embedding.weight");
        CHECK_STR(list[n - 1].name, "ln_final.bias");
    }
    /* every name and shape of the golden OpenAI file exists in the model */
    if (have(TINY_OA)) {
        aqa_st_file *f;
        CHECK(aqa_st_open(test_data_path(TINY_OA), &f) == AQA_OK);
        if (f) {
            CHECK_EQ_INT(aqa_st_count(f), n);
            for (int i = 0; i < n; i++) {
                int k = aqa_st_find(f, list[i].name);
                CHECK_MSG(k >= 0, "%s not in the PyTorch state dict", list[i].name);
                if (k < 0) continue;
                const aqa_st_tensor *t = aqa_st_get(f, k);
                bool same = t->ndim == list[i].tensor->ndim;
                for (int d = 0; same && d < t->ndim; d++) same = t->shape[d] == list[i].tensor->shape[d];
                CHECK_MSG(same, "%s: shape differs from PyTorch's", list[i].name);
            }
            aqa_st_close(f);
        }
    }
    CHECK_NEAR(aqa_item(m->logit_scale), log(1 / 0.07), 1e-6);
    aqa_named_tensors_free(list, n);
    aqa_clip_model_free(m);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

/* ---- golden parity ------------------------------------------------------------------------------ */

/* The model saved in tests/data/<weights>, loaded; NULL after a failed check, or with the test
 * marked skipped when it or the golden file is absent. */
static aqa_clip_model *load_golden_model(const char *weights) {
    if (!have(GOLDEN) || !have(weights)) {
        SKIP("%s or %s absent (scripts/gen_golden_clip.py)", GOLDEN, weights);
        return NULL;
    }
    aqa_clip_model *m = NULL;
    CHECK_MSG(aqa_clip_load(test_data_path(weights), &m) == AQA_OK, "%s", aqa_last_error());
    return m;
}

static void check_golden_embeddings(const char *weights) {
    int64_t live = aqa_live_tensors();
    aqa_clip_model *m = load_golden_model(weights);
    if (!m) return;
    aqa_clip_config tiny = tiny_config();
    check_cfg_eq(&m->cfg, &tiny);
    aqa_scope_begin();
    aqa_tensor *img = aqa_clip_encode_image(m, golden("images", AQA_F32), true);
    aqa_tensor *txt = aqa_clip_encode_text(m, golden("token_ids", AQA_I64), true);
    CHECK_REL(img, golden("image_embeds", AQA_F32), 1e-4);
    CHECK_REL(txt, golden("text_embeds", AQA_F32), 1e-4);
    CHECK_REL(aqa_clip_logits(m, img, txt), golden("logits_per_image", AQA_F32), 1e-4);
    CHECK(img && !img->requires_grad && !img->grad_fn && txt && !txt->requires_grad);
    m->truncate_context = false; /* the plain path gives the same */
    CHECK_REL(aqa_clip_encode_text(m, golden("token_ids", AQA_I64), true), golden("text_embeds", AQA_F32), 1e-4);
    aqa_scope_end();
    aqa_clip_model_free(m);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

static void test_golden_openai(void) { check_golden_embeddings(TINY_OA); }
static void test_golden_hf(void) { check_golden_embeddings(TINY_HF); }

static void test_truncation(void) {
    aqa_clip_model *m = load_golden_model(TINY_OA);
    if (!m) return;
    aqa_scope_begin();
    /* rows 0, 2, 3 end by position 7: the batch is cut to 8 positions */
    aqa_tensor *pick = aqa_from_data((const int64_t[]){0, 2, 3}, AQA_SHAPE(3), AQA_I64);
    aqa_tensor *ids = aqa_index_select(golden("token_ids", AQA_I64), 0, pick);
    aqa_tensor *want = aqa_index_select(golden("text_embeds", AQA_F32), 0, pick);
    CHECK_REL(aqa_clip_encode_text(m, ids, true), want, 1e-4);
    /* a shorter context than the model's (positions 0..7 only) */
    CHECK_REL(aqa_clip_encode_text(m, aqa_contiguous(aqa_narrow(ids, 1, 0, 8)), true), want, 1e-4);
    /* bad inputs */
    CHECK(aqa_clip_encode_text(m, aqa_to_dtype(ids, AQA_F32), true) == NULL);
    CHECK(aqa_clip_encode_text(m, aqa_zeros(AQA_SHAPE(2, 17), AQA_I64), true) == NULL);
    CHECK(aqa_clip_encode_image(m, aqa_zeros(AQA_SHAPE(1, 3, 15, 16), AQA_F32), true) == NULL);
    aqa_scope_end();
    aqa_clip_model_free(m);
}

static void test_golden_gradients(void) {
    int64_t live = aqa_live_tensors();
    aqa_clip_model *m = load_golden_model(TINY_OA);
    if (!m) return;
    aqa_scope_begin();
    aqa_tensor *images = aqa_requires_grad(golden("images", AQA_F32), true);
    aqa_tensor *img = aqa_clip_encode_image(m, images, false);
    aqa_tensor *txt = aqa_clip_encode_text(m, golden("token_ids", AQA_I64), false);
    CHECK(img && img->requires_grad && txt && txt->requires_grad);
    aqa_tensor *loss = aqa_add(aqa_sum_all(aqa_mul(txt, golden("text_R", AQA_F32))),
                               aqa_sum_all(aqa_mul(img, golden("image_R", AQA_F32))));
    CHECK(aqa_backward(loss, NULL, false) == AQA_OK);
    static const char *const names[] = {
        "positional_embedding", "text_projection", "token_embedding.weight", "ln_final.bias",
        "transformer.resblocks.0.attn.in_proj_weight", "transformer.resblocks.0.attn.in_proj_bias",
        "transformer.resblocks.0.ln_1.weight", "transformer.resblocks.1.mlp.c_fc.weight",
        "transformer.resblocks.1.attn.out_proj.weight", "visual.conv1.weight", "visual.class_embedding",
        "visual.proj", "visual.transformer.resblocks.1.attn.in_proj_bias", "visual.ln_pre.weight"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        aqa_tensor *p = aqa_module_get(&m->base, names[i]);
        char key[160];
        snprintf(key, sizeof key, "grad.%s", names[i]);
        double e = rel_err(p ? p->grad : NULL, golden(key, AQA_F32));
        CHECK_MSG(e <= 1e-4, "gradient of %s: relative error %.3g", names[i], e);
    }
    CHECK_REL(images->grad, golden("grad.images", AQA_F32), 1e-4);
    aqa_scope_end();
    aqa_module_zero_grad(&m->base);
    aqa_clip_model_free(m);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

/* ---- gradchecks in f64 -------------------------------------------------------------------------- */

typedef struct gc_ctx {
    aqa_clip_model *m;
    aqa_tensor *input; /* ids or images */
    bool text;
} gc_ctx;

static aqa_tensor *encode_fn(aqa_tensor *const *in, int n, void *user) {
    (void)in;
    (void)n;
    gc_ctx *c = user;
    return c->text ? aqa_clip_encode_text(c->m, c->input, false) : aqa_clip_encode_image(c->m, c->input, false);
}

static aqa_clip_model *gradcheck_model(void) {
    aqa_clip_config c = {.embed_dim = 4, .image_resolution = 4, .vision_layers = 1, .vision_width = 8,
                         .vision_patch_size = 2, .vision_heads = 2, .context_length = 6, .vocab_size = 12,
                         .transformer_width = 8, .transformer_heads = 2, .transformer_layers = 2};
    aqa_manual_seed(test_seed("clip gradcheck"));
    aqa_clip_model *m = aqa_clip_model_new(&c);
    if (!m) return NULL;
    /* larger weights than CLIP's init so that every path carries a visible gradient */
    aqa_named_tensor *list;
    int n = aqa_module_named_tensors(&m->base, true, &list);
    for (int i = 0; i < n; i++)
        if (list[i].tensor->ndim > 0) aqa_normal_(list[i].tensor, 0.0, 0.5, NULL);
    aqa_named_tensors_free(list, n);
    if (aqa_clip_to_dtype(m, AQA_F64) != AQA_OK) {
        aqa_clip_model_free(m);
        return NULL;
    }
    return m;
}

static void run_gradcheck(aqa_clip_model *m, gc_ctx *ctx, const char *const *names, int k) {
    aqa_tensor *ps[16];
    for (int i = 0; i < k; i++) {
        ps[i] = aqa_module_get(&m->base, names[i]);
        CHECK_MSG(ps[i] && ps[i]->dtype == AQA_F64, "%s", names[i]);
        if (!ps[i]) return;
    }
    aqa_gradcheck_result r = aqa_gradcheck(encode_fn, ps, k, ctx, 1e-6, 1e-7, 1e-5);
    CHECK_MSG(r.ok, "%s (input %s)", r.message, r.input >= 0 ? names[r.input] : "?");
}

static void test_gradcheck_text(void) {
    int64_t live = aqa_live_tensors();
    aqa_clip_model *m = gradcheck_model();
    CHECK(m != NULL);
    if (!m) return;
    aqa_scope_begin();
    /* SOT 10, EOT 11 (the largest id), padding 0; EOT positions 3 and 5 */
    aqa_tensor *ids = aqa_from_data((const int64_t[]){10, 4, 7, 11, 0, 0, 10, 1, 2, 3, 9, 11}, AQA_SHAPE(2, 6), AQA_I64);
    gc_ctx ctx = {m, ids, true};
    static const char *const names[] = {
        "token_embedding.weight", "positional_embedding", "transformer.resblocks.0.attn.in_proj_weight",
        "transformer.resblocks.0.attn.in_proj_bias", "transformer.resblocks.1.attn.out_proj.weight",
        "transformer.resblocks.0.ln_1.weight", "transformer.resblocks.1.mlp.c_fc.weight",
        "transformer.resblocks.1.mlp.c_proj.bias", "transformer.resblocks.1.ln_2.bias", "ln_final.weight",
        "text_projection"};
    run_gradcheck(m, &ctx, names, (int)(sizeof names / sizeof *names));
    m->truncate_context = false;
    run_gradcheck(m, &ctx, names, 4);
    aqa_scope_end();
    aqa_clip_model_free(m);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

static void test_gradcheck_vision(void) {
    int64_t live = aqa_live_tensors();
    aqa_clip_model *m = gradcheck_model();
    CHECK(m != NULL);
    if (!m) return;
    aqa_scope_begin();
    aqa_generator g = {test_seed("clip vision gradcheck input"), 0};
    aqa_tensor *images = aqa_requires_grad(aqa_randn(AQA_SHAPE(2, 3, 4, 4), AQA_F64, &g), true);
    gc_ctx ctx = {m, images, false};
    static const char *const names[] = {
        "visual.conv1.weight", "visual.class_embedding", "visual.positional_embedding", "visual.ln_pre.bias",
        "visual.transformer.resblocks.0.attn.in_proj_weight", "visual.transformer.resblocks.0.mlp.c_fc.bias",
        "visual.ln_post.weight", "visual.proj"};
    run_gradcheck(m, &ctx, names, (int)(sizeof names / sizeof *names));
    /* and the images themselves */
    aqa_gradcheck_result r = aqa_gradcheck(encode_fn, &images, 1, &ctx, 1e-6, 1e-7, 1e-5);
    CHECK_MSG(r.ok, "images: %s", r.message);
    aqa_scope_end();
    aqa_clip_model_free(m);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

/* ---- frozen use, save/load, bad files ------------------------------------------------------------ */

static void test_frozen_and_roundtrip(void) {
    int64_t live = aqa_live_tensors();
    aqa_clip_config c = tiny_config();
    aqa_manual_seed(3);
    aqa_clip_model *m = aqa_clip_model_new(&c);
    CHECK(m != NULL);
    if (!m) return;
    char path[] = "/tmp/aqa_test_clip_XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0) close(fd);
    CHECK(aqa_clip_save(m, path) == AQA_OK);
    aqa_clip_model *r = NULL;
    CHECK_MSG(aqa_clip_load(path, &r) == AQA_OK, "%s", aqa_last_error());
    if (r) check_cfg_eq(&r->cfg, &c);
    aqa_scope_begin();
    aqa_generator g = {5, 0};
    aqa_tensor *images = aqa_randn(AQA_SHAPE(2, 3, 16, 16), AQA_F32, &g);
    aqa_tensor *ids = aqa_from_data((const int64_t[]){126, 5, 127, 0, 126, 9, 8, 127}, AQA_SHAPE(2, 4), AQA_I64);
    aqa_tensor *a = aqa_clip_encode_image(m, images, true);
    CHECK(a && !a->requires_grad && a->grad_fn == NULL && aqa_is_grad_enabled());
    if (r) {
        CHECK_REL(aqa_clip_encode_image(r, images, true), a, 0);
        CHECK_REL(aqa_clip_encode_text(r, ids, true), aqa_clip_encode_text(m, ids, true), 0);
    }
    /* fine-tuning the text encoder only: vision frozen, text differentiable */
    aqa_module_requires_grad(&m->visual->base, false);
    aqa_tensor *t = aqa_clip_encode_text(m, ids, false);
    CHECK(t && t->requires_grad);
    CHECK(aqa_backward(aqa_sum_all(t), NULL, false) == AQA_OK);
    CHECK(m->token_embedding->weight->grad != NULL && m->visual->proj->grad == NULL);
    aqa_scope_end();
    aqa_module_zero_grad(&m->base);

    /* a file with one tensor missing, then one with a wrong shape */
    aqa_named_tensor *list;
    int n = aqa_module_named_tensors(&m->base, true, &list);
    const char **names = malloc(sizeof *names * (size_t)n);
    aqa_tensor **ts = malloc(sizeof *ts * (size_t)n);
    for (int i = 0; i < n; i++) {
        names[i] = list[i].name;
        ts[i] = list[i].tensor;
    }
    int drop = 5; /* visual.proj */
    names[drop] = names[n - 1];
    ts[drop] = ts[n - 1];
    CHECK(aqa_save_tensors(path, n - 1, names, ts, 2, (const char *[]){"vision_heads", "text_heads"},
                           (const char *[]){"3", "2"}) == AQA_OK);
    aqa_clip_model *bad = NULL;
    CHECK(aqa_clip_load(path, &bad) != AQA_OK && bad == NULL);
    CHECK(strstr(aqa_last_error(), "visual.proj") != NULL);
    names[drop] = list[drop].name;
    aqa_scope_begin();
    ts[drop] = aqa_zeros(AQA_SHAPE(c.vision_width, c.embed_dim + 1), AQA_F32);
    const char *mk[] = {"vision_heads", "text_heads"}, *mv[] = {"3", "2"};
    CHECK(aqa_save_tensors(path, n, names, ts, 2, mk, mv) == AQA_OK);
    aqa_scope_end();
    CHECK(aqa_clip_load(path, &bad) != AQA_OK && bad == NULL);
    CHECK(strstr(aqa_last_error(), "visual.proj") != NULL);
    free(names);
    free(ts);
    aqa_named_tensors_free(list, n);
    CHECK(aqa_clip_load("/nonexistent/clip.safetensors", &bad) != AQA_OK);
    unlink(path);
    aqa_clip_model_free(r);
    aqa_clip_model_free(m);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

/* MVLA's use: frozen image features (cached once), the text encoder fine-tuned with Adam. */
static void test_finetune_text(void) {
    int64_t live = aqa_live_tensors();
    aqa_clip_config c = tiny_config();
    aqa_manual_seed(21);
    aqa_clip_model *m = aqa_clip_model_new(&c);
    CHECK(m != NULL);
    if (!m) return;
    aqa_module_requires_grad(&m->visual->base, false);
    aqa_tensor **params;
    int np = aqa_module_parameters(&m->base, &params); /* trainable ones: the text side */
    aqa_adam_options ao = AQA_ADAM_DEFAULTS;
    ao.lr = 1e-2; /* MVLA uses 1e-4 over many steps; a short test needs more */
    aqa_optimizer *opt = aqa_adam_new(&ao);
    CHECK(np == 2 + 1 + 2 * 12 + 1 + 2 && opt && aqa_optim_add_params(opt, params, np) >= 0);
    aqa_generator g = {test_seed("clip fine-tune"), 0};
    /* cached visual features (a random CLIP maps random images to nearly parallel vectors, which
     * would make a poor target, so the features here are random too) */
    aqa_tensor *images = aqa_randn(AQA_SHAPE(3, 3, 16, 16), AQA_F32, &g);
    aqa_tensor *frozen = aqa_clip_encode_image(m, images, true);
    CHECK(frozen && !frozen->requires_grad && !frozen->grad_fn);
    aqa_tensor *feats = aqa_randn(AQA_SHAPE(3, 16), AQA_F32, &g);
    aqa_tensor *ids = aqa_from_data((const int64_t[]){126, 5, 9, 127, 0, 126, 17, 127, 0, 0, 126, 40, 41, 42, 127},
                                    AQA_SHAPE(3, 5), AQA_I64);
    aqa_tensor *target = aqa_arange(0, 3, 1, AQA_I64);
    aqa_tensor *before = aqa_clone(m->visual->proj);
    double first = 0, last = 0;
    for (int step = 0; step < 30; step++) {
        aqa_scope_begin();
        aqa_tensor *logits = aqa_clip_logits(m, feats, aqa_clip_encode_text(m, ids, false));
        aqa_tensor *loss = aqa_cross_entropy(logits, target, NULL);
        CHECK(loss && aqa_backward(loss, NULL, false) == AQA_OK);
        CHECK(aqa_optim_step(opt) == AQA_OK);
        aqa_optim_zero_grad(opt);
        if (step == 0) first = aqa_item(loss);
        last = aqa_item(loss);
        aqa_scope_end();
    }
    CHECK_MSG(last < 0.5 * first, "loss %g -> %g", first, last);
    CHECK(m->visual->proj->grad == NULL && rel_err(m->visual->proj, before) == 0);
    aqa_tensor_free(before);
    aqa_tensor_free(target);
    aqa_tensor_free(ids);
    aqa_tensor_free(feats);
    aqa_tensor_free(frozen);
    aqa_tensor_free(images);
    aqa_optim_free(opt);
    free(params);
    aqa_clip_model_free(m);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

/* ---- the same golden parity on a GPU (skips without one) ------------------------------------------
 * Checked on an H100 (CUDA backend, fp32) with a build whose slice/select backward makes its zeros
 * on the gradient's device: embeddings and all gradients within 1e-6. */

static void test_golden_cuda(void) {
#ifndef AQA_HAVE_CUDA
    SKIP("built without CUDA");
#else
    if (!aqa_cuda_is_available()) {
        SKIP("no usable GPU: %.200s", aqa_last_error());
        return;
    }
    aqa_clip_model *m = load_golden_model(TINY_OA);
    if (!m) return;
    aqa_device gpu = aqa_cuda_device(0);
    CHECK_MSG(aqa_module_to(&m->base, gpu) == AQA_OK, "%s", aqa_last_error());
    aqa_scope_begin();
    aqa_tensor *images = aqa_requires_grad(aqa_to_device(golden("images", AQA_F32), gpu), true);
    aqa_tensor *ids = aqa_to_device(golden("token_ids", AQA_I64), gpu);
    aqa_tensor *img = aqa_clip_encode_image(m, images, false), *txt = aqa_clip_encode_text(m, ids, false);
    CHECK_MSG(img && txt, "%s", aqa_last_error());
    CHECK(img && aqa_tensor_device(img).kind == AQA_CUDA);
    CHECK_REL(aqa_to_device(img, AQA_DEVICE_CPU), golden("image_embeds", AQA_F32), 1e-4);
    CHECK_REL(aqa_to_device(txt, AQA_DEVICE_CPU), golden("text_embeds", AQA_F32), 1e-4);
    aqa_tensor *loss = aqa_add(aqa_sum_all(aqa_mul(txt, aqa_to_device(golden("text_R", AQA_F32), gpu))),
                               aqa_sum_all(aqa_mul(img, aqa_to_device(golden("image_R", AQA_F32), gpu))));
    CHECK(aqa_backward(loss, NULL, false) == AQA_OK);
    static const char *const names[] = {"token_embedding.weight", "transformer.resblocks.0.attn.in_proj_weight",
                                        "text_projection", "visual.conv1.weight", "visual.proj"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        aqa_tensor *p = aqa_module_get(&m->base, names[i]);
        char key[160];
        snprintf(key, sizeof key, "grad.%s", names[i]);
        double e = rel_err(p && p->grad ? aqa_to_device(p->grad, AQA_DEVICE_CPU) : NULL, golden(key, AQA_F32));
        CHECK_MSG(e <= 1e-4, "gradient of %s on the GPU: relative error %.3g", names[i], e);
    }
    CHECK_REL(aqa_to_device(images->grad, AQA_DEVICE_CPU), golden("grad.images", AQA_F32), 1e-4);
    aqa_scope_end();
    aqa_module_zero_grad(&m->base);
    aqa_clip_model_free(m);
#endif
}

/* ---- the command-line programs, as other tools call them ------------------------------------------ */

/* CLIP's BPE vocabulary, shipped in the repository (MIT, models/clip/data/LICENSE-bpe_simple_vocab_16e6.txt) */
#define VOCAB "models/clip/data/bpe_simple_vocab_16e6.txt.gz"

static void test_embed_and_zeroshot_programs(void) {
    const char *embed = "examples/clip_embed", *zs = "examples/clip_zeroshot", *vocab = test_source_path(VOCAB);
    if (access(embed, X_OK) != 0 || access(zs, X_OK) != 0) {
        SKIP("examples/clip_embed or clip_zeroshot not built (run from the build folder)");
        return;
    }
    if (access(vocab, R_OK) != 0) {
        SKIP(VOCAB " not found (run from the build folder or set AQA_SRCDIR)");
        return;
    }
    int64_t live = aqa_live_tensors();
    /* a small model with CLIP's real vocabulary and context, so real token ids fit */
    aqa_clip_config c = {.embed_dim = 8, .image_resolution = 32, .vision_layers = 1, .vision_width = 16,
                         .vision_patch_size = 8, .vision_heads = 2, .context_length = 77, .vocab_size = 49408,
                         .transformer_width = 16, .transformer_heads = 2, .transformer_layers = 1};
    aqa_manual_seed(11);
    aqa_clip_model *m = aqa_clip_model_new(&c);
    aqa_bpe_tokenizer *tok = NULL;
    CHECK(m != NULL && aqa_bpe_load(vocab, &tok) == AQA_OK);
    char dir[] = "/tmp/aqa_clipcli_XXXXXX", w[64], tx[64], im[64], png[64], out[64], log[64], cmd[16384];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(w, sizeof w, "%s/w.safetensors", dir);
    snprintf(tx, sizeof tx, "%s/texts.txt", dir);
    snprintf(im, sizeof im, "%s/images.safetensors", dir);
    snprintf(png, sizeof png, "%s/a.png", dir);
    snprintf(out, sizeof out, "%s/out.safetensors", dir);
    snprintf(log, sizeof log, "%s/log.txt", dir);
    if (!m || !tok) goto out;
    CHECK(aqa_clip_save(m, w) == AQA_OK);
    const char *texts[] = {"a diving video of a forward 3.5 somersaults pike", "", "entry into the water"};
    FILE *f = fopen(tx, "w");
    for (int i = 0; i < 3; i++) fprintf(f, "%s\n", texts[i]);
    fclose(f);
    aqa_scope_begin();
    aqa_generator g = {test_seed("clip_embed images"), 0};
    aqa_tensor *images = aqa_randn(AQA_SHAPE(2, 3, 32, 32), AQA_F32, &g);
    CHECK(aqa_save_tensors(im, 1, (const char *[]){"images"}, &images, 0, NULL, NULL) == AQA_OK);
    aqa_image *pic = aqa_image_new(40, 30);
    for (int y = 0; pic && y < 30; y++)
        for (int x = 0; x < 40; x++)
            for (int k = 0; k < 3; k++) pic->data[aqa_image_offset(pic, x, y) + k] = (uint8_t)(x * 6 + y * 3 * k + 17 * k);
    CHECK(pic && aqa_image_save_png(pic, png) == AQA_OK);
    snprintf(cmd, sizeof cmd, "%s --weights %s --bpe '%s' --texts %s --images %s --image-files %s --out %s --batch 2 2> %s",
             embed, w, vocab, tx, im, png, out, log);
    CHECK_EQ_INT(system(cmd), 0);
    /* what the library gives for the same inputs */
    int64_t ids[3 * 77];
    CHECK(aqa_bpe_tokenize(tok, texts, 3, 77, 0, ids) == AQA_OK);
    aqa_tensor *want_ids = aqa_from_data(ids, AQA_SHAPE(3, 77), AQA_I64);
    float pix[3 * 32 * 32];
    CHECK(aqa_clip_preprocess(pic, 32, pix) == AQA_OK);
    aqa_tensor *all = aqa_cat((aqa_tensor *[]){images, aqa_from_data(pix, AQA_SHAPE(1, 3, 32, 32), AQA_F32)}, 2, 0);
    aqa_tensor *got_ids = aqa_load_tensor(out, "token_ids", AQA_I64);
    CHECK(got_ids && aqa_item(aqa_sum_all(aqa_ne(got_ids, want_ids))) == 0);
    CHECK_REL(aqa_load_tensor(out, "text_embeds", AQA_F32), aqa_clip_encode_text(m, want_ids, true), 1e-5);
    CHECK_REL(aqa_load_tensor(out, "image_embeds", AQA_F32), aqa_clip_encode_image(m, all, true), 1e-5);
    /* progress lines on stderr (two batches of each) */
    f = fopen(log, "r");
    char line[256];
    int progress = 0;
    while (f && fgets(line, sizeof line, f)) progress += strstr(line, "clip_embed: texts 2/3") || strstr(line, "clip_embed: images 2/3");
    if (f) fclose(f);
    CHECK_EQ_INT(progress, 2);

    /* clip_zeroshot: probabilities as softmax(logits_per_image) */
    snprintf(cmd, sizeof cmd, "%s --weights %s --bpe '%s' --image %s --labels '%s' '%s' > %s", zs, w, vocab, png,
             texts[0], texts[2], log);
    CHECK_EQ_INT(system(cmd), 0);
    aqa_tensor *p = aqa_softmax(aqa_clip_logits(m, aqa_clip_encode_image(m, aqa_narrow(all, 0, 2, 1), true),
                                                aqa_clip_encode_text(m, aqa_index_select(want_ids, 0,
                                                    aqa_from_data((const int64_t[]){0, 2}, AQA_SHAPE(2), AQA_I64)), true)), -1);
    f = fopen(log, "r");
    for (int i = 0; f && i < 2; i++) {
        double prob = -1;
        char label[200] = "";
        CHECK(fscanf(f, "%lf\t%199[^\n]\n", &prob, label) == 2);
        CHECK_NEAR(prob, aqa_get(p, (const int64_t[]){0, i}), 2e-6);
        CHECK_STR(label, texts[2 * i]);
    }
    if (f) fclose(f);
    /* a bad weights file: message and non-zero status */
    snprintf(cmd, sizeof cmd, "%s --weights %s/none.safetensors --bpe '%s' --out %s 2> %s", embed, dir, vocab, out, log);
    CHECK(system(cmd) != 0);
    aqa_image_free(pic);
    aqa_scope_end();
out:
    unlink(w), unlink(tx), unlink(im), unlink(png), unlink(out), unlink(log), rmdir(dir);
    aqa_bpe_free(tok);
    aqa_clip_model_free(m);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

int main(void) {
    RUN(test_config_infer);
    RUN(test_config_infer_errors);
    RUN(test_hf_names);
    RUN(test_state_dict_names);
    RUN(test_golden_openai);
    RUN(test_golden_hf);
    RUN(test_truncation);
    RUN(test_golden_gradients);
    RUN(test_gradcheck_text);
    RUN(test_gradcheck_vision);
    RUN(test_frozen_and_roundtrip);
    RUN(test_finetune_text);
    RUN(test_embed_and_zeroshot_programs);
    RUN(test_golden_cuda); /* last: it needs ops/views.c's slice backward to keep the device */
    return test_finish();
}
