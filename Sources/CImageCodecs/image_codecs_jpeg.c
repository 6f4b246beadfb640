/* JPEG → RGB8 through libjpeg(-turbo), with its longjmp error handling kept inside C. */
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include "image_codecs.h"
#include "image_codecs_internal.h"

typedef struct {
    struct jpeg_error_mgr manager; /* first member: libjpeg hands back a jpeg_error_mgr * */
    jmp_buf jump;
    char *message;
    size_t capacity;
} jpeg_error_context;

static void jpeg_fail(j_common_ptr cinfo) {
    jpeg_error_context *context = (jpeg_error_context *)cinfo->err;
    char text[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, text);
    image_codecs_set_message(context->message, context->capacity, "%s", text);
    longjmp(context->jump, 1);
}

static void jpeg_message(j_common_ptr cinfo, int level) {
    /* Level -1 is a warning: corrupt entropy data, a premature end of the file, extraneous
       bytes. libjpeg would go on and fill the damage with gray; we refuse the image. Levels
       >= 0 are trace messages. */
    if (level < 0) {
        jpeg_fail(cinfo);
    }
}

/* PIL reads every 4-component JPEG with rawmode "CMYK;I" (Adobe polarity, so PIL's CMYK is
   255 minus what libjpeg delivers) and its convert("RGB") computes, per channel,
   R = nk - MULDIV255(C, nk) with nk = 255 - K and MULDIV255(a, b) = round(a * b / 255)
   as ((t >> 8) + t) >> 8 with t = a * b + 128. In libjpeg's own (inverted) values c, k
   that is R = k - MULDIV255(255 - c, k), about c * k / 255. */
static inline uint8_t cmyk_channel_to_rgb(unsigned inverted_ink, unsigned inverted_black) {
    unsigned ink = 255u - inverted_ink;
    unsigned product = ink * inverted_black + 128u;
    unsigned scaled = ((product >> 8) + product) >> 8;
    return (uint8_t)(inverted_black - scaled);
}

int image_codecs_decode_jpeg(const uint8_t *data, size_t size, int64_t max_pixels,
                             image_codecs_rgb *out, char *message, size_t capacity) {
    if (out == NULL || (data == NULL && size > 0)) {
        image_codecs_set_message(message, capacity, "invalid argument");
        return IMAGE_CODECS_INVALID_ARGUMENT;
    }
    out->width = 0;
    out->height = 0;
    out->pixels = NULL;
    image_codecs_set_message(message, capacity, "%s", "");
    if (size == 0) {
        image_codecs_set_message(message, capacity, "empty file");
        return IMAGE_CODECS_CORRUPT;
    }

    struct jpeg_decompress_struct cinfo;
    jpeg_error_context error;
    /* Written after setjmp and read after longjmp: must be volatile. */
    uint8_t *volatile pixels = NULL;
    JSAMPLE *volatile row = NULL;

    cinfo.err = jpeg_std_error(&error.manager);
    error.manager.error_exit = jpeg_fail;
    error.manager.emit_message = jpeg_message;
    error.message = message;
    error.capacity = capacity;
    if (setjmp(error.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(pixels);
        free(row);
        return IMAGE_CODECS_CORRUPT;
    }

    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);

    const int64_t width = cinfo.image_width;
    const int64_t height = cinfo.image_height;
    if (width * height > max_pixels) {
        out->width = (int32_t)width;
        out->height = (int32_t)height;
        image_codecs_set_message(message, capacity,
                                 "%lld x %lld = %lld pixels exceeds the limit of %lld pixels",
                                 (long long)width, (long long)height,
                                 (long long)(width * height), (long long)max_pixels);
        jpeg_destroy_decompress(&cinfo);
        return IMAGE_CODECS_TOO_MANY_PIXELS;
    }

    /* As PIL: the number of components picks the output (1: L, 4: CMYK, else RGB);
       libjpeg converts YCbCr → RGB and YCCK → CMYK itself. */
    switch (cinfo.num_components) {
    case 1:
        cinfo.out_color_space = JCS_GRAYSCALE;
        break;
    case 4:
        cinfo.out_color_space = JCS_CMYK;
        break;
    default:
        cinfo.out_color_space = JCS_RGB;
        break;
    }
    jpeg_start_decompress(&cinfo);

    const size_t output_width = cinfo.output_width;
    const size_t output_height = cinfo.output_height;
    const size_t output_components = (size_t)cinfo.output_components;
    pixels = malloc(output_width * output_height * 3);
    if (cinfo.out_color_space != JCS_RGB) {
        row = malloc(output_width * output_components);
    }
    if (pixels == NULL || (cinfo.out_color_space != JCS_RGB && row == NULL)) {
        image_codecs_set_message(message, capacity, "out of memory for %zu x %zu pixels",
                                 output_width, output_height);
        jpeg_destroy_decompress(&cinfo);
        free(pixels);
        free(row);
        return IMAGE_CODECS_OUT_OF_MEMORY;
    }

    while (cinfo.output_scanline < output_height) {
        uint8_t *destination = pixels + (size_t)cinfo.output_scanline * output_width * 3;
        JSAMPROW rows[1] = {cinfo.out_color_space == JCS_RGB ? destination : row};
        if (jpeg_read_scanlines(&cinfo, rows, 1) != 1) {
            /* A memory source never suspends; this only guards against a silent stall. */
            image_codecs_set_message(message, capacity, "decoder stopped at row %u of %zu",
                                     cinfo.output_scanline, output_height);
            longjmp(error.jump, 1);
        }
        if (cinfo.out_color_space == JCS_GRAYSCALE) {
            for (size_t x = 0; x < output_width; x++) {
                destination[3 * x + 0] = row[x];
                destination[3 * x + 1] = row[x];
                destination[3 * x + 2] = row[x];
            }
        } else if (cinfo.out_color_space == JCS_CMYK) {
            for (size_t x = 0; x < output_width; x++) {
                const JSAMPLE *cmyk = row + 4 * x;
                destination[3 * x + 0] = cmyk_channel_to_rgb(cmyk[0], cmyk[3]);
                destination[3 * x + 1] = cmyk_channel_to_rgb(cmyk[1], cmyk[3]);
                destination[3 * x + 2] = cmyk_channel_to_rgb(cmyk[2], cmyk[3]);
            }
        }
    }
    /* Reads up to EOI: damage after the last scan is caught here too. */
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    free(row);

    out->width = (int32_t)output_width;
    out->height = (int32_t)output_height;
    out->pixels = pixels;
    return IMAGE_CODECS_OK;
}
