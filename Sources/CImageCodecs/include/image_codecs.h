/* detq's C shim over libjpeg and libpng: setjmp lives here, never in Swift. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes returned by every function below. */
enum {
    IMAGE_CODECS_OK = 0,
    /* The codec refused the data (corrupt, truncated, bad CRC, unsupported); the message
       buffer holds the codec's own words. */
    IMAGE_CODECS_CORRUPT = 1,
    /* The header's width * height exceeds max_pixels; width and height are filled in and
       nothing was allocated for the pixels. */
    IMAGE_CODECS_TOO_MANY_PIXELS = 2,
    IMAGE_CODECS_OUT_OF_MEMORY = 3,
    IMAGE_CODECS_INVALID_ARGUMENT = 4,
};

/* A decoded image: width * height * 3 bytes, RGB interleaved, row-major, no padding.
   `pixels` is allocated with malloc by the decoder (only when the status is OK) and must
   be released with image_codecs_free. */
typedef struct {
    int32_t width;
    int32_t height;
    uint8_t *pixels;
} image_codecs_rgb;

/* Decodes a JPEG held in memory (baseline, progressive, grayscale, CMYK, YCCK) to RGB8.
   Grayscale is replicated to the three channels; CMYK and YCCK are read as Adobe
   (inverted) CMYK and converted as PIL's `convert("RGB")` does, see the .c file.
   libjpeg's corrupt-data warnings and a premature end of data are errors.
   Refuses, before allocating any pixel memory, an image with width * height > max_pixels.
   On failure `message` (capacity bytes, always NUL-terminated) says why. */
int image_codecs_decode_jpeg(const uint8_t *data, size_t size, int64_t max_pixels,
                             image_codecs_rgb *out, char *message, size_t capacity);

/* Decodes a PNG held in memory (every colour type and bit depth, Adam7 interlaced) to
   RGB8, matching PIL's `Image.open(...).convert("RGB")`: alpha is dropped (not
   composited), palette entries are looked up (tRNS ignored), 1/2/4-bit gray is scaled to
   0...255, 16-bit samples keep their high byte, except 16-bit gray without alpha, which
   PIL opens as mode "I" and clamps to 0...255 (values >= 255 become 255).
   A CRC error in any chunk, a truncated file and a missing IEND are errors.
   Refuses, before allocating any pixel memory, an image with width * height > max_pixels. */
int image_codecs_decode_png(const uint8_t *data, size_t size, int64_t max_pixels,
                            image_codecs_rgb *out, char *message, size_t capacity);

/* Encodes width * height RGB8 pixels (interleaved, row-major) as an 8-bit RGB PNG in
   memory. On success *png (malloc'd, release with image_codecs_free) holds *png_size bytes. */
int image_codecs_encode_png(const uint8_t *pixels, int32_t width, int32_t height,
                            uint8_t **png, size_t *png_size, char *message, size_t capacity);

/* Releases a buffer returned by this shim. */
void image_codecs_free(void *buffer);

#ifdef __cplusplus
}
#endif
