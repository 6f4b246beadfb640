/* PNG ↔ RGB8 through libpng, with its longjmp error handling kept inside C. */
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

#include "image_codecs.h"
#include "image_codecs_internal.h"

typedef struct {
    char *message;
    size_t capacity;
} png_error_context;

typedef struct {
    const uint8_t *data;
    size_t size;
    size_t offset;
} png_memory_reader;

typedef struct {
    uint8_t *data;
    size_t size;
    size_t capacity;
} png_memory_writer;

static void png_fail(png_structp png, png_const_charp text) {
    png_error_context *context = (png_error_context *)png_get_error_ptr(png);
    image_codecs_set_message(context->message, context->capacity, "%s", text);
    png_longjmp(png, 1);
}

static void png_ignore_warning(png_structp png, png_const_charp text) {
    /* Warnings (an odd sRGB profile, a benign extra byte) do not damage the pixels. CRC
       failures are not warnings here: see png_set_crc_action below. */
    (void)png;
    (void)text;
}

static void png_read_memory(png_structp png, png_bytep destination, size_t length) {
    png_memory_reader *reader = (png_memory_reader *)png_get_io_ptr(png);
    if (length > reader->size - reader->offset) {
        png_error(png, "unexpected end of file (truncated PNG)");
    }
    memcpy(destination, reader->data + reader->offset, length);
    reader->offset += length;
}

static void png_write_memory(png_structp png, png_bytep source, size_t length) {
    png_memory_writer *writer = (png_memory_writer *)png_get_io_ptr(png);
    if (length > SIZE_MAX / 2 - writer->size) {
        png_error(png, "encoded PNG too large");
    }
    if (writer->size + length > writer->capacity) {
        size_t capacity = writer->capacity < 4096 ? 4096 : writer->capacity;
        while (capacity < writer->size + length) {
            capacity *= 2;
        }
        uint8_t *grown = realloc(writer->data, capacity);
        if (grown == NULL) {
            png_error(png, "out of memory while encoding");
        }
        writer->data = grown;
        writer->capacity = capacity;
    }
    memcpy(writer->data + writer->size, source, length);
    writer->size += length;
}

static void png_flush_memory(png_structp png) {
    (void)png;
}

/* One decoded row (after libpng's transforms) to RGB8, as PIL's convert("RGB"). */
static void png_row_to_rgb(const uint8_t *source, uint8_t *destination, size_t width,
                           int channels, int sixteen_bit_gray) {
    for (size_t x = 0; x < width; x++) {
        uint8_t r, g, b;
        switch (channels) {
        case 1:
            if (sixteen_bit_gray) {
                /* PIL: mode "I", then i2rgb clamps to 0...255 */
                unsigned value = ((unsigned)source[2 * x] << 8) | source[2 * x + 1];
                r = g = b = (uint8_t)(value >= 255 ? 255 : value);
            } else {
                r = g = b = source[x];
            }
            break;
        case 2: /* gray + alpha: alpha dropped */
            r = g = b = source[2 * x];
            break;
        case 3:
            r = source[3 * x];
            g = source[3 * x + 1];
            b = source[3 * x + 2];
            break;
        default: /* RGBA: alpha dropped */
            r = source[4 * x];
            g = source[4 * x + 1];
            b = source[4 * x + 2];
            break;
        }
        destination[3 * x + 0] = r;
        destination[3 * x + 1] = g;
        destination[3 * x + 2] = b;
    }
}

int image_codecs_decode_png(const uint8_t *data, size_t size, int64_t max_pixels,
                            image_codecs_rgb *out, char *message, size_t capacity) {
    if (out == NULL || (data == NULL && size > 0)) {
        image_codecs_set_message(message, capacity, "invalid argument");
        return IMAGE_CODECS_INVALID_ARGUMENT;
    }
    out->width = 0;
    out->height = 0;
    out->pixels = NULL;
    image_codecs_set_message(message, capacity, "%s", "");
    if (size < 8 || png_sig_cmp(data, 0, 8) != 0) {
        image_codecs_set_message(message, capacity, "not a PNG file (bad signature)");
        return IMAGE_CODECS_CORRUPT;
    }

    png_error_context error = {message, capacity};
    png_memory_reader reader = {data, size, 0};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &error, png_fail,
                                             png_ignore_warning);
    if (png == NULL) {
        image_codecs_set_message(message, capacity, "out of memory");
        return IMAGE_CODECS_OUT_OF_MEMORY;
    }
    png_infop info = png_create_info_struct(png);
    if (info == NULL) {
        png_destroy_read_struct(&png, NULL, NULL);
        image_codecs_set_message(message, capacity, "out of memory");
        return IMAGE_CODECS_OUT_OF_MEMORY;
    }

    /* Written after setjmp and read after longjmp: must be volatile. */
    uint8_t *volatile pixels = NULL;
    uint8_t *volatile decoded = NULL;
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(pixels);
        free(decoded);
        free(rows);
        return IMAGE_CODECS_CORRUPT;
    }

    png_set_read_fn(png, &reader, png_read_memory);
    /* A CRC error is an error in every chunk, ancillary ones included. */
    png_set_crc_action(png, PNG_CRC_ERROR_QUIT, PNG_CRC_ERROR_QUIT);
    png_read_info(png, info);

    const png_uint_32 width = png_get_image_width(png, info);
    const png_uint_32 height = png_get_image_height(png, info);
    if ((int64_t)width * (int64_t)height > max_pixels) {
        out->width = (int32_t)width;
        out->height = (int32_t)height;
        image_codecs_set_message(message, capacity,
                                 "%lu x %lu = %lld pixels exceeds the limit of %lld pixels",
                                 (unsigned long)width, (unsigned long)height,
                                 (long long)width * (long long)height, (long long)max_pixels);
        png_destroy_read_struct(&png, &info, NULL);
        return IMAGE_CODECS_TOO_MANY_PIXELS;
    }

    const int bit_depth = png_get_bit_depth(png, info);
    const int color_type = png_get_color_type(png, info);
    if (color_type == PNG_COLOR_TYPE_PALETTE) {
        png_set_palette_to_rgb(png);
    }
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) {
        png_set_expand_gray_1_2_4_to_8(png);
    }
    const int sixteen_bit_gray = bit_depth == 16 && color_type == PNG_COLOR_TYPE_GRAY;
    if (bit_depth == 16 && !sixteen_bit_gray) {
        png_set_strip_16(png); /* keeps the high byte, as PIL's ";16B" unpackers */
    }
    const int passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);

    const int channels = png_get_channels(png, info);
    const size_t row_bytes = png_get_rowbytes(png, info);
    pixels = malloc((size_t)width * height * 3);
    /* Adam7 needs the whole image in memory while its passes fill it in. */
    decoded = malloc(passes > 1 ? row_bytes * height : row_bytes);
    if (passes > 1) {
        rows = malloc(sizeof(png_bytep) * height);
    }
    if (pixels == NULL || decoded == NULL || (passes > 1 && rows == NULL)) {
        image_codecs_set_message(message, capacity, "out of memory for %lu x %lu pixels",
                                 (unsigned long)width, (unsigned long)height);
        png_destroy_read_struct(&png, &info, NULL);
        free(pixels);
        free(decoded);
        free(rows);
        return IMAGE_CODECS_OUT_OF_MEMORY;
    }

    if (passes > 1) {
        for (png_uint_32 y = 0; y < height; y++) {
            rows[y] = decoded + row_bytes * y;
        }
        png_read_image(png, rows);
        for (png_uint_32 y = 0; y < height; y++) {
            png_row_to_rgb(rows[y], pixels + (size_t)y * width * 3, width, channels,
                           sixteen_bit_gray);
        }
    } else {
        for (png_uint_32 y = 0; y < height; y++) {
            png_read_row(png, decoded, NULL);
            png_row_to_rgb(decoded, pixels + (size_t)y * width * 3, width, channels,
                           sixteen_bit_gray);
        }
    }
    /* Reads the chunks after the image data up to IEND, checking their CRCs: a file cut
       anywhere before IEND is an error. */
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    free(decoded);
    free(rows);

    out->width = (int32_t)width;
    out->height = (int32_t)height;
    out->pixels = pixels;
    return IMAGE_CODECS_OK;
}

int image_codecs_encode_png(const uint8_t *pixels, int32_t width, int32_t height,
                            uint8_t **png_data, size_t *png_size, char *message,
                            size_t capacity) {
    if (png_data == NULL || png_size == NULL) {
        image_codecs_set_message(message, capacity, "invalid argument");
        return IMAGE_CODECS_INVALID_ARGUMENT;
    }
    *png_data = NULL;
    *png_size = 0;
    image_codecs_set_message(message, capacity, "%s", "");
    if (pixels == NULL || width <= 0 || height <= 0) {
        image_codecs_set_message(message, capacity,
                                 "cannot encode a %d x %d image: PNG needs at least 1 x 1",
                                 (int)width, (int)height);
        return IMAGE_CODECS_INVALID_ARGUMENT;
    }

    png_error_context error = {message, capacity};
    /* On the heap: it changes between setjmp and longjmp and is read after. */
    png_memory_writer *writer = calloc(1, sizeof(png_memory_writer));
    png_structp png = writer == NULL ? NULL
                                     : png_create_write_struct(PNG_LIBPNG_VER_STRING, &error,
                                                               png_fail, png_ignore_warning);
    png_infop info = png == NULL ? NULL : png_create_info_struct(png);
    if (info == NULL) {
        if (png != NULL) {
            png_destroy_write_struct(&png, NULL);
        }
        free(writer);
        image_codecs_set_message(message, capacity, "out of memory");
        return IMAGE_CODECS_OUT_OF_MEMORY;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(writer->data);
        free(writer);
        return IMAGE_CODECS_CORRUPT;
    }

    png_set_write_fn(png, writer, png_write_memory, png_flush_memory);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int32_t y = 0; y < height; y++) {
        png_write_row(png, pixels + (size_t)y * (size_t)width * 3);
    }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);

    *png_data = writer->data;
    *png_size = writer->size;
    free(writer);
    return IMAGE_CODECS_OK;
}
