/* Generator helper for make_vectors.py: encodes raw Adobe-polarity CMYK from stdin as a
   YCCK JPEG on stdout (PIL only writes plain CMYK JPEGs). Dev-time only, not in the build. */
#include <stdio.h>
#include <stdlib.h>

#include <jpeglib.h>

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: make_ycck WIDTH HEIGHT QUALITY < cmyk.raw > out.jpg\n");
        return 2;
    }
    int width = atoi(argv[1]), height = atoi(argv[2]), quality = atoi(argv[3]);
    if (width <= 0 || height <= 0) {
        fprintf(stderr, "make_ycck: bad size %d x %d\n", width, height);
        return 2;
    }
    size_t count = (size_t)width * (size_t)height * 4;
    unsigned char *cmyk = malloc(count);
    if (cmyk == NULL || fread(cmyk, 1, count, stdin) != count) {
        fprintf(stderr, "make_ycck: expected %zu bytes of CMYK on stdin\n", count);
        return 1;
    }
    struct jpeg_compress_struct cinfo;
    struct jpeg_error_mgr error;
    cinfo.err = jpeg_std_error(&error);
    jpeg_create_compress(&cinfo);
    jpeg_stdio_dest(&cinfo, stdout);
    cinfo.image_width = (JDIMENSION)width;
    cinfo.image_height = (JDIMENSION)height;
    cinfo.input_components = 4;
    cinfo.in_color_space = JCS_CMYK;
    jpeg_set_defaults(&cinfo);
    jpeg_set_colorspace(&cinfo, JCS_YCCK); /* also writes the Adobe marker, transform 2 */
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = cmyk + (size_t)cinfo.next_scanline * (size_t)width * 4;
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    free(cmyk);
    return 0;
}
