/* test_module.c: the module tree (dotted names as PyTorch's state_dict), modes, freezing,
 * counting, and saving/loading weights with strict and non-strict matching. */
#include <stdlib.h>
#include <unistd.h>

#include "aqa.h"
#include "nn/module.h"
#include "tensor/tensor_file.h"
#include "tests/testlib.h"

/* A toy two-level model: {w, b(buffer), blocks.0.{weight}, blocks.1.{weight, bias=None}} */
typedef struct {
    aqa_module base;
    aqa_tensor *w;
} toy;

static toy *toy_new(int64_t width) {
    toy *m = aqa_module_new(sizeof *m, "Toy", NULL, "", NULL);
    m->w = aqa_module_param(&m->base, "w", aqa_ones(AQA_SHAPE(width), AQA_F32));
    aqa_module_buffer(&m->base, "running", aqa_zeros(AQA_SHAPE(2), AQA_F32));
    aqa_module *blocks = aqa_module_list_new(&m->base, "blocks");
    for (int i = 0; i < 2; i++) {
        char name[8];
        snprintf(name, sizeof name, "%d", i);
        aqa_module *b = aqa_module_new(sizeof(aqa_module), "Block", blocks, name, NULL);
        aqa_module_param(b, "weight", aqa_full(AQA_SHAPE(2, 3), i + 1, AQA_F32));
        if (i == 1) aqa_module_param(b, "bias", NULL); /* absent, like bias=False */
    }
    return m;
}

static void test_names_and_counts(void) {
    aqa_scope_begin(); /* parameters must survive the scope they were made in */
    toy *m = toy_new(4);
    aqa_scope_end();
    aqa_named_tensor *list;
    int n = aqa_module_named_tensors(&m->base, true, &list);
    CHECK_EQ_INT(n, 4);
    CHECK_STR(list[0].name, "w");
    CHECK_STR(list[1].name, "running");
    CHECK(list[1].is_buffer);
    CHECK_STR(list[2].name, "blocks.0.weight");
    CHECK_STR(list[3].name, "blocks.1.weight");
    aqa_named_tensors_free(list, n);
    CHECK_EQ_INT(aqa_module_num_params(&m->base, false), 4 + 6 + 6);
    aqa_module *b1 = aqa_module_find(&m->base, "blocks.1");
    CHECK(b1 != NULL);
    char *path = aqa_module_path(b1);
    CHECK_STR(path, "blocks.1");
    free(path);
    CHECK(aqa_module_get(&m->base, "blocks.0.weight") != NULL);
    CHECK(aqa_module_get(&m->base, "blocks.0.bias") == NULL);
    /* freezing a sub-tree */
    aqa_module_requires_grad(aqa_module_find(&m->base, "blocks"), false);
    CHECK_EQ_INT(aqa_module_num_params(&m->base, true), 4);
    aqa_tensor **ps;
    int np = aqa_module_parameters(&m->base, &ps);
    CHECK_EQ_INT(np, 1);
    free(ps);
    aqa_module_train(&m->base, false);
    CHECK(!b1->training);
    aqa_module_free(&m->base);
}

static void test_save_load_roundtrip_and_strictness(void) {
    int64_t live = aqa_live_tensors();
    char path[] = "/tmp/aqa_test_module_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    toy *a = toy_new(4);
    aqa_fill_(a->w, 3.5);
    aqa_fill_(aqa_module_get(&a->base, "running"), -1);
    CHECK(aqa_module_save(&a->base, path, 1, (const char *[]){"note"}, (const char *[]){"test"}) == AQA_OK);
    toy *b = toy_new(4);
    aqa_load_report r;
    CHECK(aqa_module_load(&b->base, path, true, NULL, NULL, &r) == AQA_OK);
    CHECK_EQ_INT(r.n_loaded, 4);
    CHECK_NEAR(aqa_get(b->w, (int64_t[]){2}), 3.5, 0);
    CHECK_NEAR(aqa_get(aqa_module_get(&b->base, "running"), (int64_t[]){1}), -1, 0);
    /* a model of another width: strict load refuses and changes nothing */
    toy *c = toy_new(5);
    CHECK(aqa_module_load(&c->base, path, true, NULL, NULL, &r) == AQA_EFORMAT);
    CHECK_EQ_INT(r.n_mismatched, 1);
    CHECK_EQ_INT(r.n_missing, 0); /* in the file, only mis-shaped */
    CHECK(strstr(aqa_last_error(), "(0 missing, 0 unexpected, 1 mis-shaped)") != NULL);
    CHECK(strstr(aqa_last_error(), "w (file [4], module [5])") != NULL);
    CHECK(strstr(aqa_last_error(), path) != NULL);
    CHECK_NEAR(aqa_get(aqa_module_get(&c->base, "blocks.0.weight"), (int64_t[]){0, 0}), 1, 0);
    /* non-strict loads what matches and reports the rest */
    CHECK(aqa_module_load(&c->base, path, false, NULL, NULL, &r) == AQA_OK);
    CHECK_EQ_INT(r.n_loaded, 3);
    CHECK_EQ_INT(r.n_missing, 0);
    CHECK_EQ_INT(r.n_mismatched, 1);
    CHECK(strstr(r.text, "shape mismatch: w") != NULL && strstr(r.text, "missing") == NULL);
    /* an extra tensor in the file is "unexpected" */
    aqa_scope_begin();
    aqa_tensor *extra = aqa_ones(AQA_SHAPE(1), AQA_F32);
    aqa_tensor *w = aqa_ones(AQA_SHAPE(4), AQA_F32);
    CHECK(aqa_save_tensors(path, 2, (const char *[]){"w", "zzz"}, (aqa_tensor *[]){w, extra}, 0, NULL, NULL) == AQA_OK);
    aqa_scope_end();
    CHECK(aqa_module_load(&b->base, path, false, NULL, NULL, &r) == AQA_OK);
    CHECK_EQ_INT(r.n_unexpected, 1);
    CHECK_EQ_INT(r.n_missing, 3);
    CHECK(aqa_module_load(&b->base, "/nonexistent/dir/w.safetensors", false, NULL, NULL, &r) != AQA_OK);
    CHECK(strstr(aqa_last_error(), "/nonexistent/dir/w.safetensors") != NULL);
    aqa_module_free(&a->base);
    aqa_module_free(&b->base);
    aqa_module_free(&c->base);
    unlink(path);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

static void test_bad_names_rejected_at_registration(void) {
    int64_t live = aqa_live_tensors();
    toy *m = toy_new(4);
    aqa_module *b1 = aqa_module_find(&m->base, "blocks.1");
    /* a duplicate child, a dotted child, an empty child name */
    CHECK(aqa_module_container(b1, "inner") != NULL);
    CHECK(aqa_module_new(sizeof(aqa_module), "Block", b1, "inner", NULL) == NULL);
    CHECK_STR(aqa_last_error(), "module blocks.1 (Block): child name \"inner\" is already taken (child, parameter and "
                                "buffer names must be unique, non-empty and without '.')");
    CHECK(aqa_module_container(&m->base, "enc.blocks") == NULL);
    CHECK(strstr(aqa_last_error(), "module (Toy): child name \"enc.blocks\" contains '.'") != NULL);
    CHECK(aqa_module_new(sizeof(aqa_module), "Block", b1, "", NULL) == NULL);
    CHECK(strstr(aqa_last_error(), "child name \"\" is empty") != NULL);
    /* a duplicate parameter or buffer, one clashing with a child, a dotted one: rejected (the
     * tensors stay with their owner, the scope) */
    aqa_scope_begin();
    aqa_module *b0 = aqa_module_find(&m->base, "blocks.0");
    CHECK(aqa_module_param(b0, "weight", aqa_ones(AQA_SHAPE(2), AQA_F32)) == NULL);
    CHECK(strstr(aqa_last_error(), "module blocks.0 (Block): parameter name \"weight\" is already taken") != NULL);
    CHECK(aqa_module_buffer(&m->base, "blocks", aqa_ones(AQA_SHAPE(2), AQA_F32)) == NULL);
    CHECK(strstr(aqa_last_error(), "buffer name \"blocks\" is already taken") != NULL);
    CHECK(aqa_module_param(&m->base, "a.b", aqa_ones(AQA_SHAPE(2), AQA_F32)) == NULL);
    CHECK(aqa_module_param(b1, "bias", NULL) == NULL); /* an absent tensor's name is taken too */
    CHECK(aqa_module_param(b1, "inner", aqa_ones(AQA_SHAPE(2), AQA_F32)) == NULL); /* a child's name */
    aqa_scope_end();
    /* nothing reached the state_dict twice */
    aqa_named_tensor *list;
    int n = aqa_module_named_tensors(&m->base, true, &list);
    CHECK_EQ_INT(n, 4);
    aqa_named_tensors_free(list, n);
    /* registered tensors are named after their state_dict key, for messages */
    CHECK_STR(m->w->name, "w");
    CHECK_STR(aqa_module_get(&m->base, "blocks.1.weight")->name, "blocks.1.weight");
    aqa_module_free(&m->base);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

/* A model of four float32 layers fed float64: every layer refuses (as PyTorch) and names the
 * parameter; converting the input or the model explicitly works; elementwise ops still promote. */
static void test_layers_do_not_mix_dtypes(void) {
    aqa_module *root = aqa_module_new(sizeof(aqa_module), "Net", NULL, "", NULL);
    aqa_linear_layer *fc = aqa_linear_layer_new(root, "fc", 3, 2, true);
    aqa_conv_layer *conv = aqa_conv1d_layer_new(root, "conv", 2, 2, 1, 1, 0, 1, 1, true);
    aqa_layer_norm_layer *ln = aqa_layer_norm_layer_new(root, "ln", 1, (int64_t[]){3}, 1e-5, true);
    aqa_batch_norm_layer *bn = aqa_batch_norm1d_layer_new(root, "bn", 3);
    aqa_scope_begin();
    aqa_tensor *x64 = aqa_ones(AQA_SHAPE(2, 3), AQA_F64);
    CHECK(aqa_linear_layer_forward(fc, x64) == NULL);
    CHECK_STR(aqa_last_error(), "aqa_linear: input is float64 but weight fc.weight is float32; the operands of a layer "
                                "must share one dtype (as in PyTorch): convert one explicitly with aqa_to_dtype, or a "
                                "module with aqa_module_to_dtype");
    CHECK(aqa_conv_layer_forward(conv, aqa_ones(AQA_SHAPE(1, 2, 4), AQA_F64)) == NULL);
    CHECK(strstr(aqa_last_error(), "input is float64 but weight conv.weight is float32") != NULL);
    CHECK(aqa_layer_norm_layer_forward(ln, x64) == NULL);
    CHECK(strstr(aqa_last_error(), "aqa_layer_norm: input is float64 but weight ln.weight is float32") != NULL);
    CHECK(aqa_batch_norm_layer_forward(bn, x64) == NULL);
    CHECK(strstr(aqa_last_error(), "aqa_batch_norm: input is float64 but weight bn.weight is float32") != NULL);
    CHECK(aqa_scaled_dot_product_attention(aqa_ones(AQA_SHAPE(2, 3), AQA_F32), x64, x64, NULL, 0, false, 0) == NULL);
    CHECK(strstr(aqa_last_error(), "query is float32 but key is float64") != NULL);
    /* asked for: convert the input, or the model */
    aqa_tensor *y = aqa_linear_layer_forward(fc, aqa_to_dtype(x64, AQA_F32));
    CHECK(y && y->dtype == AQA_F32);
    CHECK(aqa_module_to_dtype(root, AQA_F64) == AQA_OK);
    y = aqa_layer_norm_layer_forward(ln, aqa_linear_layer_forward(fc, aqa_ones(AQA_SHAPE(2, 3), AQA_F64)));
    CHECK(y == NULL); /* fc gives [2, 2], ln wants [.., 3]: shapes still checked */
    y = aqa_batch_norm_layer_forward(bn, aqa_layer_norm_layer_forward(ln, x64));
    CHECK(y && y->dtype == AQA_F64);
    /* elementwise ops promote as PyTorch's: float32 + float64 is float64 */
    aqa_tensor *s = aqa_add(aqa_ones(AQA_SHAPE(2), AQA_F32), aqa_ones(AQA_SHAPE(2), AQA_F64));
    CHECK(s && s->dtype == AQA_F64);
    aqa_scope_end();
    aqa_module_free(root);
}

/* nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Sequential(nn.Linear(16, 2), nn.Tanh())) has the
 * state_dict keys 0.weight, 0.bias, 2.0.weight, 2.0.bias; its forward is the composition. */
static void test_sequential_list_dict(void) {
    int64_t live = aqa_live_tensors();
    aqa_module *net = aqa_sequential_new(NULL, "");
    CHECK(aqa_linear_layer_new(net, NULL, 4, 16, true) != NULL);
    CHECK(aqa_activation_layer_new(net, NULL, AQA_ACT_RELU) != NULL);
    aqa_module *tail = aqa_sequential_new(net, NULL);
    CHECK(aqa_linear_layer_new(tail, "0", 16, 2, true) != NULL); /* the index itself is accepted */
    CHECK(aqa_activation_layer_new(tail, NULL, AQA_ACT_TANH) != NULL);
    static const char *const torch_keys[] = {"0.weight", "0.bias", "2.0.weight", "2.0.bias"};
    aqa_named_tensor *list;
    int n = aqa_module_named_tensors(net, true, &list);
    CHECK_EQ_INT(n, 4);
    for (int i = 0; i < n && i < 4; i++) CHECK_STR(list[i].name, torch_keys[i]);
    aqa_named_tensors_free(list, n);
    /* forward = tanh(linear2(relu(linear1(x)))) */
    aqa_scope_begin();
    aqa_tensor *x = aqa_randn(AQA_SHAPE(3, 4), AQA_F32, NULL);
    aqa_linear_layer *l1 = (aqa_linear_layer *)net->children[0], *l2 = (aqa_linear_layer *)tail->children[0];
    aqa_tensor *want = aqa_tanh(aqa_linear_layer_forward(l2, aqa_relu(aqa_linear_layer_forward(l1, x))));
    aqa_tensor *got = aqa_module_forward(net, x);
    CHECK(got && aqa_same_shape(got, want));
    CHECK(got && aqa_item(aqa_max_all(aqa_abs(aqa_sub(got, want)))) == 0);
    /* the children of an indexed container are named by their index only */
    CHECK(aqa_linear_layer_new(net, "fc", 2, 2, true) == NULL);
    CHECK(strstr(aqa_last_error(), "module (Sequential): child name \"fc\" given, but the children of a Sequential "
                                   "are named by their index (pass NULL for \"3\")") != NULL);
    CHECK(aqa_linear_layer_new(net, "4", 2, 2, true) == NULL);
    /* a child without a one-tensor forward: the error names it */
    aqa_mha_layer_new(net, NULL, 2, 1, 0.0, true, false);
    CHECK(aqa_module_forward(net, x) == NULL);
    CHECK(strstr(aqa_last_error(), "Sequential: child 3 (MultiheadAttention)") != NULL);
    /* ModuleList: indexed; ModuleDict: keyed, found by key; a plain module needs names */
    aqa_module *root = aqa_module_new(sizeof(aqa_module), "Net", NULL, "", NULL);
    aqa_module *blocks = aqa_module_list_new(root, "blocks");
    aqa_module *heads = aqa_module_dict_new(root, "heads");
    for (int i = 0; i < 3; i++) CHECK(aqa_layer_norm_layer_new(blocks, NULL, 1, (int64_t[]){4}, 1e-5, true) != NULL);
    CHECK(aqa_linear_layer_new(heads, "score", 4, 1, true) != NULL);
    CHECK(aqa_linear_layer_new(heads, "stage", 4, 3, false) != NULL);
    CHECK(aqa_linear_layer_new(heads, "score", 4, 1, true) == NULL); /* keys are unique */
    CHECK(aqa_linear_layer_new(root, NULL, 4, 1, true) == NULL);
    CHECK(strstr(aqa_last_error(), "child name \"\" is empty") != NULL);
    CHECK(aqa_module_forward(blocks, x) == NULL); /* a ModuleList has no forward */
    CHECK(strstr(aqa_last_error(), "module blocks (ModuleList) has no one-tensor forward") != NULL);
    CHECK(aqa_module_get(root, "blocks.2.weight") != NULL);
    CHECK(aqa_module_find(root, "heads.stage") == heads->children[1]);
    CHECK_STR(aqa_module_get(root, "heads.score.bias")->name, "heads.score.bias");
    aqa_scope_end();
    aqa_module_free(root);
    aqa_module_free(net);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

static char *strip_prefix(const char *name, void *user) {
    const char *prefix = user;
    size_t n = strlen(prefix);
    return strncmp(name, prefix, n) == 0 ? strdup(name + n) : NULL;
}

static void test_load_with_name_map(void) {
    char path[] = "/tmp/aqa_test_module_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    aqa_scope_begin();
    aqa_tensor *w = aqa_full(AQA_SHAPE(4), 9, AQA_F64); /* f64 in the file, f32 in the module */
    CHECK(aqa_save_tensors(path, 2, (const char *[]){"module.w", "other.x"}, (aqa_tensor *[]){w, w}, 0, NULL, NULL) ==
          AQA_OK);
    aqa_scope_end();
    toy *m = toy_new(4);
    aqa_load_report r;
    CHECK(aqa_module_load(&m->base, path, false, strip_prefix, "module.", &r) == AQA_OK);
    CHECK_EQ_INT(r.n_loaded, 1);
    CHECK_EQ_INT(r.n_unexpected, 0); /* skipped by the map */
    CHECK_NEAR(aqa_get(m->w, (int64_t[]){0}), 9, 0);
    aqa_module_free(&m->base);
    unlink(path);
}

int main(void) {
    RUN(test_names_and_counts);
    RUN(test_save_load_roundtrip_and_strictness);
    RUN(test_load_with_name_map);
    RUN(test_bad_names_rejected_at_registration);
    RUN(test_layers_do_not_mix_dtypes);
    RUN(test_sequential_list_dict);
    return test_finish();
}
