/* clip-impl.h: private declarations shared by the CLIP model files. */
#ifndef AQA_MODELS_CLIP_IMPL_H
#define AQA_MODELS_CLIP_IMPL_H

#include "models/clip/clip.h"

/* aqa_clip_model_new with init = true; with init = false the tensors CLIP itself creates are
 * zeros and OpenAI's initialisation is skipped (the loader overwrites every tensor). */
aqa_clip_model *aqa__clip_model_build(const aqa_clip_config *cfg, bool init);

#endif /* AQA_MODELS_CLIP_IMPL_H */
