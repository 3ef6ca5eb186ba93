/* eval.h: evaluation in one include -- the metrics AQA papers report (Spearman's rho, R-l2, MSE,
 * AIoU) and the figures (plots drawn on image/canvas.h). */
#ifndef AQA_EVAL_H
#define AQA_EVAL_H

#include "eval/metrics.h"
#include "eval/plot.h"

#endif /* AQA_EVAL_H */
