/* core/embed: the model's token embedding table, held behind the trust boundary.
 *
 * token_embd is streamed from the GGUF mapping into swap pages (core/swap: a guarded,
 * mlock'd or memfd_secret cache, with the rest sealed in the encrypted swap file). Rows are
 * kept in their native (possibly quantized) format, a whole number of rows per page, and
 * dequantized (core/qrow) only into caller buffers. After loading, the page-aligned
 * interior of token_embd in the read-only GGUF mapping is made PROT_NONE so nothing can
 * look rows up there, unless the model ties its output projection to token_embd (then the
 * decoder still needs that matrix for the output projection, and it stays mapped).
 * Lookups are serialized by a mutex, so several threads may call embed_rows. */
#ifndef CMIF_CORE_EMBED_H
#define CMIF_CORE_EMBED_H

#include <stddef.h>
#include <stdint.h>

struct gguf;
struct swap;
struct embed;

struct embed_options {
    size_t cache_bytes;     /* guarded bytes for resident rows; the rest goes to the swap */
    size_t page_bytes;      /* swap page target; 0 = 64 KiB (smaller when cache_bytes is) */
    const char *swap_dir;   /* NULL: see core/swap */
    int enclave_flags;      /* ENCLAVE_* (tests) */
    int keep_mapping;       /* do not PROT_NONE token_embd in the GGUF mapping (tests) */
};

int embed_open(struct embed **out, const struct gguf *g, const struct embed_options *o,
               char *err, size_t errlen);
void embed_close(struct embed *e);

int embed_dim(const struct embed *e);
int32_t embed_n_vocab(const struct embed *e);

/* Dequantized rows of ids[0..n-1] into out (n x dim floats). One unseal for the batch.
 * On any failure (id out of range, swap error) all of out is zeroed and -1 returned. */
int embed_rows(struct embed *e, const int32_t *ids, size_t n, float *out, char *err,
               size_t errlen);
int embed_row(struct embed *e, int32_t id, float *out, char *err, size_t errlen);
/* The same rows as stored (embed_type's block format, embed_row_bytes bytes each) into out
 * (n x embed_row_bytes), for a copy of some rows kept in another sealed store. */
int embed_rows_raw(struct embed *e, const int32_t *ids, size_t n, uint8_t *out, char *err,
                   size_t errlen);
uint32_t embed_type(const struct embed *e);      /* GGUF_T_* of token_embd */
size_t embed_row_bytes(const struct embed *e);

/* BLAKE2b-256 over type, shape and the raw bytes of token_embd, computed while loading
 * (names the table, e.g. for a cluster cache). */
const uint8_t *embed_fingerprint(const struct embed *e);
struct swap *embed_swap(const struct embed *e);

#endif
