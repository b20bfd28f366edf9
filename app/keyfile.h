/* app/keyfile: a per-user secret key in a file only its owner can read, created on first
 * use. The app's sealed files (the input history) are keyed from it; the key never leaves
 * this user's account, so the files are protected against other users and corruption. */
#ifndef CMIF_APP_KEYFILE_H
#define CMIF_APP_KEYFILE_H

#include <stddef.h>

/* Reads the len-byte key in path, or, when path does not exist, creates it (O_EXCL,
 * O_NOFOLLOW, mode 0600) with random bytes. A file that is a link, not a regular file of
 * this user, readable by others or of another size is refused. 0 read, 1 created, -1 with
 * err. key is wiped on failure. */
int keyfile_load(const char *path, unsigned char *key, size_t len, char *err, size_t errlen);

#endif
