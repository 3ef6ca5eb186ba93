/* fuzz_jpeg.c: the image decoder (image/image.h) on JPEG streams (an SOI marker is put in front
 * when the input lacks it). */
#include <stdlib.h>
#include <string.h>

#include "image/image.h"
#include "tests/fuzz/fuzz.h"

FUZZ_TARGET(jpeg) {
    static const uint8_t soi[3] = {0xff, 0xd8, 0xff};
    uint8_t *buf = malloc(size + sizeof soi);
    if (!buf) return 0;
    size_t n = 0;
    if (size < 3 || memcmp(data, soi, 3)) memcpy(buf, soi, sizeof soi), n = sizeof soi;
    if (size) memcpy(buf + n, data, size);
    aqa_image_free(aqa_image_decode(buf, n + size, "in.jpg"));
    free(buf);
    return 0;
}
