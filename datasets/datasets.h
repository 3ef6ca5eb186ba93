/* datasets.h: the data layer in one include -- the four AQA datasets' annotations, FINA dive
 * numbers and each dataset's texts, sampled video datasets, exemplar pairing, the batch loader,
 * the feature cache and the synthetic diving set. */
#ifndef AQA_DATASETS_H
#define AQA_DATASETS_H

#include "datasets/annotations.h"
#include "datasets/exemplar.h"
#include "datasets/feature_cache.h"
#include "datasets/fina.h"
#include "datasets/loader.h"
#include "datasets/synthetic.h"
#include "datasets/texts.h"
#include "datasets/video_dataset.h"

#endif /* AQA_DATASETS_H */
