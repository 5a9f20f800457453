/* tensor: internal helpers over tensor views for backend.c and the backends (bounds, byte
 * ranges, aliasing). The public view functions are declared in backend.h. Any thread. */
#ifndef VELA_BACKEND_TENSOR_H
#define VELA_BACKEND_TENSOR_H

#include "backend/backend.h"

#include <stdbool.h>
#include <stddef.h>

/* 0 when every byte of t lies inside its buffer, else VELA_EINVAL with the sizes. */
int tensor_check_bounds(const struct tensor *t, struct err *e);
/* Byte range [begin, end) of t inside its buffer (t already bounds-checked). */
void tensor_byte_range(const struct tensor *t, size_t *begin, size_t *end);
/* Same buffer, offset, stride, dtype and rows x cols: an exact alias. */
bool tensor_same_view(const struct tensor *a, const struct tensor *b);
/* The byte ranges of a and b intersect (conservative for strided views). */
bool tensor_overlap(const struct tensor *a, const struct tensor *b);

#endif
