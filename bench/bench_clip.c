/* bench_clip.c: CLIP ViT-B/16 inference throughput (random weights, float32, no-grad): image
 * encoding of a batch of 8 at 224x224 in images/s, and text encoding of 32 prompts at context 77
 * in texts/s -- with the full 77 positions (what OpenAI's code computes) and with the positions
 * after the last EOT dropped (aqa's default, the same function) -- beside PyTorch's throughput
 * for the same shapes (scripts/bench_torch_clip.py, our PyTorch CLIP, torch.set_num_threads(2);
 * run when python3 with torch is present, AQA_BENCH_TORCH=0 skips it) and the ratio aqa/PyTorch.
 * Threads: PyTorch is given OMP_NUM_THREADS (default 2); for one thread run
 * OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 bench/bench_clip.
 * Usage: bench/bench_clip [--quick] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "autograd/autograd.h"
#include "models/clip/clip.h"
#include "ops/ops.h"

/* OpenBLAS's extension (cblas.h of OpenBLAS): the kernel family it picked for this CPU. */
extern char *openblas_get_corename(void);

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Best of `reps` runs after one warm-up, in seconds; each run in its own scope. */
#define BEST_OF(reps, body)                               \
    ({                                                    \
        aqa_scope_begin();                                \
        body;                                             \
        aqa_scope_end();                                  \
        double best_ = 1e30;                              \
        for (int r_ = 0; r_ < (reps); r_++) {             \
            aqa_scope_begin();                            \
            double t0_ = now();                           \
            body;                                         \
            double el_ = now() - t0_;                     \
            aqa_scope_end();                              \
            if (el_ < best_) best_ = el_;                 \
        }                                                 \
        best_;                                            \
    })

/* PyTorch's images/s and texts/s from the script (false when unavailable). */
static bool torch_rates(double *img, double *txt, int reps, int threads) {
    const char *e = getenv("AQA_BENCH_TORCH");
    if (e && strcmp(e, "0") == 0) return false;
    static const char *const candidates[] = {"scripts/bench_torch_clip.py", "../scripts/bench_torch_clip.py"};
    const char *script = NULL;
    for (size_t i = 0; i < sizeof candidates / sizeof *candidates && !script; i++) {
        FILE *t = fopen(candidates[i], "r");
        if (t) {
            fclose(t);
            script = candidates[i];
        }
    }
    if (!script) return false;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "python3 %s --machine --reps %d --threads %d 2>/dev/null", script, reps, threads);
    FILE *p = popen(cmd, "r");
    if (!p) return false;
    int got = fscanf(p, "%lf %lf", img, txt);
    pclose(p);
    return got == 2;
}

int main(int argc, char **argv) {
    bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    int reps = quick ? 1 : 3;
    /* PyTorch gets the thread count aqa runs with: OMP_NUM_THREADS (set OPENBLAS_NUM_THREADS
     * alike), else 2, the machine's cores */
    const char *env = getenv("OMP_NUM_THREADS");
    int threads = env && atoi(env) > 0 ? atoi(env) : 2;
    aqa_manual_seed(0);
    aqa_clip_config cfg = aqa_clip_config_vit_b16();
    aqa_clip_model *m = aqa_clip_model_new(&cfg);
    if (!m) {
        fprintf(stderr, "bench_clip: %s\n", aqa_last_error());
        return 1;
    }
    aqa_tensor *images = aqa_randn(AQA_SHAPE(8, 3, 224, 224), AQA_F32, NULL);
    /* the prompts of scripts/bench_torch_clip.py */
    int64_t ids[32 * 77] = {0};
    for (int i = 0; i < 32; i++) {
        int len = 5 + (7 * i) % 13;
        ids[i * 77] = 49406;
        for (int j = 0; j < len; j++) ids[i * 77 + 1 + j] = 1 + (131 * i + 977 * j) % 49000;
        ids[i * 77 + 1 + len] = 49407;
    }
    aqa_tensor *tok = aqa_from_data(ids, AQA_SHAPE(32, 77), AQA_I64);
    double ti = BEST_OF(reps, aqa_clip_encode_image(m, images, true));
    m->truncate_context = false;
    double tt_full = BEST_OF(reps, aqa_clip_encode_text(m, tok, true));
    m->truncate_context = true;
    double tt = BEST_OF(reps, aqa_clip_encode_text(m, tok, true));
    double a_img = 8 / ti, a_full = 32 / tt_full, a_txt = 32 / tt, p_img = 0, p_txt = 0;
    bool have = torch_rates(&p_img, &p_txt, reps, threads);
    printf("CLIP ViT-B/16, float32, no grad, random weights, %d thread(s), OpenBLAS core %s\n", threads,
           openblas_get_corename());
    printf("%-44s %12s %12s %8s\n", "", "aqa", "PyTorch", "ratio");
    if (have) {
        printf("%-44s %12.2f %12.2f %8.2f\n", "image encode, batch 8 x 224^2 (images/s)", a_img, p_img, a_img / p_img);
        printf("%-44s %12.2f %12.2f %8.2f\n", "text encode, 32 x 77, full context (texts/s)", a_full, p_txt, a_full / p_txt);
        printf("%-44s %12.2f %12.2f %8.2f\n", "text encode, cut after last EOT (texts/s)", a_txt, p_txt, a_txt / p_txt);
    } else {
        printf("%-44s %12.2f %12s\n", "image encode, batch 8 x 224^2 (images/s)", a_img, "n/a");
        printf("%-44s %12.2f %12s\n", "text encode, 32 x 77, full context (texts/s)", a_full, "n/a");
        printf("%-44s %12.2f %12s\n", "text encode, cut after last EOT (texts/s)", a_txt, "n/a");
    }
    /* OpenBLAS releases before Zen 4/5 support fall back to their AVX2 (Haswell/Zen) kernels on
     * those AVX-512 CPUs; its AVX-512 kernels can be forced from the environment */
    const char *core = openblas_get_corename();
    if (__builtin_cpu_supports("avx512f") && core && (!strcmp(core, "Haswell") || !strcmp(core, "Zen")))
        printf("note: this CPU has AVX-512 but OpenBLAS runs its %s kernels; try OPENBLAS_CORETYPE=SKYLAKEX\n", core);
    aqa_tensor_free(images);
    aqa_tensor_free(tok);
    aqa_clip_model_free(m);
    return 0;
}
