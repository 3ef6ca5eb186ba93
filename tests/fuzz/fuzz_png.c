/* fuzz_png.c: the image decoder (image/image.h) on PNG streams (the signature is put in front when
 * the input lacks it, so that every input reaches libpng through aqa's reader). */
#include "tests/fuzz/fuzz.h"

FUZZ_TARGET(png) {
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    fuzz_decode_image(data, size, sig, sizeof sig, "in.png");
    return 0;
}
