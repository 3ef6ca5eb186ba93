/* sched.c: closed-form learning-rate schedules (sched.h). */
#include <math.h>

#include "nn/sched.h"

aqa_lr_schedule aqa_step_lr(int64_t step_size, double gamma) {
    return (aqa_lr_schedule){.kind = AQA_LR_STEP, .step_size = step_size > 0 ? step_size : 1, .gamma = gamma};
}

aqa_lr_schedule aqa_cosine_lr(int64_t t_max, double eta_min) {
    return (aqa_lr_schedule){.kind = AQA_LR_COSINE, .t_max = t_max > 0 ? t_max : 1, .eta_min = eta_min};
}

aqa_lr_schedule aqa_warmup_cosine(int64_t warmup_steps, int64_t total_steps, double eta_min) {
    return (aqa_lr_schedule){.kind = AQA_LR_WARMUP_COSINE, .warmup_steps = warmup_steps > 0 ? warmup_steps : 0,
                             .total_steps = total_steps, .eta_min = eta_min};
}

double aqa_lr_at(const aqa_lr_schedule *s, double base_lr, int64_t t) {
    if (!s) return base_lr;
    if (t < 0) t = 0;
    switch (s->kind) {
    case AQA_LR_CONSTANT: return base_lr;
    case AQA_LR_STEP: return base_lr * pow(s->gamma, (double)(t / (s->step_size > 0 ? s->step_size : 1)));
    case AQA_LR_COSINE: {
        /* torch's _get_closed_form_lr */
        double T = (double)(s->t_max > 0 ? s->t_max : 1);
        return s->eta_min + (base_lr - s->eta_min) * (1.0 + cos(M_PI * (double)t / T)) / 2.0;
    }
    case AQA_LR_WARMUP_COSINE: {
        if (t < s->warmup_steps) return base_lr * (double)(t + 1) / (double)s->warmup_steps;
        int64_t span = s->total_steps - s->warmup_steps;
        double progress = span > 0 ? (double)(t - s->warmup_steps) / (double)span : 1.0;
        if (progress > 1.0) progress = 1.0;
        return s->eta_min + (base_lr - s->eta_min) * 0.5 * (1.0 + cos(M_PI * progress));
    }
    }
    return base_lr;
}

void aqa_lr_schedule_apply(const aqa_lr_schedule *s, aqa_optimizer *opt, int64_t t) {
    if (!opt) return;
    for (int g = 0; g < opt->n_groups; g++) opt->groups[g].lr = aqa_lr_at(s, opt->groups[g].initial_lr, t);
}
