/* image.c: RGB image allocation, PNG/JPEG decoding from files or memory, atomic PNG/JPEG writing.
 *
 * Both codecs report errors by longjmp from a callback; each decoder keeps every object it must
 * free in a struct reachable after setjmp returns, so an error path frees exactly what exists. */
#include "image/image.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

#include "io/atomic_file.h"

/* Largest file aqa_image_load reads into memory (a 32768^2 PNG could legitimately be large, but
 * a dataset frame above 512 MiB means something is wrong). */
#define MAX_FILE_BYTES ((size_t)512 << 20)

static int size_ok(long w, long h) {
    return w > 0 && h > 0 && w <= AQA_IMAGE_MAX_SIDE && h <= AQA_IMAGE_MAX_SIDE &&
           (size_t)w * (size_t)h <= AQA_IMAGE_MAX_PIXELS;
}

aqa_image *aqa_image_new(int width, int height) {
    if (!size_ok(width, height))
        return aqa_fail_null("aqa_image_new: bad size %dx%d (1..%d per side, at most %zu pixels)",
                             width, height, AQA_IMAGE_MAX_SIDE, AQA_IMAGE_MAX_PIXELS);
    aqa_image *im = calloc(1, sizeof *im);
    if (!im) {
        aqa_fail(AQA_ENOMEM, "aqa_image_new: out of memory");
        return NULL;
    }
    im->width = width;
    im->height = height;
    im->channels = 3;
    im->data = calloc((size_t)width * (size_t)height, 3);
    if (!im->data) {
        free(im);
        aqa_fail(AQA_ENOMEM, "aqa_image_new: out of memory for %dx%d pixels", width, height);
        return NULL;
    }
    return im;
}

aqa_image *aqa_image_copy(const aqa_image *im) {
    if (!im || !im->data) return aqa_fail_null("aqa_image_copy: NULL image");
    aqa_image *out = aqa_image_new(im->width, im->height);
    if (!out) return NULL;
    if (im->channels != 3) {
        aqa_image_free(out);
        return aqa_fail_null("aqa_image_copy: image has %d channels, expected 3", im->channels);
    }
    memcpy(out->data, im->data, (size_t)im->width * im->height * 3);
    return out;
}

void aqa_image_free(aqa_image *im) {
    if (!im) return;
    free(im->data);
    free(im);
}

/* ---------------------------------------------------------------------------------------- */
/* PNG decoding */

typedef struct png_reader {
    const uint8_t *bytes; /* whole file */
    size_t len, pos;      /* size and read position */
    const char *name;     /* for messages */
    char msg[256];        /* libpng's error message, kept for the caller */
} png_reader;

static void png_read_mem(png_structp png, png_bytep out, size_t n) {
    png_reader *r = png_get_io_ptr(png);
    if (n > r->len - r->pos) png_error(png, "file is truncated");
    memcpy(out, r->bytes + r->pos, n);
    r->pos += n;
}

static void png_on_error(png_structp png, png_const_charp msg) {
    png_reader *r = png_get_error_ptr(png);
    snprintf(r->msg, sizeof r->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg; /* warnings (e.g. a bad ancillary chunk) do not affect the pixels we return */
}

static aqa_image *decode_png(const uint8_t *bytes, size_t len, const char *name) {
    png_reader rd = {bytes, len, 0, name, ""};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &rd, png_on_error, png_on_warning);
    if (!png) {
        aqa_fail(AQA_ENOMEM, "%s: cannot create PNG reader", name);
        return NULL;
    }
    png_infop info = png_create_info_struct(png);
    /* volatile: assigned after setjmp and read after a longjmp back to it */
    aqa_image *volatile im = NULL;
    png_bytep *volatile rows = NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        aqa_fail(AQA_ENOMEM, "%s: cannot create PNG reader", name);
        return NULL;
    }
    if (setjmp(png_jmpbuf(png))) {
        aqa_image_free(im);
        free(rows);
        png_destroy_read_struct(&png, &info, NULL);
        aqa_fail(AQA_EFORMAT, "%s: corrupt PNG: %s", name, rd.msg[0] ? rd.msg : "decode error");
        return NULL;
    }
    png_set_read_fn(png, &rd, png_read_mem);
    png_set_user_limits(png, AQA_IMAGE_MAX_SIDE, AQA_IMAGE_MAX_SIDE);
    png_read_info(png, info);

    png_uint_32 w, h;
    int depth, color, interlace;
    png_get_IHDR(png, info, &w, &h, &depth, &color, &interlace, NULL, NULL);
    if (!size_ok((long)w, (long)h)) {
        snprintf(rd.msg, sizeof rd.msg, "image size %ux%u is too large", (unsigned)w, (unsigned)h);
        png_longjmp(png, 1);
    }
    /* Reduce every PNG type to 8-bit RGB the way PIL's convert("RGB") does. */
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if ((color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) && depth < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16) png_set_strip_16(png); /* high byte, as PIL's "RGB;16B" unpacker */
    if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
    /* alpha (real, or made from palette tRNS) is dropped without compositing, as PIL does */
    png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_channels(png, info) != 3 || png_get_bit_depth(png, info) != 8 ||
        png_get_rowbytes(png, info) != (size_t)w * 3) {
        snprintf(rd.msg, sizeof rd.msg, "unexpected layout after conversion (%d channels, %d bits)",
                 png_get_channels(png, info), png_get_bit_depth(png, info));
        png_longjmp(png, 1);
    }
    im = aqa_image_new((int)w, (int)h);
    rows = malloc(sizeof(png_bytep) * h);
    if (!im || !rows) {
        snprintf(rd.msg, sizeof rd.msg, "out of memory");
        png_longjmp(png, 1);
    }
    for (png_uint_32 y = 0; y < h; y++) rows[y] = im->data + (size_t)y * w * 3;
    png_read_image(png, rows);
    png_read_end(png, NULL); /* checks the CRCs of the chunks after the image data */
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    return im;
}

/* ---------------------------------------------------------------------------------------- */
/* JPEG decoding */

typedef struct jpeg_err {
    struct jpeg_error_mgr mgr; /* libjpeg's manager; must come first (cast from j_common_ptr) */
    jmp_buf jump;              /* where errors go instead of exit() */
    char msg[JMSG_LENGTH_MAX]; /* the first error or warning message */
} jpeg_err;

static void jpeg_on_error(j_common_ptr cinfo) {
    jpeg_err *e = (jpeg_err *)cinfo->err;
    if (!e->msg[0]) cinfo->err->format_message(cinfo, e->msg);
    longjmp(e->jump, 1);
}

/* libjpeg reports recoverable corruption (truncated data, bad Huffman codes, ...) as warnings and
 * goes on with grey or garbage pixels; we refuse such files instead, so a damaged frame never
 * reaches a model silently.  Extra bytes before a marker are harmless padding and are allowed. */
static void jpeg_on_message(j_common_ptr cinfo, int level) {
    jpeg_err *e = (jpeg_err *)cinfo->err;
    if (level >= 0) return; /* trace messages */
    if (cinfo->err->msg_code == JWRN_EXTRANEOUS_DATA) return;
    if (!e->msg[0]) cinfo->err->format_message(cinfo, e->msg);
    longjmp(e->jump, 1);
}

static aqa_image *decode_jpeg(const uint8_t *bytes, size_t len, const char *name) {
    struct jpeg_decompress_struct cinfo;
    jpeg_err err;
    aqa_image *volatile im = NULL;
    memset(&err, 0, sizeof err);
    cinfo.err = jpeg_std_error(&err.mgr);
    err.mgr.error_exit = jpeg_on_error;
    err.mgr.emit_message = jpeg_on_message;
    if (setjmp(err.jump)) {
        jpeg_destroy_decompress(&cinfo);
        aqa_image_free(im);
        if (im == NULL && err.msg[0] == 0) {
            aqa_fail(AQA_ENOMEM, "%s: out of memory decoding JPEG", name);
        } else if (strncmp(err.msg, "unsupported:", 12) == 0) {
            aqa_fail(AQA_EUNSUPPORTED, "%s: %s", name, err.msg + 13);
        } else {
            aqa_fail(AQA_EFORMAT, "%s: corrupt JPEG: %s", name, err.msg);
        }
        return NULL;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, bytes, (unsigned long)len);
    jpeg_read_header(&cinfo, TRUE);
    if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK ||
        cinfo.num_components == 4) {
        snprintf(err.msg, sizeof err.msg, "unsupported: CMYK/YCCK JPEG (convert it to RGB first)");
        longjmp(err.jump, 1);
    }
    if (!size_ok((long)cinfo.image_width, (long)cinfo.image_height)) {
        snprintf(err.msg, sizeof err.msg, "image size %ux%u is too large",
                 (unsigned)cinfo.image_width, (unsigned)cinfo.image_height);
        longjmp(err.jump, 1);
    }
    cinfo.out_color_space = JCS_RGB; /* libjpeg-turbo replicates grayscale into RGB */
    jpeg_start_decompress(&cinfo);
    if (cinfo.output_components != 3) {
        snprintf(err.msg, sizeof err.msg, "decoder gave %d components, expected 3",
                 cinfo.output_components);
        longjmp(err.jump, 1);
    }
    im = aqa_image_new((int)cinfo.output_width, (int)cinfo.output_height);
    if (!im) longjmp(err.jump, 1);
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = im->data + (size_t)cinfo.output_scanline * im->width * 3;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    return im;
}

/* ---------------------------------------------------------------------------------------- */

aqa_image *aqa_image_decode(const void *bytes, size_t len, const char *name) {
    static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    const uint8_t *b = bytes;
    if (!name) name = "(memory)";
    if (!bytes) return aqa_fail_null("%s: NULL buffer", name);
    if (len >= 8 && memcmp(b, png_magic, 8) == 0) return decode_png(b, len, name);
    if (len >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return decode_jpeg(b, len, name);
    aqa_fail(AQA_EFORMAT, "%s: not a PNG or JPEG file (%zu bytes, unknown signature)", name, len);
    return NULL;
}

aqa_image *aqa_image_load(const char *path) {
    if (!path) return aqa_fail_null("aqa_image_load: NULL path");
    FILE *f = fopen(path, "rb");
    if (!f) {
        aqa_fail(AQA_EIO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        aqa_fail(AQA_EIO, "%s: not a regular file", path);
        return NULL;
    }
    if ((size_t)st.st_size > MAX_FILE_BYTES) {
        fclose(f);
        aqa_fail(AQA_EFORMAT, "%s: file too large for an image (%lld bytes)", path,
                 (long long)st.st_size);
        return NULL;
    }
    size_t len = (size_t)st.st_size;
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        fclose(f);
        aqa_fail(AQA_ENOMEM, "%s: out of memory reading %zu bytes", path, len);
        return NULL;
    }
    size_t got = fread(buf, 1, len, f);
    int rerr = ferror(f);
    fclose(f);
    if (got != len || rerr) {
        free(buf);
        aqa_fail(AQA_EIO, "%s: read error", path);
        return NULL;
    }
    aqa_image *im = aqa_image_decode(buf, len, path);
    free(buf);
    return im;
}

static aqa_status check_rgb(const aqa_image *im, const char *path) {
    if (!path) return aqa_fail(AQA_EINVAL, "image save: NULL path");
    if (!im || !im->data || im->channels != 3 || !size_ok(im->width, im->height))
        return aqa_fail(AQA_EINVAL, "%s: image to save must be a valid 3-channel image", path);
    return AQA_OK;
}

typedef struct png_writer {
    char msg[256]; /* libpng's error message */
} png_writer;

static void png_w_error(png_structp png, png_const_charp msg) {
    png_writer *w = png_get_error_ptr(png);
    snprintf(w->msg, sizeof w->msg, "%s", msg);
    png_longjmp(png, 1);
}

/* Silences libjpeg's warnings while encoding: they do not change the bytes written (errors still
 * go to error_exit). */
static void jpeg_quiet(j_common_ptr cinfo, int level) {
    (void)cinfo;
    (void)level;
}

static aqa_status check_jpeg(const aqa_image *im, const char *path, int quality) {
    aqa_status st = check_rgb(im, path);
    if (st != AQA_OK) return st;
    if (quality < 1 || quality > 100)
        return aqa_fail(AQA_EINVAL, "%s: JPEG quality %d out of range 1..100", path, quality);
    return AQA_OK;
}

aqa_status aqa_image_write_png(const aqa_image *im, FILE *f, const char *path) {
    aqa_status st = check_rgb(im, path);
    if (st != AQA_OK) return st;
    png_writer w = {""};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &w, png_w_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(&png, &info);
        return aqa_fail(AQA_ENOMEM, "%s: cannot create PNG writer", path);
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return aqa_fail(AQA_EIO, "%s: PNG write failed: %s", path, w.msg);
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)im->width, (png_uint_32)im->height, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < im->height; y++)
        png_write_row(png, im->data + (size_t)y * im->width * 3);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return AQA_OK;
}

aqa_status aqa_image_write_jpeg(const aqa_image *im, FILE *f, const char *path, int quality) {
    aqa_status st = check_jpeg(im, path, quality);
    if (st != AQA_OK) return st;
    struct jpeg_compress_struct cinfo;
    jpeg_err err;
    memset(&err, 0, sizeof err);
    cinfo.err = jpeg_std_error(&err.mgr);
    err.mgr.error_exit = jpeg_on_error;
    err.mgr.emit_message = jpeg_quiet;
    if (setjmp(err.jump)) {
        jpeg_destroy_compress(&cinfo);
        return aqa_fail(AQA_EIO, "%s: JPEG write failed: %s", path, err.msg);
    }
    jpeg_create_compress(&cinfo);
    jpeg_stdio_dest(&cinfo, f);
    cinfo.image_width = (JDIMENSION)im->width;
    cinfo.image_height = (JDIMENSION)im->height;
    cinfo.input_components = 3;
    cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = im->data + (size_t)cinfo.next_scanline * im->width * 3;
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    return AQA_OK;
}

/* The arguments are checked before the temporary file is made, so a bad call leaves nothing. */
aqa_status aqa_image_save_png(const aqa_image *im, const char *path) {
    aqa_status st = check_rgb(im, path);
    if (st != AQA_OK) return st;
    aqa_atomic_file *af;
    if ((st = aqa_atomic_open(path, &af)) != AQA_OK) return st;
    if ((st = aqa_image_write_png(im, aqa_atomic_stream(af), path)) != AQA_OK) {
        aqa_atomic_abort(af);
        return st;
    }
    return aqa_atomic_commit(af);
}

aqa_status aqa_image_save_jpeg(const aqa_image *im, const char *path, int quality) {
    aqa_status st = check_jpeg(im, path, quality);
    if (st != AQA_OK) return st;
    aqa_atomic_file *af;
    if ((st = aqa_atomic_open(path, &af)) != AQA_OK) return st;
    if ((st = aqa_image_write_jpeg(im, aqa_atomic_stream(af), path, quality)) != AQA_OK) {
        aqa_atomic_abort(af);
        return st;
    }
    return aqa_atomic_commit(af);
}
