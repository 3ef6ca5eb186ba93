/* test_checkpoint.c: nn/checkpoint.h.  A run of 10 AdamW steps (dropout on the default generator,
 * data from a second generator, warm-up + cosine schedule, gradient clipping) is compared bit for
 * bit with 5 steps + save + load into fresh objects (after scrambling the RNG) + 5 steps.  Also:
 * metadata round trip, strict loading errors that leave everything untouched, and saves that fail
 * (temporary file impossible, unwritable or missing directory) leaving the old checkpoint intact. */
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#include "autograd/autograd.h"
#include "nn/checkpoint.h"
#include "nn/dropout.h"
#include "nn/linear.h"
#include "nn/loss.h"
#include "nn/optim.h"
#include "nn/sched.h"
#include "ops/ops.h"
#include "tests/test_util.h"

/* A small MLP with dropout and a buffer. */
typedef struct net {
    aqa_module base;
    aqa_linear_layer *fc1, *fc2;
    aqa_dropout_layer *drop;
    aqa_tensor *scale; /* buffer "scale" [2] */
} net;

static net *net_new(int64_t hidden) {
    net *m = aqa_module_new(sizeof *m, "Net", NULL, "", NULL);
    m->fc1 = aqa_linear_layer_new(&m->base, "fc1", 6, hidden, true);
    m->drop = aqa_dropout_layer_new(&m->base, "drop", 0.3);
    m->fc2 = aqa_linear_layer_new(&m->base, "fc2", hidden, 2, true);
    m->scale = aqa_module_buffer(&m->base, "scale", aqa_full(AQA_SHAPE(2), 0.5, AQA_F32));
    return m;
}

static aqa_tensor *net_forward(net *m, aqa_tensor *x) {
    aqa_tensor *h = aqa_relu(aqa_linear_layer_forward(m->fc1, x));
    return aqa_mul(aqa_linear_layer_forward(m->fc2, aqa_dropout_layer_forward(m->drop, h)), m->scale);
}

typedef struct run {
    net *model;
    aqa_optimizer *opt;
    aqa_tensor **params;
    int n_params;
    aqa_generator data_gen; /* draws the batches */
    aqa_lr_schedule sched;
    int64_t step;
} run;

static void run_init(run *r, uint64_t seed) {
    aqa_manual_seed(seed);
    r->model = net_new(16);
    r->n_params = aqa_module_parameters(&r->model->base, &r->params);
    aqa_adam_options ao = AQA_ADAMW_DEFAULTS;
    ao.lr = 1e-2;
    ao.amsgrad = true;
    r->opt = aqa_adamw_new(&ao);
    /* two groups as MVLA: fc1 at a tenth of the head's rate */
    aqa_optim_add_group(r->opt, r->params, 2, 1e-3, 0.01);
    aqa_optim_add_group(r->opt, r->params + 2, r->n_params - 2, 1e-2, 0.05);
    r->data_gen = (aqa_generator){.seed = seed + 1, .offset = 0};
    r->sched = aqa_warmup_cosine(3, 10, 1e-4);
    r->step = 0;
}

static void run_free(run *r) {
    aqa_optim_free(r->opt);
    free(r->params);
    aqa_module_free(&r->model->base);
}

static float run_step(run *r) {
    aqa_scope_begin();
    aqa_lr_schedule_apply(&r->sched, r->opt, r->step);
    aqa_tensor *x = aqa_randn(AQA_SHAPE(8, 6), AQA_F32, &r->data_gen);
    aqa_tensor *y = aqa_randn(AQA_SHAPE(8, 2), AQA_F32, &r->data_gen);
    aqa_tensor *loss = aqa_mse_loss(net_forward(r->model, x), y, AQA_REDUCTION_MEAN);
    float v = loss ? (float)aqa_item(loss) : NAN;
    aqa_optim_zero_grad(r->opt);
    CHECK(aqa_backward(loss, NULL, false) == AQA_OK);
    CHECK(aqa_clip_grad_norm(r->params, r->n_params, 0.5, 2.0, false, NULL) == AQA_OK);
    CHECK(aqa_optim_step(r->opt) == AQA_OK);
    aqa_scope_end();
    r->step++;
    return v;
}

static char tmpdir[256];

static const char *tmp_path(const char *name) {
    static char buf[512];
    snprintf(buf, sizeof buf, "%s/%s", tmpdir, name);
    return buf;
}

static void save_run(run *r, const char *path, aqa_status expect) {
    const char *names[1] = {"data"};
    aqa_generator *gens[1] = {&r->data_gen};
    aqa_checkpoint ck = {.model = &r->model->base, .optim = r->opt, .step = r->step, .epoch = 1,
                         .config_json = "{\"lr\": 0.01, \"note\": \"test\"}", .n_generators = 1,
                         .generator_names = names, .generators = gens};
    aqa_status st = aqa_checkpoint_save(path, &ck);
    CHECK_MSG(st == expect, "save %s: %s (%s)", path, aqa_status_name(st), aqa_last_error());
}

static aqa_status load_run(run *r, const char *path, char **config) {
    const char *names[1] = {"data"};
    aqa_generator *gens[1] = {&r->data_gen};
    aqa_checkpoint ck = {.model = &r->model->base, .optim = r->opt, .n_generators = 1, .generator_names = names,
                         .generators = gens};
    aqa_status st = aqa_checkpoint_load(path, &ck);
    if (st == AQA_OK) r->step = ck.step;
    if (config) *config = ck.loaded_config;
    else free(ck.loaded_config);
    return st;
}

static bool params_equal(run *a, run *b) {
    aqa_named_tensor *la, *lb;
    int na = aqa_module_named_tensors(&a->model->base, true, &la), nb = aqa_module_named_tensors(&b->model->base, true, &lb);
    bool eq = na == nb;
    for (int i = 0; eq && i < na; i++) {
        int64_t n = aqa_numel(la[i].tensor);
        eq = n == aqa_numel(lb[i].tensor) &&
             memcmp(aqa_data(la[i].tensor), aqa_data(lb[i].tensor), sizeof(float) * (size_t)n) == 0;
    }
    aqa_named_tensors_free(la, na);
    aqa_named_tensors_free(lb, nb);
    return eq;
}

static void test_resume_bit_exact(void) {
    int64_t live = aqa_live_tensors();
    float ref[10], got[10];
    run a;
    run_init(&a, 2024);
    for (int s = 0; s < 10; s++) ref[s] = run_step(&a);

    run b;
    run_init(&b, 2024);
    for (int s = 0; s < 5; s++) got[s] = run_step(&b);
    const char *path = tmp_path("ck.safetensors");
    save_run(&b, path, AQA_OK);
    run_free(&b);

    /* fresh objects, different initial weights and RNG state: the checkpoint must restore all */
    run c;
    run_init(&c, 777);
    aqa_manual_seed(31337);
    char *config = NULL;
    aqa_status st = load_run(&c, path, &config);
    CHECK_MSG(st == AQA_OK, "load: %s", aqa_last_error());
    CHECK_EQ_INT(c.step, 5);
    CHECK_STR(config, "{\"lr\": 0.01, \"note\": \"test\"}");
    free(config);
    CHECK_NEAR(c.opt->groups[1].initial_lr, 1e-2, 0);
    CHECK_EQ_INT(c.opt->state[0][0].step, 5);
    for (int s = 5; s < 10; s++) got[s] = run_step(&c);
    for (int s = 0; s < 10; s++)
        CHECK_MSG(memcmp(&ref[s], &got[s], sizeof(float)) == 0, "step %d: loss %.9g uninterrupted vs %.9g resumed", s,
                  ref[s], got[s]);
    printf("    losses: %.6f ... %.6f (10 steps, resumed after 5)\n", ref[0], ref[9]);
    CHECK(params_equal(&a, &c));
    CHECK(ref[9] < ref[0]);
    run_free(&a);
    run_free(&c);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

static void test_file_layout(void) {
    run r;
    run_init(&r, 5);
    run_step(&r);
    const char *path = tmp_path("layout.safetensors");
    save_run(&r, path, AQA_OK);
    aqa_st_file *f;
    CHECK(aqa_st_open(path, &f) == AQA_OK);
    if (f) {
        CHECK(aqa_st_find(f, "model.fc1.weight") >= 0);
        CHECK(aqa_st_find(f, "model.scale") >= 0);
        CHECK(aqa_st_find(f, "optim.0.0.exp_avg") >= 0);
        CHECK(aqa_st_find(f, "optim.1.1.max_exp_avg_sq") >= 0);
        CHECK(aqa_st_find(f, "optim.0.0.momentum_buffer") < 0);
        CHECK_STR(aqa_st_metadata(f, "format"), "aqa-checkpoint-1");
        CHECK_STR(aqa_st_metadata(f, "step"), "1");
        CHECK_STR(aqa_st_metadata(f, "optim.kind"), "AdamW");
        CHECK_STR(aqa_st_metadata(f, "optim.0.0.step"), "1");
        CHECK(aqa_st_metadata(f, "rng.default.offset") != NULL);
        CHECK(aqa_st_metadata(f, "rng.data.seed") != NULL);
        CHECK_EQ_INT(aqa_st_count(f), 5 + 4 * 3); /* 4 parameters + 1 buffer, 3 state tensors each */
        aqa_st_close(f);
    }
    /* the model alone loads into a fresh model (for evaluation), equal to the saved one */
    aqa_manual_seed(99);
    net *fresh = net_new(16);
    aqa_load_report rep;
    CHECK_MSG(aqa_checkpoint_load_model(path, &fresh->base, &rep) == AQA_OK, "%s", aqa_last_error());
    CHECK_EQ_INT(rep.n_loaded, 5);
    aqa_tensor *w0 = aqa_module_get(&r.model->base, "fc2.weight"), *w1 = aqa_module_get(&fresh->base, "fc2.weight");
    CHECK(memcmp(aqa_data(w0), aqa_data(w1), sizeof(float) * (size_t)aqa_numel(w0)) == 0);
    aqa_module_free(&fresh->base);
    net *small = net_new(12);
    CHECK(aqa_checkpoint_load_model(path, &small->base, NULL) != AQA_OK);
    aqa_module_free(&small->base);
    run_free(&r);
}

static void test_strict_errors(void) {
    run r;
    run_init(&r, 9);
    run_step(&r);
    const char *path = tmp_path("strict.safetensors");
    save_run(&r, path, AQA_OK);

    /* a model with another shape: error names file and key, nothing changes */
    aqa_manual_seed(1);
    net *other = net_new(12);
    aqa_tensor *w = aqa_module_get(&other->base, "fc1.weight");
    float before = ((float *)aqa_data(w))[0];
    aqa_checkpoint ck = {.model = &other->base};
    CHECK(aqa_checkpoint_load(path, &ck) == AQA_EFORMAT);
    CHECK(strstr(aqa_last_error(), "strict.safetensors") && strstr(aqa_last_error(), "model.fc1.weight"));
    CHECK(((float *)aqa_data(w))[0] == before);
    aqa_module_free(&other->base);

    /* model only (the file also holds optimizer state): unexpected tensors */
    run r2;
    run_init(&r2, 10);
    aqa_checkpoint ck2 = {.model = &r2.model->base};
    CHECK(aqa_checkpoint_load(path, &ck2) == AQA_EFORMAT);
    CHECK(strstr(aqa_last_error(), "unexpected") && strstr(aqa_last_error(), "optim."));
    /* an optimizer of another kind */
    aqa_optimizer *sgd = aqa_sgd_new(&(aqa_sgd_options)AQA_SGD_DEFAULTS);
    aqa_optim_add_params(sgd, r2.params, r2.n_params);
    aqa_checkpoint ck3 = {.model = &r2.model->base, .optim = sgd};
    CHECK(aqa_checkpoint_load(path, &ck3) == AQA_EFORMAT);
    CHECK(strstr(aqa_last_error(), "AdamW") && strstr(aqa_last_error(), "SGD"));
    aqa_optim_free(sgd);
    /* a generator the file does not have */
    aqa_generator g = {0, 0};
    const char *gn[1] = {"augment"};
    aqa_generator *gp[1] = {&g};
    aqa_checkpoint ck4 = {.model = &r2.model->base, .optim = r2.opt, .n_generators = 1, .generator_names = gn,
                          .generators = gp};
    CHECK(aqa_checkpoint_load(path, &ck4) == AQA_EFORMAT);
    CHECK(strstr(aqa_last_error(), "rng.augment.seed") != NULL);
    /* not a checkpoint: a plain weights file */
    const char *plain = tmp_path("plain.safetensors");
    CHECK(aqa_module_save(&r2.model->base, plain, 0, NULL, NULL) == AQA_OK);
    aqa_checkpoint ck5 = {.model = &r2.model->base};
    CHECK(aqa_checkpoint_load(plain, &ck5) == AQA_EFORMAT);
    CHECK(strstr(aqa_last_error(), "format") != NULL);
    /* missing file */
    CHECK(aqa_checkpoint_load(tmp_path("absent.safetensors"), &ck5) != AQA_OK);
    CHECK(strstr(aqa_last_error(), "absent.safetensors") != NULL);
    run_free(&r2);
    run_free(&r);
}

static void test_failed_save_keeps_old(void) {
    run r;
    run_init(&r, 11);
    run_step(&r);
    const char *p = tmp_path("keep.safetensors");
    char path[512];
    snprintf(path, sizeof path, "%s", p);
    save_run(&r, path, AQA_OK);
    size_t n0, n1;
    unsigned char *old = test_read_file(path, &n0);
    run_step(&r); /* the state changes: a successful save would change the file */
    /* the temporary file cannot be created (a directory is in its way; fails even for root) */
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    CHECK(mkdir(tmp, 0700) == 0);
    save_run(&r, path, AQA_EIO);
    CHECK(strstr(aqa_last_error(), "keep.safetensors") != NULL);
    unsigned char *now = test_read_file(path, &n1);
    CHECK(old && now && n0 == n1 && memcmp(old, now, n0) == 0);
    free(now);
    rmdir(tmp);
    /* the old checkpoint still loads */
    run q;
    run_init(&q, 12);
    CHECK(load_run(&q, path, NULL) == AQA_OK);
    CHECK_EQ_INT(q.step, 1);
    run_free(&q);
    /* a directory that does not exist */
    save_run(&r, tmp_path("no/such/dir/ck.safetensors"), AQA_EIO);
    /* and now it works again */
    save_run(&r, path, AQA_OK);
    now = test_read_file(path, &n1);
    CHECK(now && (n0 != n1 || memcmp(old, now, n0) != 0));
    free(now);
    free(old);
    run_free(&r);
}

static void test_unwritable_dir(void) {
    if (geteuid() == 0) {
        SKIP("running as root: directory permissions do not stop root (the temporary-file case covers the failure)");
        return;
    }
    char dir[512];
    snprintf(dir, sizeof dir, "%s", tmp_path("ro"));
    CHECK(mkdir(dir, 0700) == 0);
    char path[600];
    snprintf(path, sizeof path, "%s/ck.safetensors", dir);
    run r;
    run_init(&r, 13);
    save_run(&r, path, AQA_OK);
    size_t n0, n1;
    unsigned char *old = test_read_file(path, &n0);
    chmod(dir, 0500);
    run_step(&r);
    save_run(&r, path, AQA_EIO);
    unsigned char *now = test_read_file(path, &n1);
    CHECK(old && now && n0 == n1 && memcmp(old, now, n0) == 0);
    chmod(dir, 0700);
    free(old);
    free(now);
    unlink(path);
    rmdir(dir);
    run_free(&r);
}

static void rm_tree(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/aqa_test_checkpoint.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_resume_bit_exact);
    RUN(test_file_layout);
    RUN(test_strict_errors);
    RUN(test_failed_save_keeps_old);
    RUN(test_unwritable_dir);
    rm_tree(tmpdir);
    return test_finish();
}
