/* core/util: error messages and freeing (see util.h). */
#include "core/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

int util_seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* The sentinel is util_free_all's own address, so NULL pointers (arrays never allocated)
 * can stand anywhere in the list. */
void util_free_all(void *first, ...)
{
    va_list ap;
    va_start(ap, first);
    for (void *p = first; p != (void *)&util_free_all; p = va_arg(ap, void *)) free(p);
    va_end(ap);
}
