/* fuzz_jpeg.c: the image decoder (image/image.h) on JPEG streams (an SOI marker is put in front
 * when the input lacks it). */
#include "tests/fuzz/fuzz.h"

FUZZ_TARGET(jpeg) {
    static const uint8_t soi[3] = {0xff, 0xd8, 0xff};
    fuzz_decode_image(data, size, soi, sizeof soi, "in.jpg");
    return 0;
}
