/* core/util: the two small chores every core module repeats: writing an error message into
 * the caller's buffer, and freeing an object's arrays. Internal to core/. */
#ifndef CMIF_CORE_UTIL_H
#define CMIF_CORE_UTIL_H

#include <stddef.h>

/* Formats into err (errlen bytes); nothing when err is NULL or errlen 0. Returns -1, so a
 * failing path is one line: `return util_seterr(err, errlen, ...);`. */
int util_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* free() of every pointer up to a terminating NULL-sentinel argument: a close function's
 * arrays in one line. Use the UTIL_FREE macro, which adds the sentinel. */
void util_free_all(void *first, ...);
#define UTIL_FREE(...) util_free_all(__VA_ARGS__, (void *)&util_free_all)

#endif
