/* core/swap: an encrypted page store behind the guarded region.
 *
 * n_pages fixed-size pages, of which at most n_slots are resident in a guarded cache
 * region (LRU eviction). A page leaving the cache is sealed with
 * XChaCha20-Poly1305-IETF under a random per-process key that lives in a guarded region,
 * with a fresh random nonce per write and associated data (page index, version); the
 * version table lives in the same region, so a flipped bit, a page copied over another or
 * an older copy of a page put back is detected on the way in. Such a failure is fatal:
 * the store refuses every later operation, the error names the page, and no byte of the
 * failed page reaches a caller. A short write or a full disk leaves the page resident
 * (the operation fails closed); a page is never considered written unless all of it was.
 *
 * The backing file is created with O_TMPFILE (or created and unlinked at once) in dir,
 * else $XDG_RUNTIME_DIR, $TMPDIR, /tmp; only when a page first has to leave the cache.
 *
 * Access pattern: swap_begin … swap_get … swap_end. The cache stays sealed (PROT_NONE)
 * except for the one slot the last swap_get returned, which swap_end seals again; a
 * pointer from swap_get is valid until the next swap_get or swap_end. One thread at a
 * time (core/embed serializes its lookups). */
#ifndef CMIF_CORE_SWAP_H
#define CMIF_CORE_SWAP_H

#include <stddef.h>
#include <stdint.h>

struct swap;

/* Swap file layout per page: nonce (24) | ciphertext (page_size) | tag (16). */
#define SWAP_NONCE_BYTES 24
#define SWAP_TAG_BYTES 16

int swap_open(struct swap **out, size_t page_size, uint64_t n_pages, size_t n_slots,
              const char *dir, int enclave_flags, char *err, size_t errlen);
void swap_close(struct swap *s);

int swap_begin(struct swap *s, char *err, size_t errlen);
int swap_end(struct swap *s, char *err, size_t errlen);
/* Make page resident and return it. for_write marks it dirty; a page never written reads
 * as an error unless for_write (then it starts zeroed). -1 with err set on failure. */
int swap_get(struct swap *s, uint64_t page, int for_write, uint8_t **ptr, char *err,
             size_t errlen);
/* Copy len bytes at off of a page into dst (begin/end done inside). On any failure dst is
 * zeroed and -1 returned. */
int swap_read(struct swap *s, uint64_t page, size_t off, void *dst, size_t len, char *err,
              size_t errlen);
/* Seal pages first .. first+n-1 straight into the swap file from src (len bytes, at most
 * n pages; the rest of the last page reads as zeros), without passing through the cache:
 * one unseal of the key for the whole run and one write per run of pages, so a large
 * table goes in at the cost of its encryption. The pages must not be resident; each one
 * counts as written only once all of it reached the file. Outside swap_begin/swap_end. */
int swap_put(struct swap *s, uint64_t first, uint64_t n, const void *src, size_t len,
             char *err, size_t errlen);
/* Write every dirty page out and drop all pages from the cache (tests, status). */
int swap_flush(struct swap *s, char *err, size_t errlen);

struct swap_stats {
    uint64_t pages_out, pages_in, tamper_checks;   /* tamper_checks: pages verified on load */
    size_t page_size, n_slots, resident, file_bytes;
    uint64_t n_pages;
    int failed;                                    /* a fatal error happened */
};
void swap_stats(const struct swap *s, struct swap_stats *st);
size_t swap_region_bytes(const struct swap *s);    /* guarded bytes held (key, versions, cache) */
int swap_locked(const struct swap *s);             /* all its regions locked */
size_t swap_locked_bytes(const struct swap *s);
int swap_secretmem(const struct swap *s);          /* all its regions are memfd_secret */

/* Tests: the backing file descriptor (-1 before the first page-out) and the key bytes. */
int swap_fd(const struct swap *s);
const uint8_t *swap_test_key(const struct swap *s);

#endif
