/* bench_clip.c: CLIP ViT-B/16 inference throughput (random weights, float32, no-grad): image
 * encoding of a batch of 8 at 224x224 in images/s, and text encoding of 32 prompts at context 77
 * in texts/s -- with the full 77 positions (what OpenAI's code computes) and with the positions
 * after the last EOT dropped (aqa's default, the same function) -- beside PyTorch's throughput
 * for the same shapes (scripts/bench_torch_clip.py, our PyTorch CLIP; conventions of
 * bench/bench_util.h).
 * Usage: bench/bench_clip [--quick] */
#include "autograd/autograd.h"
#include "bench/bench_util.h"
#include "models/clip/clip.h"
#include "ops/ops.h"

int main(int argc, char **argv) {
    bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    int reps = quick ? 1 : 3;
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
    double ti = BENCH_BEST(reps, 0, aqa_clip_encode_image(m, images, true));
    m->truncate_context = false;
    double tt_full = BENCH_BEST(reps, 0, aqa_clip_encode_text(m, tok, true));
    m->truncate_context = true;
    double tt = BENCH_BEST(reps, 0, aqa_clip_encode_text(m, tok, true));
    double a_img = 8 / ti, a_full = 32 / tt_full, a_txt = 32 / tt, p[2] = {0, 0};
    char args[32];
    snprintf(args, sizeof args, "--reps %d", reps);
    bool have = bench_torch_times("bench_torch_clip.py", args, p, 2);
    bench_print_setup("CLIP ViT-B/16, float32, no grad, random weights");
    bench_print_head();
    bench_row("CLIP ViT-B/16 image encode, batch 8", "images/s", a_img, have ? p[0] : 0, true, true);
    bench_row("CLIP text encode, 32 x 77, full context", "texts/s", a_full, have ? p[1] : 0, true, true);
    bench_row("CLIP text encode, cut after the last EOT", "texts/s", a_txt, have ? p[1] : 0, true, false);
    bench_print_foot();
    aqa_tensor_free(images);
    aqa_tensor_free(tok);
    aqa_clip_model_free(m);
    return 0;
}
