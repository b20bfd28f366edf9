/* core/sanitizer: the one place the sanitizer's parts are put together (core/sanitizer.h). */
#include "core/sanitizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mech.h"
#include "core/noise.h"
#include "core/tokenizer.h"

int sanitizer_open(struct sanitizer *s, const struct sanitizer_params *p, char *err,
                   size_t errlen)
{
    memset(s, 0, sizeof *s);
    int32_t n = tok_n_vocab(p->tok);
    uint8_t *group = malloc((size_t)n), *stop = malloc((size_t)n);
    s->role = malloc((size_t)n);
    s->n_vocab = n;
    int rc = -1;
    if (!s->role || !group || !stop) {
        snprintf(err, errlen, "core: out of memory for the sanitizer");
        goto out;
    }
    mech_token_roles(p->tok, s->role, group, stop);
    struct cluster_params cp = {.k = p->k, .quiet = p->quiet, .cache_dir = p->cache_dir,
                                .fingerprint = p->fingerprint,
                                .rows = p->pub_rows ? p->pub_rows : p->rows,
                                .log = p->log, .log_ctx = p->log_ctx};
    if (cluster_build(&s->cl, n, p->dim, group, p->row, p->ctx, &cp, err, errlen) != 0) goto out;
    if (noise_open(&s->nz, p->seeded, p->seed, err, errlen) != 0) goto out;
    struct mech_config mc = {.n_vocab = n, .dim = p->dim, .row = p->row, .rows = p->rows,
                             .ctx = p->ctx, .clusters = s->cl, .role = s->role,
                             .stopword = stop, .noise = s->nz};
    if (mech_open(&s->mc, &mc, p->mech, p->eps, err, errlen) != 0) goto out;
    rc = 0;
out:
    free(group);
    free(stop);
    if (rc != 0) sanitizer_close(s);
    return rc;
}

void sanitizer_close(struct sanitizer *s)
{
    mech_close(s->mc);
    cluster_close(s->cl);
    noise_close(s->nz);
    free(s->role);
    memset(s, 0, sizeof *s);
}
