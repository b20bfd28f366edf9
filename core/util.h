/* core/util: the small chores several core modules repeat: writing an error message into
 * the caller's buffer, freeing an object's arrays, creating a sealed store's backing
 * file, and the on-disk caches' folder and per-user secret. Internal to core/. */
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

/* The folder for a backing file: dir, else $XDG_RUNTIME_DIR, $TMPDIR, /tmp (the first that
 * is a folder). */
void util_pick_dir(const char *dir, char *out, size_t n);
/* A new file in dir that has no name (O_TMPFILE, or created and unlinked at once), open for
 * reading and writing: its descriptor, or -1 with err set ("<what>: cannot create ..."). */
int util_tmpfile(const char *dir, const char *what, char *err, size_t errlen);

/* A large array (free() it) in huge pages where the kernel gives them on request (the row
 * matrix of a clustering, 195 MB for the 23,767 words of a 2048-wide table; the tokenizer's
 * hash tables): filling it otherwise takes one page fault per 4 KiB. */
void *util_big_alloc(size_t bytes);

/* The on-disk caches (core/cluster, core/clrows): dir and its parents made (0700); 0 or -1
 * with errno. */
int util_mkdirs(const char *dir);
/* The per-user cache secret (32 bytes, dir/secret.key, mode 0600, created on first use):
 * the caches' keys are derived from it. 0, or -1 with a note ("... cache not used"). */
int util_user_secret(const char *dir, unsigned char key[32], char *note, size_t notelen);
/* A cache file was just used or written: its modification time becomes now, and the files
 * of the same kind beside it (dir/<prefix>*.bin, other models' caches) that no run has used
 * for UTIL_CACHE_MAX_AGE_DAYS are removed, so the folder does not grow with every model
 * ever opened. Best effort: nothing is reported. */
#define UTIL_CACHE_MAX_AGE_DAYS 30
void util_cache_used(const char *path, const char *prefix);

#endif
