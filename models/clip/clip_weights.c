/* clip_weights.c: CLIP weights files.  Configuration inference from tensor shapes (OpenAI's
 * build_model), Hugging Face CLIPModel names mapped to OpenAI's (q/k/v packed into in_proj, the
 * two projections transposed), loading from safetensors and saving with OpenAI's names.
 *
 * Hugging Face -> OpenAI (per transformers' CLIPModel and its conversion script):
 *   text_model.embeddings.token_embedding.weight        token_embedding.weight
 *   text_model.embeddings.position_embedding.weight     positional_embedding
 *   text_model.encoder.layers.N.                        transformer.resblocks.N.
 *   vision_model.encoder.layers.N.                      visual.transformer.resblocks.N.
 *     self_attn.{q,k,v}_proj.{weight,bias}              attn.in_proj_{weight,bias} rows 0/1/2 x E
 *     self_attn.out_proj.  layer_norm1.  layer_norm2.   attn.out_proj.  ln_1.  ln_2.
 *     mlp.fc1.  mlp.fc2.                                mlp.c_fc.  mlp.c_proj.
 *   text_model.final_layer_norm.                        ln_final.
 *   vision_model.embeddings.class_embedding             visual.class_embedding
 *   vision_model.embeddings.patch_embedding.weight      visual.conv1.weight
 *   vision_model.embeddings.position_embedding.weight   visual.positional_embedding
 *   vision_model.pre_layrnorm. (sic)  .post_layernorm.  visual.ln_pre.  visual.ln_post.
 *   visual_projection.weight [D, W]                     visual.proj [W, D] (transposed)
 *   text_projection.weight [D, W]                       text_projection [W, D] (transposed)
 *   logit_scale                                         logit_scale
 *   *.embeddings.position_ids                           (ignored) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/clip/clip.h"
#include "models/clip/clip-impl.h"
#include "io/safetensors.h"
#include "ops/ops.h"
#include "tensor/tensor-impl.h"

/* ---- names --------------------------------------------------------------------------------- */

static bool starts(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

static char *concat(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 1);
    if (!s) return NULL;
    memcpy(s, a, la);
    memcpy(s + la, b, lb + 1);
    return s;
}

/* Maps the part of an encoder-layer name after "layers.N." (rest) to OpenAI's. */
static const char *layer_suffix(const char *rest, int *part) {
    static const struct { const char *hf, *oa; int part; } tab[] = {
        {"self_attn.q_proj.weight", "attn.in_proj_weight", 0}, {"self_attn.k_proj.weight", "attn.in_proj_weight", 1},
        {"self_attn.v_proj.weight", "attn.in_proj_weight", 2}, {"self_attn.q_proj.bias", "attn.in_proj_bias", 0},
        {"self_attn.k_proj.bias", "attn.in_proj_bias", 1},     {"self_attn.v_proj.bias", "attn.in_proj_bias", 2},
        {"self_attn.out_proj.weight", "attn.out_proj.weight", -1}, {"self_attn.out_proj.bias", "attn.out_proj.bias", -1},
        {"layer_norm1.weight", "ln_1.weight", -1},             {"layer_norm1.bias", "ln_1.bias", -1},
        {"layer_norm2.weight", "ln_2.weight", -1},             {"layer_norm2.bias", "ln_2.bias", -1},
        {"mlp.fc1.weight", "mlp.c_fc.weight", -1},             {"mlp.fc1.bias", "mlp.c_fc.bias", -1},
        {"mlp.fc2.weight", "mlp.c_proj.weight", -1},           {"mlp.fc2.bias", "mlp.c_proj.bias", -1},
    };
    for (size_t i = 0; i < sizeof tab / sizeof *tab; i++)
        if (strcmp(rest, tab[i].hf) == 0) {
            *part = tab[i].part;
            return tab[i].oa;
        }
    return NULL;
}

char *aqa_clip_hf_to_openai(const char *hf, int *part, bool *transpose, bool *ignore) {
    int p = -1;
    bool tr = false, ig = false;
    char *out = NULL;
    static const struct { const char *hf, *oa; } whole[] = {
        {"logit_scale", "logit_scale"},
        {"text_model.embeddings.token_embedding.weight", "token_embedding.weight"},
        {"text_model.embeddings.position_embedding.weight", "positional_embedding"},
        {"text_model.final_layer_norm.weight", "ln_final.weight"},
        {"text_model.final_layer_norm.bias", "ln_final.bias"},
        {"vision_model.embeddings.class_embedding", "visual.class_embedding"},
        {"vision_model.embeddings.patch_embedding.weight", "visual.conv1.weight"},
        {"vision_model.embeddings.position_embedding.weight", "visual.positional_embedding"},
        {"vision_model.pre_layrnorm.weight", "visual.ln_pre.weight"},
        {"vision_model.pre_layrnorm.bias", "visual.ln_pre.bias"},
        {"vision_model.post_layernorm.weight", "visual.ln_post.weight"},
        {"vision_model.post_layernorm.bias", "visual.ln_post.bias"},
    };
    for (size_t i = 0; i < sizeof whole / sizeof *whole && !out; i++)
        if (strcmp(hf, whole[i].hf) == 0) out = strdup(whole[i].oa);
    if (!out && strcmp(hf, "visual_projection.weight") == 0) {
        out = strdup("visual.proj");
        tr = true;
    } else if (!out && strcmp(hf, "text_projection.weight") == 0) {
        out = strdup("text_projection");
        tr = true;
    } else if (!out && (strcmp(hf, "text_model.embeddings.position_ids") == 0 ||
                        strcmp(hf, "vision_model.embeddings.position_ids") == 0)) {
        ig = true;
    } else if (!out) {
        const char *pre = NULL, *oa_pre = NULL;
        if (starts(hf, "text_model.encoder.layers.")) {
            pre = "text_model.encoder.layers.";
            oa_pre = "transformer.resblocks.";
        } else if (starts(hf, "vision_model.encoder.layers.")) {
            pre = "vision_model.encoder.layers.";
            oa_pre = "visual.transformer.resblocks.";
        }
        if (pre) {
            const char *s = hf + strlen(pre), *e = s;
            while (*e >= '0' && *e <= '9') e++;
            const char *suffix = e > s && *e == '.' ? layer_suffix(e + 1, &p) : NULL;
            if (suffix) {
                char idx[32];
                size_t n = (size_t)(e - s) < sizeof idx - 2 ? (size_t)(e - s) : sizeof idx - 2;
                memcpy(idx, s, n);
                idx[n] = '.';
                idx[n + 1] = '\0';
                char *a = concat(oa_pre, idx);
                out = a ? concat(a, suffix) : NULL;
                free(a);
            }
        }
    }
    if (part) *part = out ? p : -1;
    if (transpose) *transpose = tr;
    if (ignore) *ignore = ig;
    return out;
}

static bool is_hf_name(const char *n) {
    return starts(n, "text_model.") || starts(n, "vision_model.") || strcmp(n, "visual_projection.weight") == 0;
}

/* OpenAI's .pt state dicts carry these scalars beside the weights; build_model deletes them. */
static bool openai_ignored(const char *n) {
    return strcmp(n, "input_resolution") == 0 || strcmp(n, "context_length") == 0 || strcmp(n, "vocab_size") == 0;
}

/* ---- configuration inference ------------------------------------------------------------------ */

typedef struct shape_list {
    aqa_clip_named_shape *e; /* OpenAI-named entries (names malloc'd) */
    int n;
} shape_list;

static void shape_list_free(shape_list *l) {
    for (int i = 0; i < l->n; i++) free((char *)l->e[i].name);
    free(l->e);
}

/* Converts the entries to OpenAI names and shapes (q/k/v counted once, with 3x the rows). */
static aqa_status normalise(const aqa_clip_named_shape *in, int n, shape_list *out) {
    bool hf = false;
    for (int i = 0; i < n; i++)
        if (in[i].name && is_hf_name(in[i].name)) hf = true;
    out->n = 0;
    out->e = calloc((size_t)(n > 0 ? n : 1), sizeof *out->e);
    if (!out->e) return aqa_fail(AQA_ENOMEM, "CLIP config: out of memory");
    for (int i = 0; i < n; i++) {
        if (!in[i].name) continue;
        aqa_clip_named_shape s = in[i];
        char *name;
        if (hf) {
            int part;
            bool tr, ig;
            name = aqa_clip_hf_to_openai(in[i].name, &part, &tr, &ig);
            if (!name || part > 0) {
                free(name);
                continue;
            }
            if (part == 0 && s.ndim >= 1) s.shape[0] *= 3;
            if (tr && s.ndim == 2) {
                int64_t t = s.shape[0];
                s.shape[0] = s.shape[1];
                s.shape[1] = t;
            }
        } else {
            name = strdup(in[i].name);
        }
        if (!name) {
            shape_list_free(out);
            return aqa_fail(AQA_ENOMEM, "CLIP config: out of memory");
        }
        s.name = name;
        out->e[out->n++] = s;
    }
    return AQA_OK;
}

static const aqa_clip_named_shape *find_shape(const shape_list *l, const char *name) {
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->e[i].name, name) == 0) return &l->e[i];
    return NULL;
}

/* Number of blocks under prefix ("visual.transformer.resblocks."): distinct indices, which must
 * be 0..n-1 each with an attn.in_proj_weight. */
static int64_t count_blocks(const shape_list *l, const char *prefix, aqa_status *st) {
    int64_t max = -1;
    size_t lp = strlen(prefix);
    for (int i = 0; i < l->n; i++) {
        if (strncmp(l->e[i].name, prefix, lp) != 0) continue;
        char *end;
        long long k = strtoll(l->e[i].name + lp, &end, 10);
        if (end != l->e[i].name + lp && *end == '.' && k > max) max = k;
    }
    for (int64_t k = 0; k <= max; k++) {
        char nm[160];
        snprintf(nm, sizeof nm, "%s%lld.attn.in_proj_weight", prefix, (long long)k);
        if (!find_shape(l, nm)) {
            *st = aqa_fail(AQA_EFORMAT, "CLIP weights: block %lld of %s is missing (no %s)", (long long)k, prefix, nm);
            return -1;
        }
    }
    return max + 1;
}

static const aqa_clip_named_shape *need(const shape_list *l, const char *name, int ndim, aqa_status *st) {
    const aqa_clip_named_shape *s = find_shape(l, name);
    if (!s) *st = aqa_fail(AQA_EFORMAT, "CLIP weights: tensor %s is missing", name);
    else if (s->ndim != ndim) {
        *st = aqa_fail(AQA_EFORMAT, "CLIP weights: tensor %s has %d dims, expected %d", name, s->ndim, ndim);
        s = NULL;
    }
    return s;
}

static int64_t heads_for(int64_t width, int64_t given, const char *what, aqa_status *st) {
    int64_t h = given > 0 ? given : width / 64;
    if (h <= 0 || width % h != 0) {
        *st = aqa_fail(AQA_EFORMAT, "CLIP weights: %s width %lld gives %lld heads (width / 64); give the heads "
                                    "explicitly (metadata \"%s_heads\")", what, (long long)width, (long long)h,
                       strcmp(what, "vision") == 0 ? "vision" : "text");
        return -1;
    }
    return h;
}

aqa_status aqa_clip_config_infer(const aqa_clip_named_shape *entries, int n, int64_t vision_heads, int64_t text_heads,
                                 aqa_clip_config *cfg) {
    if (!cfg || (n > 0 && !entries)) return aqa_fail(AQA_EINVAL, "aqa_clip_config_infer: NULL argument");
    shape_list l;
    aqa_status st = normalise(entries, n, &l);
    if (st != AQA_OK) return st;
    aqa_clip_config c = {0};
    if (!find_shape(&l, "visual.proj")) {
        st = find_shape(&l, "visual.layer1.0.conv1.weight") || find_shape(&l, "visual.attnpool.positional_embedding")
                 ? aqa_fail(AQA_EUNSUPPORTED, "CLIP weights: ResNet vision towers (RN50, ...) are not supported; "
                                              "ViT models only")
                 : aqa_fail(AQA_EFORMAT, "CLIP weights: tensor visual.proj is missing");
        goto out;
    }
    const aqa_clip_named_shape *conv = need(&l, "visual.conv1.weight", 4, &st);
    const aqa_clip_named_shape *vpos = need(&l, "visual.positional_embedding", 2, &st);
    const aqa_clip_named_shape *tproj = need(&l, "text_projection", 2, &st);
    const aqa_clip_named_shape *pos = need(&l, "positional_embedding", 2, &st);
    const aqa_clip_named_shape *tok = need(&l, "token_embedding.weight", 2, &st);
    const aqa_clip_named_shape *lnf = need(&l, "ln_final.weight", 1, &st);
    if (!conv || !vpos || !tproj || !pos || !tok || !lnf) goto out;
    c.vision_width = conv->shape[0];
    c.vision_patch_size = conv->shape[3];
    if (conv->shape[1] != 3 || conv->shape[2] != conv->shape[3]) {
        st = aqa_fail(AQA_EFORMAT, "CLIP weights: visual.conv1.weight is [%lld, %lld, %lld, %lld], expected [W, 3, p, p]",
                      (long long)conv->shape[0], (long long)conv->shape[1], (long long)conv->shape[2],
                      (long long)conv->shape[3]);
        goto out;
    }
    int64_t g = (int64_t)llround(sqrt((double)(vpos->shape[0] - 1)));
    if (g < 1 || g * g + 1 != vpos->shape[0]) {
        st = aqa_fail(AQA_EFORMAT, "CLIP weights: visual.positional_embedding has %lld rows, not grid^2 + 1",
                      (long long)vpos->shape[0]);
        goto out;
    }
    c.image_resolution = c.vision_patch_size * g;
    c.embed_dim = tproj->shape[1];
    c.context_length = pos->shape[0];
    c.vocab_size = tok->shape[0];
    c.transformer_width = lnf->shape[0];
    c.vision_layers = count_blocks(&l, "visual.transformer.resblocks.", &st);
    c.transformer_layers = count_blocks(&l, "transformer.resblocks.", &st);
    if (c.vision_layers < 0 || c.transformer_layers < 0) goto out;
    c.vision_heads = heads_for(c.vision_width, vision_heads, "vision", &st);
    c.transformer_heads = heads_for(c.transformer_width, text_heads, "text", &st);
    if (c.vision_heads < 0 || c.transformer_heads < 0) goto out;
    *cfg = c;
out:
    shape_list_free(&l);
    return st;
}

/* ---- loading --------------------------------------------------------------------------------- */

static int64_t meta_int(const aqa_st_file *f, const char *key) {
    const char *v = aqa_st_metadata(f, key);
    if (!v) return 0;
    char *end;
    long long x = strtoll(v, &end, 10);
    return end != v && *end == '\0' && x > 0 ? (int64_t)x : 0;
}

static bool shape_eq(int na, const int64_t *a, int nb, const int64_t *b) {
    if (na != nb) return false;
    for (int i = 0; i < na; i++)
        if (a[i] != b[i]) return false;
    return true;
}

static void shape_text(int nd, const int64_t *s, char *buf, size_t size) {
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < nd && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, i ? ", %lld" : "%lld", (long long)s[i]);
    if (used < size) snprintf(buf + used, size - used, "]");
}

/* Copies file tensor i into module tensor t (rows part*rows.. when part >= 0, transposed when
 * tr), after checking the shape. */
static aqa_status load_one(aqa_st_file *f, int i, aqa_tensor *t, const char *oname, int part, bool tr) {
    const aqa_st_tensor *info = aqa_st_get(f, i);
    if (!info) return aqa_last_status();
    int64_t want[AQA_MAX_DIMS];
    int nd = t->ndim;
    memcpy(want, t->shape, sizeof want);
    if (part >= 0) want[0] /= 3;
    if (tr && nd == 2) {
        want[0] = t->shape[1];
        want[1] = t->shape[0];
    }
    if (!shape_eq(info->ndim, info->shape, nd, want)) {
        char a[96], b[96];
        shape_text(info->ndim, info->shape, a, sizeof a);
        shape_text(nd, want, b, sizeof b);
        return aqa_fail(AQA_EFORMAT, "%s: tensor %s (model %s) has shape %s, expected %s", aqa_st_path(f), info->name,
                        oname, a, b);
    }
    if (t->dtype != AQA_F32 || !aqa_is_contiguous(t) || aqa_tensor_device(t).kind != AQA_CPU)
        return aqa_fail(AQA_EINVAL, "CLIP load: model tensor %s is not a contiguous CPU float32 tensor", oname);
    float *dst = (float *)aqa_data(t) + (part >= 0 ? (size_t)part * (size_t)info->numel : 0);
    aqa__bump_version(t, "aqa_clip_load"); /* written in place, below */
    if (!tr || nd != 2) return aqa_st_read_f32(f, i, dst);
    float *tmp = malloc(sizeof(float) * (size_t)(info->numel ? info->numel : 1));
    if (!tmp) return aqa_fail(AQA_ENOMEM, "CLIP load: out of memory for %s", oname);
    aqa_status st = aqa_st_read_f32(f, i, tmp);
    int64_t R = info->shape[0], C = info->shape[1]; /* file [R, C] -> model [C, R] */
    if (st == AQA_OK)
        for (int64_t r = 0; r < R; r++)
            for (int64_t c = 0; c < C; c++) dst[c * R + r] = tmp[r * C + c];
    free(tmp);
    return st;
}

aqa_status aqa_clip_load(const char *path, aqa_clip_model **out) {
    if (!path || !out) return aqa_fail(AQA_EINVAL, "aqa_clip_load: NULL argument");
    *out = NULL;
    aqa_st_file *f;
    aqa_status st = aqa_st_open(path, &f);
    if (st != AQA_OK) return st;
    int nf = aqa_st_count(f);
    aqa_clip_named_shape *shapes = calloc((size_t)(nf > 0 ? nf : 1), sizeof *shapes);
    aqa_named_tensor *mine = NULL;
    int nm = 0;
    int *covered = NULL;
    aqa_clip_model *m = NULL;
    if (!shapes) {
        st = aqa_fail(AQA_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    bool hf = false;
    for (int i = 0; i < nf; i++) {
        const aqa_st_tensor *t = aqa_st_get(f, i);
        if (t->ndim > AQA_MAX_DIMS) continue; /* not a CLIP tensor; reported as unexpected below */
        shapes[i].name = t->name;
        shapes[i].ndim = t->ndim;
        for (int d = 0; d < t->ndim; d++) shapes[i].shape[d] = t->shape[d];
        if (is_hf_name(t->name)) hf = true;
    }
    aqa_clip_config cfg;
    st = aqa_clip_config_infer(shapes, nf, meta_int(f, "vision_heads"), meta_int(f, "text_heads"), &cfg);
    if (st != AQA_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", aqa_last_error());
        aqa_fail(st, "%s: %s", path, msg);
        goto done;
    }
    m = aqa__clip_model_build(&cfg, false); /* every tensor is overwritten below */
    if (!m) {
        st = aqa_last_status();
        goto done;
    }
    nm = aqa_module_named_tensors(&m->base, true, &mine);
    covered = calloc((size_t)(nm > 0 ? nm : 1), sizeof *covered);
    if (nm < 0 || !covered) {
        st = nm < 0 ? aqa_last_status() : aqa_fail(AQA_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    for (int i = 0; i < nf && st == AQA_OK; i++) {
        const char *name = aqa_st_name(f, i);
        int part = -1;
        bool tr = false, ig = false;
        char *oname;
        if (hf) {
            oname = aqa_clip_hf_to_openai(name, &part, &tr, &ig);
        } else {
            ig = openai_ignored(name);
            oname = ig ? NULL : strdup(name);
        }
        if (ig) continue;
        int j = -1;
        for (int k = 0; oname && k < nm; k++)
            if (strcmp(mine[k].name, oname) == 0) j = k;
        if (j < 0) {
            st = aqa_fail(AQA_EFORMAT, "%s: unexpected tensor %s (not part of a CLIP ViT model with %s names)", path,
                          name, hf ? "Hugging Face" : "OpenAI");
        } else {
            st = load_one(f, i, mine[j].tensor, oname, part, tr);
            covered[j] += part >= 0 ? 1 : 3;
        }
        free(oname);
    }
    for (int j = 0; st == AQA_OK && j < nm; j++)
        if (covered[j] != 3)
            st = aqa_fail(AQA_EFORMAT, "%s: tensor %s %s", path, mine[j].name,
                          covered[j] == 0 ? "is missing" : "is given more than once or only in part (q/k/v)");
done:
    if (mine) aqa_named_tensors_free(mine, nm);
    free(covered);
    free(shapes);
    aqa_st_close(f);
    if (st != AQA_OK) {
        aqa_clip_model_free(m);
        return st;
    }
    *out = m;
    return AQA_OK;
}

aqa_status aqa_clip_save(aqa_clip_model *m, const char *path) {
    if (!m || !path) return aqa_fail(AQA_EINVAL, "aqa_clip_save: NULL argument");
    char vh[32], th[32];
    snprintf(vh, sizeof vh, "%lld", (long long)m->cfg.vision_heads);
    snprintf(th, sizeof th, "%lld", (long long)m->cfg.transformer_heads);
    const char *keys[] = {"format", "vision_heads", "text_heads"};
    const char *vals[] = {"pt", vh, th};
    return aqa_module_save(&m->base, path, 3, keys, vals);
}
