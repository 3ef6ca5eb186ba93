/* sched.h: learning-rate schedules in closed form, as torch.optim.lr_scheduler (StepLR,
 * CosineAnnealingLR) and the common linear-warm-up-then-cosine recipe.
 *
 * A schedule is a plain value: aqa_lr_at(s, base_lr, t) is the learning rate at step (or epoch)
 * t, computed directly from t (no history), so resuming from a checkpoint at step t gives the
 * same rate as the uninterrupted run.  aqa_lr_schedule_apply writes it into every parameter group
 * of an optimizer, scaling each group's own initial_lr (MVLA's 1e-4 / 1e-3 groups keep their
 * ratio).
 *
 *     ```c
 *     aqa_lr_schedule s = aqa_warmup_cosine(100, 2000, 0.0);
 *     for (int64_t t = 0; t < 2000; t++) {
 *         aqa_lr_schedule_apply(&s, opt, t);    // lr for this step
 *         // ... forward, backward ...
 *         aqa_optim_step(opt);
 *     }
 *     ```
 */
#ifndef AQA_NN_SCHED_H
#define AQA_NN_SCHED_H

#include <stdint.h>

#include "nn/optim.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum aqa_lr_kind {
    AQA_LR_CONSTANT = 0,      /* base_lr */
    AQA_LR_STEP = 1,          /* StepLR: base_lr * gamma^floor(t / step_size) */
    AQA_LR_COSINE = 2,        /* CosineAnnealingLR: eta_min + (base - eta_min)(1 + cos(pi t / t_max)) / 2 */
    AQA_LR_WARMUP_COSINE = 3  /* linear warm-up, then cosine decay to eta_min at total_steps */
} aqa_lr_kind;

typedef struct aqa_lr_schedule {
    aqa_lr_kind kind;
    int64_t step_size;    /* STEP: period of the decay */
    double gamma;         /* STEP: factor per period */
    int64_t t_max;        /* COSINE: half period (t past t_max continues the cosine, as torch's closed form) */
    double eta_min;       /* COSINE, WARMUP_COSINE: lowest rate (absolute, as torch) */
    int64_t warmup_steps; /* WARMUP_COSINE: steps of linear increase base * (t + 1) / warmup_steps */
    int64_t total_steps;  /* WARMUP_COSINE: step at which the cosine reaches eta_min (held after) */
} aqa_lr_schedule;

aqa_lr_schedule aqa_step_lr(int64_t step_size, double gamma);
aqa_lr_schedule aqa_cosine_lr(int64_t t_max, double eta_min);
aqa_lr_schedule aqa_warmup_cosine(int64_t warmup_steps, int64_t total_steps, double eta_min);

/* The learning rate at step/epoch t >= 0 for a group whose initial rate is base_lr. */
double aqa_lr_at(const aqa_lr_schedule *s, double base_lr, int64_t t);
/* Sets every group's lr to aqa_lr_at(s, group.initial_lr, t). */
void aqa_lr_schedule_apply(const aqa_lr_schedule *s, aqa_optimizer *opt, int64_t t);

#ifdef __cplusplus
}
#endif

#endif /* AQA_NN_SCHED_H */
