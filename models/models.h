/* models.h: the model zoo in one include -- CLIP (tokenizer, image and text encoders), I3D, MVLA
 * and the assessment heads it plugs into. */
#ifndef AQA_MODELS_H
#define AQA_MODELS_H

#include "models/clip/clip.h"
#include "models/clip/tokenizer.h"
#include "models/heads/groups.h"
#include "models/heads/head.h"
#include "models/heads/seq.h"
#include "models/i3d/i3d.h"
#include "models/mvla/mvla.h"
#include "models/mvla/stages.h"
#include "models/mvla/text_tables.h"

#endif /* AQA_MODELS_H */
