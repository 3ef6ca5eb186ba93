/* fuzz_png.c: the image decoder (image/image.h) on PNG streams (the signature is put in front
 * when the input lacks it, so that every input reaches libpng through aqa's reader). */
#include <stdlib.h>
#include <string.h>

#include "image/image.h"
#include "tests/fuzz/fuzz.h"

FUZZ_TARGET(png) {
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    uint8_t *buf = malloc(size + sizeof sig);
    if (!buf) return 0;
    size_t n = 0;
    if (size < 8 || memcmp(data, sig, 8)) memcpy(buf, sig, sizeof sig), n = sizeof sig;
    if (size) memcpy(buf + n, data, size);
    aqa_image_free(aqa_image_decode(buf, n + size, "in.png"));
    free(buf);
    return 0;
}
