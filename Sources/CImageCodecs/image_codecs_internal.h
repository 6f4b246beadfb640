/* Helpers shared by the JPEG and PNG halves of the image-codec shim (not public). */
#pragma once

#include <stddef.h>

/* Writes a printf-style message into message[0..<capacity], always NUL-terminated
   (does nothing when message is NULL or capacity is 0). */
void image_codecs_set_message(char *message, size_t capacity, const char *format, ...)
    __attribute__((format(printf, 3, 4)));
