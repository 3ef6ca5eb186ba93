/* io.h: the bottom layer in one include -- files and file formats, with no tensors: atomic file
 * writing, safetensors (byte level), Python pickles (a safe reading subset and a writer), .npy.
 * Errors are base/error.h's. */
#ifndef AQA_IO_H
#define AQA_IO_H

#include "base/error.h"
#include "io/atomic_file.h"
#include "io/npy.h"
#include "io/pickle.h"
#include "io/pickle_write.h"
#include "io/safetensors.h"

#endif /* AQA_IO_H */
