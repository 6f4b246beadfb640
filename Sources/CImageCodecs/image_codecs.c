/* detq's C shim over libjpeg and libpng: message and buffer helpers shared by both codecs. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "image_codecs.h"
#include "image_codecs_internal.h"

void image_codecs_set_message(char *message, size_t capacity, const char *format, ...) {
    if (message == NULL || capacity == 0) {
        return;
    }
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(message, capacity, format, arguments);
    va_end(arguments);
}

void image_codecs_free(void *buffer) {
    free(buffer);
}
