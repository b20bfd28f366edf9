/* Tests of core/core (with core/embed): the public API over real and random models,
 * the embedding table served through the encrypted swap, the locked/not-locked report,
 * what crosses the boundary to the decoder and the golden stories260K text through a
 * 64 KiB core, and a large table sealed only at the first lookup that follows the user's
 * words. */
#include "tests/testutil.h"

#include <linux/capability.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "app/model.h"
#include "core/core.h"
#include "core/embed.h"
#include "core/enclave.h"
#include "core/gguf.h"
#include "core/qrow.h"
#include "core/tokenizer.h"
#include "gpu/cl_util.h"
#include "gpu/decoder.h"
#include "tests/tools/randmodel.h"

static char err[512];

/* Reference rows from an independent mapping of the same file. */
struct ref {
    struct gguf *g;
    const struct gguf_tensor *t;
    size_t rb;
};

static void ref_open(struct ref *r, const char *path)
{
    assert_int_equal(gguf_open(&r->g, path, err, sizeof err), 0);
    r->t = gguf_tensor(r->g, "token_embd.weight");
    assert_non_null(r->t);
    r->rb = qrow_bytes(r->t->type, (size_t)r->t->ne[0]);
    assert_true(r->rb > 0);
}

static void ref_row(const struct ref *r, int32_t id, float *out)
{
    assert_int_equal(qrow_dequant(r->t->type, (const uint8_t *)r->t->data + (size_t)id * r->rb,
                                  out, (size_t)r->t->ne[0]), 0);
}

/* A core over path without a sanitizer (CORE_MECH_NONE), its guarded region limited to
 * mem_limit bytes (0: the default). */
static struct core *open_plain(const char *path, size_t mem_limit)
{
    struct core_options o;
    core_defaults(&o);
    o.mem_limit = mem_limit;
    o.mechanism = CORE_MECH_NONE;
    o.unit = CORE_UNIT_TOKEN;   /* these tests follow tokens one to one */
    struct core *c;
    assert_int_equal(core_open(&c, path, &o, err, sizeof err), 0);
    return c;
}

static void test_open_status(void **state)
{
    (void)state;
    const char *mp = tu_shared("models/stories260K.gguf");
    struct core_options o;
    core_defaults(&o);
    assert_int_equal(o.mechanism, CORE_MECH_RNM);
    assert_true(o.eps == 1.0 && o.budget == 200.0 && o.cluster_size == 20);
    assert_true(o.unit == CORE_UNIT_WORD && o.scope == CORE_SCOPE_AUTO && !o.ledger_path);
    o.quiet = 1;
    struct core *c;
    assert_int_equal(core_open(&c, mp, &o, err, sizeof err), 0);
    assert_int_equal(core_dim(c), 64);
    assert_int_equal(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_CORE, &rl), 0);
    assert_int_equal(rl.rlim_cur, 0);
    struct core_status st;
    core_status(c, &st);
    print_message("  status: %s\n", st.summary);
    assert_int_equal(st.dumpable, 0);
    assert_true(st.region_bytes > 0);
    if (st.locked) {
        assert_int_equal(st.bytes_locked, st.region_bytes);
        assert_non_null(strstr(st.summary, "locked"));
        assert_null(strstr(st.summary, "NOT LOCKED"));
    } else {
        assert_non_null(strstr(st.summary, "NOT LOCKED"));
    }
    /* The whole 128 KiB table fits the default region: nothing paged out. */
    assert_int_equal(st.swap_pages_out, 0);
    assert_string_equal(core_mech_name(CORE_MECH_RNM), "rnm");
    assert_int_equal(core_mech_parse("custext"), CORE_MECH_CUSTEXT);
    assert_int_equal(core_mech_parse("none"), CORE_MECH_NONE);
    assert_int_equal(core_mech_parse("bogus"), -1);
    assert_int_equal(core_set_eps(c, -1, err, sizeof err), -1);
    assert_int_equal(core_set_eps(c, 2.5, err, sizeof err), 0);
    assert_true(core_eps(c) == 2.5);
    assert_int_equal(core_set_mechanism(c, 99, err, sizeof err), -1);
    assert_true(core_budget_total(c) == 200.0);
    core_close(c);
}

static void check_encode(struct core *c, const struct ref *r, const char *text)
{
    struct core_vocab *t;
    assert_int_equal(core_vocab_open(&t, core_gguf(c), err, sizeof err), 0);
    int32_t ids[512];
    size_t n;
    assert_int_equal(core_vocab_encode(t, text, strlen(text), 1, 0, ids, 512, &n, err, sizeof err), 0);
    core_vocab_close(t);
    struct core_batch b;
    memset(&b, 0, sizeof b);
    assert_int_equal(core_encode(c, text, strlen(text), CORE_SEG_USER, 1, &b, err, sizeof err), 0);
    assert_int_equal(b.n, n);
    int dim = core_dim(c);
    float *row = malloc((size_t)dim * sizeof *row);
    assert_non_null(row);
    char joined[2048] = "";
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(b.ids[i], ids[i]);        /* no sanitizer in this mechanism yet */
        ref_row(r, ids[i], row);
        assert_memory_equal(b.vecs + i * (size_t)dim, row, (size_t)dim * sizeof *row);
        if (i > 0) strncat(joined, b.rep[i].orig, sizeof joined - strlen(joined) - 1);
    }
    /* The report's pieces spell the text (SentencePiece adds the leading space). */
    assert_non_null(strstr(joined, text));
    free(row);
    core_batch_free(&b);
}

static void test_encode_matches_table(void **state)
{
    (void)state;
    const char *mp = tu_shared("models/stories260K.gguf");
    struct ref r;
    ref_open(&r, mp);
    struct core *c = open_plain(mp, 0);
    check_encode(c, &r, "Once upon a time, Lily saw a big red ball.");
    /* Template text: special tokens parsed, never sanitized, marked control at ε 0. */
    struct core_batch b;
    memset(&b, 0, sizeof b);
    assert_int_equal(core_encode(c, "<s>", 3, CORE_SEG_TEMPLATE, 0, &b, err, sizeof err), 0);
    assert_int_equal(b.n, 1);
    assert_int_equal(b.ids[0], core_bos(c));
    assert_int_equal(b.rep[0].kind, CORE_TOK_CONTROL);
    assert_true(b.rep[0].eps == 0);
    /* As user content the same bytes are plain text, not BOS. */
    size_t before = b.n;
    assert_int_equal(core_encode(c, "<s>", 3, CORE_SEG_USER, 0, &b, err, sizeof err), 0);
    assert_true(b.n > before + 1);
    for (size_t i = before; i < b.n; i++) assert_true(b.ids[i] != core_bos(c));
    /* Escaping in the report. */
    assert_int_equal(core_encode(c, "a\nb", 3, CORE_SEG_USER, 0, &b, err, sizeof err), 0);
    int saw_nl = 0;
    for (size_t i = 0; i < b.n; i++) {
        if (strstr(b.rep[i].orig, "\\n")) saw_nl = 1;
        assert_null(strchr(b.rep[i].orig, '\n'));
    }
    assert_true(saw_nl);
    core_batch_free(&b);
    assert_int_equal(core_encode(c, "x", 1, 7, 0, &b, err, sizeof err), -1);
    float v[64];
    memset(v, 0x7f, sizeof v);
    assert_int_equal(core_embed_token(c, 100000, v, err, sizeof err), -1);
    assert_non_null(strstr(err, "out of range"));
    assert_true(v[0] == 0 && v[63] == 0);
    core_close(c);
    gguf_close(r.g);
}

/* Every region freed during an encode (the text and its ids) is all zero when freed. */
static size_t freed_regions, freed_nonzero, freed_max;
static void count_hook(void *ctx, const uint8_t *data, size_t len)
{
    (void)ctx;
    freed_regions++;
    if (len > freed_max) freed_max = len;
    for (size_t i = 0; i < len; i++)
        if (data[i]) { freed_nonzero++; break; }
}

static void test_text_wiped(void **state)
{
    (void)state;
    const char *mp = tu_shared("models/stories260K.gguf");
    struct core *c = open_plain(mp, 0);     /* a long text: no budget involved */
    char text[6000];
    for (size_t i = 0; i < sizeof text - 1; i++) text[i] = "secret words "[i % 13];
    text[sizeof text - 1] = 0;
    struct core_batch b;
    memset(&b, 0, sizeof b);
    freed_regions = freed_nonzero = freed_max = 0;
    enclave_set_free_hook(count_hook, NULL);
    int rc = core_encode(c, text, strlen(text), CORE_SEG_USER, 0, &b, err, sizeof err);
    enclave_set_free_hook(NULL, NULL);
    assert_int_equal(rc, 0);
    assert_int_equal(freed_regions, 1);
    assert_true(freed_max >= strlen(text));
    assert_int_equal(freed_nonzero, 0);
    core_wipe(text, sizeof text);
    assert_int_equal(text[0], 0);
    core_batch_free(&b);
    core_close(c);
}

static void test_small_region_uses_swap(void **state)
{
    (void)state;
    const char *mp = tu_shared("models/stories260K.gguf");
    struct ref r;
    ref_open(&r, mp);
    struct core *c = open_plain(mp, 64 * 1024);
    struct core_status st;
    core_status(c, &st);
    print_message("  status: %s\n", st.summary);
    assert_true(st.swap_pages_out > 0);
    assert_true(st.region_bytes <= 64 * 1024 + 8192);
    assert_true(st.swap_file_bytes > 0);
    /* Every row, in an order that keeps missing the cache. */
    int dim = core_dim(c);
    float *v = malloc((size_t)dim * sizeof *v), *w = malloc((size_t)dim * sizeof *w);
    assert_non_null(v);
    assert_non_null(w);
    for (int pass = 0; pass < 2; pass++)
        for (int32_t k = 0; k < 512; k++) {
            int32_t id = pass ? (k * 97) % 512 : k;
            assert_int_equal(core_embed_token(c, id, v, err, sizeof err), 0);
            ref_row(&r, id, w);
            assert_memory_equal(v, w, (size_t)dim * sizeof *v);
        }
    check_encode(c, &r, "Lily and Tom went to the park to play with a ball.");
    core_status(c, &st);
    assert_true(st.swap_pages_in > 0);
    assert_int_equal(st.tamper_checks, st.swap_pages_in);
    free(v);
    free(w);
    core_close(c);
    gguf_close(r.g);
}

/* Random models: rows dequantized from quantized pages; token_embd made inaccessible in
 * the core's mapping unless the output projection is tied to it. */
static void child_read_mapping(void *arg)
{
    const struct core *c = arg;
    signal(SIGSEGV, SIG_DFL);
    signal(SIGBUS, SIG_DFL);
    const struct gguf_tensor *t = gguf_tensor(core_gguf(c), "token_embd.weight");
    volatile const uint8_t *p = t->data;
    uint8_t x = p[t->nbytes / 2];
    (void)x;
    _exit(0);
}

static void random_model_run(int embd_type, int tied, int dim)
{
    char path[4200];
    char *dir = tu_tmpfile("m.gguf", path, sizeof path);
    struct randmodel_spec s;
    randmodel_defaults(&s);
    s.vocab = 3000;
    s.dim = dim;
    s.ffn_dim = 256;
    s.n_heads = 4;
    s.n_kv_heads = 4;
    s.type = GGUF_T_Q8_0;
    s.embd_type = embd_type;
    s.tied = tied;
    s.seed = 7;
    assert_int_equal(randmodel_write(path, &s, err, sizeof err), 0);
    struct ref r;
    ref_open(&r, path);
    struct core *c = open_plain(path, 96 * 1024);   /* table is >= 400 KiB: most of it in the swap */
    float v[256], w[256];
    assert_int_equal(core_dim(c), dim);
    for (int32_t id = 0; id < 3000; id += 37) {
        assert_int_equal(core_embed_token(c, id, v, err, sizeof err), 0);
        ref_row(&r, id, w);
        assert_memory_equal(v, w, (size_t)dim * sizeof *v);
    }
    struct core_status st;
    core_status(c, &st);
    assert_true(st.swap_pages_out > 0 && st.swap_pages_in > 0);
    int ws = tu_fork_wait(child_read_mapping, (void *)c);
    if (tied) {
        /* Tied: the decoder needs token_embd as its output projection, so it stays. */
        assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
    } else {
        assert_true(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGSEGV);
    }
    /* The decoder builds from the core's mapping and runs (token_embd only as output). */
    struct model *m;
    assert_int_equal(model_open(&m, core_gguf(c), err, sizeof err), 0);
    assert_int_equal(m->tied, tied);
    struct dec_options dop = {.threads = 1, .device = DEC_DEV_CPU, .cl_index = -1};
    struct decoder *d;
    assert_int_equal(dec_open(&d, &m->w, &dop, err, sizeof err), 0);
    float *lg = malloc((size_t)m->w.cfg.vocab * sizeof *lg);
    assert_non_null(lg);
    assert_int_equal(core_embed_token(c, 5, v, err, sizeof err), 0);
    assert_int_equal(dec_forward(d, v, 1, 0, lg, 0, err, sizeof err), 0);
    free(lg);
    dec_close(d);
    model_close(m);
    core_close(c);
    gguf_close(r.g);
    tu_rmtree(dir);
}

static void test_random_models(void **state)
{
    (void)state;
    random_model_run(GGUF_T_Q8_0, 0, 128);
    random_model_run(GGUF_T_F16, 1, 128);
    random_model_run(GGUF_T_Q4_K, 0, 256);
}

/* Drop CAP_IPC_LOCK (root ignores RLIMIT_MEMLOCK otherwise). 0 on success. */
static int drop_ipc_lock(void)
{
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d) != 0) return -1;
    d[CAP_IPC_LOCK / 32].effective &= ~(1u << (CAP_IPC_LOCK % 32));
    d[CAP_IPC_LOCK / 32].permitted &= ~(1u << (CAP_IPC_LOCK % 32));
    return (int)syscall(SYS_capset, &h, d);
}

static void child_not_locked(void *arg)
{
    const char *mp = arg;
    struct rlimit rl = {65536, 65536};
    if (setrlimit(RLIMIT_MEMLOCK, &rl) != 0 || drop_ipc_lock() != 0) _exit(10);
    struct core_options o;
    core_defaults(&o);
    o.require_locked = 1;
    struct core *c;
    char e[512];
    if (core_open(&c, mp, &o, e, sizeof e) == 0) _exit(2);        /* must refuse */
    if (!strstr(e, "require-locked") || !strstr(e, "64 KiB")) _exit(3);
    o.require_locked = 0;
    if (core_open(&c, mp, &o, e, sizeof e) != 0) _exit(4);        /* weaker, but runs */
    struct core_status st;
    core_status(c, &st);
    if (st.locked || !strstr(st.summary, "NOT LOCKED")) _exit(5);
    float v[64];
    if (core_embed_token(c, 5, v, e, sizeof e) != 0) _exit(6);
    core_close(c);
    /* A 64 KiB region under the 64 KiB limit still runs, with the table in the swap. */
    o.mem_limit = 48 * 1024;
    if (core_open(&c, mp, &o, e, sizeof e) != 0) _exit(7);
    core_status(c, &st);
    if (st.swap_pages_out == 0) _exit(8);
    if (core_embed_token(c, 500, v, e, sizeof e) != 0) _exit(9);
    core_close(c);
    _exit(0);
}

static void test_not_locked_reported(void **state)
{
    (void)state;
    const char *mp = tu_shared("models/stories260K.gguf");
    int ws = tu_fork_wait(child_not_locked, (void *)mp);
    assert_true(WIFEXITED(ws));
    if (WEXITSTATUS(ws) == 10) {
        print_message("SKIP: cannot lower RLIMIT_MEMLOCK / drop CAP_IPC_LOCK here\n");
        skip();
    }
    assert_int_equal(WEXITSTATUS(ws), 0);
}

/* ---- only vectors cross ------------------------------------------------------------ */
struct watch {
    const struct ref *r;
    const int32_t *raw;           /* raw user ids (the test knows them; the decoder must not) */
    size_t n_raw;
    const struct core_batch *b;   /* what the core reported */
    int dim;
    size_t seen, bad_row, raw_ids_seen, replaced_row_seen;
};

static int contains_ids(const void *buf, size_t bytes, const int32_t *ids, size_t n)
{
    /* The raw ids as an int32 sequence (two or more) anywhere in the bytes. */
    return n >= 2 && memmem(buf, bytes, ids, n * sizeof *ids) != NULL;
}

static void input_hook(void *ctx, const float *x, int n, int dim)
{
    struct watch *w = ctx;
    float *row = malloc((size_t)dim * sizeof *row);
    if (!row) return;
    for (int i = 0; i < n; i++, w->seen++) {
        const float *v = x + (size_t)i * (size_t)dim;
        size_t k = w->seen;
        if (k < w->b->n) {
            ref_row(w->r, w->b->ids[k], row);
            if (memcmp(row, v, (size_t)dim * sizeof *row)) w->bad_row++;
            if (w->b->rep[k].kind == CORE_TOK_REPLACED) {
                ref_row(w->r, w->raw[k], row);
                if (!memcmp(row, v, (size_t)dim * sizeof *row)) w->replaced_row_seen++;
            }
        }
    }
    if (contains_ids(x, (size_t)n * (size_t)dim * sizeof *x, w->raw, w->n_raw)) w->raw_ids_seen++;
    free(row);
}

static struct watch *cl_watch;
static size_t cl_inputs;
static void cl_hook(void *ctx, int kind, const void *src, size_t bytes)
{
    (void)ctx;
    if (kind == CLU_W_INPUT) cl_inputs++;
    if (contains_ids(src, bytes, cl_watch->raw, cl_watch->n_raw)) cl_watch->raw_ids_seen++;
}

static void boundary_run(int device)
{
    const char *mp = tu_shared("models/stories260K.gguf");
    struct ref r;
    ref_open(&r, mp);
    struct core_options o;
    core_defaults(&o);          /* the default mechanism: meaningful once it sanitizes */
    o.unit = CORE_UNIT_TOKEN;   /* raw and sent positions correspond one to one */
    o.seeded = 1;
    o.seed = 1234;
    o.quiet = 1;
    struct core *c;
    assert_int_equal(core_open(&c, mp, &o, err, sizeof err), 0);
    struct model *m;
    assert_int_equal(model_open(&m, core_gguf(c), err, sizeof err), 0);
    struct dec_options dop = {.threads = 1, .device = device, .cl_index = -1};
    struct decoder *d;
    if (dec_open(&d, &m->w, &dop, err, sizeof err) != 0 ||
        (device == DEC_DEV_CL && strncmp(dec_device_name(d), "opencl", 6) != 0)) {
        if (device == DEC_DEV_CL) {
            model_close(m);
            core_close(c);
            gguf_close(r.g);
            print_message("SKIP: no usable OpenCL device (%s)\n", err);
            skip();
        }
        fail_msg("dec_open: %s", err);
    }
    const char *text = "my secret password is blue dragon and my pin is seven";
    int32_t raw[128];
    size_t nraw;
    struct core_vocab *voc;
    assert_int_equal(core_vocab_open(&voc, core_gguf(c), err, sizeof err), 0);
    assert_int_equal(core_vocab_encode(voc, text, strlen(text), 1, 0, raw, 128, &nraw, err,
                                       sizeof err), 0);
    core_vocab_close(voc);
    struct core_batch b;
    memset(&b, 0, sizeof b);
    assert_int_equal(core_encode(c, text, strlen(text), CORE_SEG_USER, 1, &b, err, sizeof err), 0);
    assert_int_equal(b.n, nraw);
    struct watch w = {.r = &r, .raw = raw, .n_raw = nraw, .b = &b, .dim = core_dim(c)};
    dec_set_input_hook(d, input_hook, &w);
    cl_watch = &w;
    cl_inputs = 0;
    if (device == DEC_DEV_CL) clu_set_write_hook(cl_hook, NULL);
    float *lg = malloc((size_t)m->w.cfg.vocab * sizeof *lg);
    assert_non_null(lg);
    assert_int_equal(dec_forward(d, b.vecs, (int)b.n, 0, lg, 0, err, sizeof err), 0);
    /* A generated token goes through the core too. */
    float v[64];
    assert_int_equal(core_embed_token(c, 42, v, err, sizeof err), 0);
    assert_int_equal(dec_forward(d, v, 1, (int)b.n, lg, 0, err, sizeof err), 0);
    clu_set_write_hook(NULL, NULL);
    dec_set_input_hook(d, NULL, NULL);
    size_t replaced = 0;
    for (size_t i = 0; i < b.n; i++) replaced += b.rep[i].kind == CORE_TOK_REPLACED;
    print_message("  %s: %zu vectors crossed, %zu of %zu user tokens replaced, %zu CL input writes\n",
                  dec_device_name(d), w.seen, replaced, b.n, cl_inputs);
    assert_int_equal(w.seen, b.n + 1);
    assert_int_equal(w.bad_row, 0);            /* exactly the rows of the ids sent */
    assert_int_equal(w.replaced_row_seen, 0);  /* no row of a replaced raw token */
    assert_int_equal(w.raw_ids_seen, 0);       /* no raw id sequence in any buffer */
    if (device == DEC_DEV_CL) assert_true(cl_inputs > 0);
    free(lg);
    core_batch_free(&b);
    dec_close(d);
    model_close(m);
    core_close(c);
    gguf_close(r.g);
}

static void test_boundary_cpu(void **state)
{
    (void)state;
    boundary_run(DEC_DEV_CPU);
}

static void test_boundary_opencl(void **state)
{
    (void)state;
    if (getenv("CMIF_ASAN")) {
        print_message("SKIP: OpenCL (pocl) under ASan\n");
        skip();
    }
    boundary_run(DEC_DEV_CL);
}

/* ---- core_prepare: the first message's build done ahead, nothing else changed ---------- */

/* Seeded (reproducible) options that sanitize every word, with small clusters. */
static void every_word_options(struct core_options *o, uint64_t seed)
{
    core_defaults(o);
    o->seeded = 1;
    o->seed = seed;
    o->quiet = 1;
    o->scope = CORE_SCOPE_ALL;
    o->cluster_size = 4;
}

/* Encodes text as a message (deferred, committed) on a fresh seeded core, prepared first
 * when asked: what is sent, the report and the charge. */
static void prepared_run(const char *mp, const char *cache, int unit, int prepare,
                         struct core_batch *b, double *spent)
{
    struct core_options o;
    every_word_options(&o, 11);
    o.unit = unit;
    o.cache_dir = cache;
    struct core *c;
    assert_int_equal(core_open(&c, mp, &o, err, sizeof err), 0);
    if (prepare) {
        assert_int_equal(core_prepare(c, err, sizeof err), 0);
        assert_int_equal(core_prepare(c, err, sizeof err), 0);   /* once is enough */
        assert_true(core_budget_spent(c) == 0.0);
    }
    const char *text = "my secret password is blue dragon";
    memset(b, 0, sizeof *b);
    b->defer_charge = 1;
    assert_int_equal(core_encode(c, "", 0, CORE_SEG_TEMPLATE, 1, b, err, sizeof err), 0);
    assert_int_equal(core_encode(c, text, strlen(text), CORE_SEG_USER, 0, b, err, sizeof err), 0);
    assert_int_equal(core_commit(c, b, err, sizeof err), 0);
    *spent = core_budget_spent(c);
    core_close(c);
}

static void test_prepare_same_output(void **state)
{
    (void)state;
    const char *mp = tu_shared("models/stories260K.gguf");
    int units[] = {CORE_UNIT_WORD, CORE_UNIT_TOKEN};
    for (int u = 0; u < 2; u++) {
        /* The first of each pair clusters and fills an empty cache, the second reads it:
         * both ways, prepared first and prepared second. */
        for (int order = 0; order < 2; order++) {
            char *cache = tu_tmpdir();
            struct core_batch a, p;
            double sa, sp;
            prepared_run(mp, cache, units[u], order, order ? &p : &a, order ? &sp : &sa);
            prepared_run(mp, cache, units[u], !order, order ? &a : &p, order ? &sa : &sp);
            assert_int_equal(a.n, p.n);
            assert_true(a.n > 1);
            assert_memory_equal(a.ids, p.ids, a.n * sizeof *a.ids);
            assert_memory_equal(a.vecs, p.vecs, a.n * (size_t)64 * sizeof *a.vecs);
            assert_int_equal(a.nrep, p.nrep);
            for (size_t i = 0; i < a.nrep; i++) {
                assert_string_equal(a.rep[i].orig, p.rep[i].orig);
                assert_string_equal(a.rep[i].sent, p.rep[i].sent);
                assert_int_equal(a.rep[i].kind, p.rep[i].kind);
                assert_true(a.rep[i].eps == p.rep[i].eps);
            }
            assert_true(a.msg_eps == p.msg_eps && sa == sp && sa > 0);
            core_batch_free(&a);
            core_batch_free(&p);
            tu_rmtree(cache);
        }
    }
    /* Nothing to build without a sanitizer. */
    struct core_options o;
    core_defaults(&o);
    core_options_plain(&o);
    struct core *c;
    assert_int_equal(core_open(&c, mp, &o, err, sizeof err), 0);
    assert_int_equal(core_prepare(c, err, sizeof err), 0);
    core_close(c);
}

/* ---- a large table: sealed on first need, cluster cache named without reading it ----- */
static int clustering_lines;
static void count_clustering(void *ctx, const char *msg)
{
    (void)ctx;
    if (strstr(msg, "clustering")) clustering_lines++;
}

static struct core *open_lazy(const char *path, const char *cache)
{
    struct core_options o;
    core_defaults(&o);
    o.mem_limit = 1u << 20;          /* the 31 MiB table is nearly all in the swap once sealed */
    o.table_lazy_min = 1;            /* sealed on first need, like a 128k x 2048 table */
    o.cache_dir = cache;
    o.seeded = 1;
    o.seed = 3;
    o.log = count_clustering;
    struct core *c;
    assert_int_equal(core_open(&c, path, &o, err, sizeof err), 0);
    return c;
}

/* Encodes text as the user's; every vector sent must be its id's row. */
static void encode_checked(struct core *c, const struct ref *r, const char *text)
{
    struct core_batch b;
    memset(&b, 0, sizeof b);
    assert_int_equal(core_encode(c, text, strlen(text), CORE_SEG_USER, 0, &b, err, sizeof err), 0);
    assert_true(b.n > 0);
    int dim = core_dim(c);
    float *w = malloc((size_t)dim * sizeof *w);
    assert_non_null(w);
    for (size_t i = 0; i < b.n; i++) {
        ref_row(r, b.ids[i], w);
        assert_memory_equal(b.vecs + i * (size_t)dim, w, (size_t)dim * sizeof *w);
    }
    free(w);
    core_batch_free(&b);
}

static void test_lazy_table(void **state)
{
    (void)state;
    char path[4200], cache[4300];
    char *dir = tu_tmpfile("glove.gguf", path, sizeof path);
    snprintf(cache, sizeof cache, "%s/cache", dir);
    size_t len;
    char *bytes = tu_read_all(tu_shared("models/glove-llama3.gguf"), &len);
    assert_non_null(bytes);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    free(bytes);
    struct ref r;
    ref_open(&r, path);
    const char *in_lexicon = "Alice met Bob in Paris", *outside = "Alice owes Grzegorz Brzęczyszczykiewicz";

    /* First run: the word clustering reads its fixed public set from the model file; the
     * words are all in the lexicon, so no secret lookup and nothing sealed or read through
     * the swap. */
    clustering_lines = 0;
    struct core *c = open_lazy(path, cache);
    struct core_status st;
    core_status(c, &st);
    assert_false(st.table_sealed);
    assert_true(st.table_in_swap);
    encode_checked(c, &r, in_lexicon);
    core_status(c, &st);
    assert_true(clustering_lines > 0);
    assert_false(st.table_sealed);
    assert_true(st.swap_pages_out == 0 && st.swap_pages_in == 0 && st.swap_file_bytes == 0);
    core_close(c);

    /* Warm start: partition, similarities and centroids from the cache; still no table page
     * read before (or for) a sanitized word of the lexicon. */
    clustering_lines = 0;
    c = open_lazy(path, cache);
    encode_checked(c, &r, in_lexicon);
    core_status(c, &st);
    assert_int_equal(clustering_lines, 0);
    assert_false(st.table_sealed);
    assert_true(st.swap_pages_out == 0 && st.swap_pages_in == 0);
    /* A name of several pieces (or letters outside ASCII) is outside the lexicon: its
     * pieces' rows are a secret lookup, so the whole table is sealed first, then they come
     * from the swap. */
    encode_checked(c, &r, outside);
    core_status(c, &st);
    assert_true(st.table_sealed);
    const struct gguf_tensor *t = r.t;
    assert_true(st.swap_file_bytes >= t->nbytes);
    assert_true(st.swap_pages_out > 0 && st.swap_pages_in > 0);
    assert_int_equal(st.tamper_checks, st.swap_pages_in);
    /* Sealed, every lookup goes through the swap, public ones too. */
    uint64_t in_before = st.swap_pages_in;
    encode_checked(c, &r, in_lexicon);
    float *v = malloc((size_t)core_dim(c) * sizeof *v), *w = malloc((size_t)core_dim(c) * sizeof *w);
    assert_non_null(v);
    assert_non_null(w);
    for (int32_t id = 0; id < core_n_vocab(c); id += 4099) {
        assert_int_equal(core_embed_token(c, id, v, err, sizeof err), 0);
        ref_row(&r, id, w);
        assert_memory_equal(v, w, (size_t)core_dim(c) * sizeof *v);
    }
    core_status(c, &st);
    assert_true(st.swap_pages_in > in_before);
    free(v);
    free(w);
    core_close(c);

    /* A changed model file is another cache key: any write to it (here one byte of the
     * table, rewritten with its own value, which still moves its ctime) clusters again. */
    gguf_close(r.g);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    unsigned char byte;
    off_t at = (off_t)len - 1;
    assert_int_equal(pread(fd, &byte, 1, at), 1);
    usleep(20000);
    assert_int_equal(pwrite(fd, &byte, 1, at), 1);
    close(fd);
    ref_open(&r, path);
    clustering_lines = 0;
    c = open_lazy(path, cache);
    encode_checked(c, &r, in_lexicon);
    assert_true(clustering_lines > 0);
    core_close(c);
    gguf_close(r.g);
    tu_rmtree(dir);
}

/* ---- golden text through a 64 KiB core --------------------------------------------- */
static void test_golden_through_swap(void **state)
{
    (void)state;
    const char *mp = tu_shared("models/stories260K.gguf");
    char gpath[4096];
    snprintf(gpath, sizeof gpath, "%.4000s", mp);
    char *slash = strstr(gpath, "models/stories260K.gguf");
    assert_non_null(slash);
    strcpy(slash, "docs/golden-stories260K.txt");
    FILE *f = fopen(gpath, "rb");
    assert_non_null(f);
    char golden[8192];
    size_t glen = fread(golden, 1, sizeof golden, f);
    fclose(f);
    assert_true(glen > 0 && glen < sizeof golden);

    struct core *c = open_plain(mp, 64 * 1024);
    struct model *m;
    assert_int_equal(model_open(&m, core_gguf(c), err, sizeof err), 0);
    struct dec_options dop = {.threads = 1, .device = DEC_DEV_CPU, .cl_index = -1};
    struct decoder *d;
    assert_int_equal(dec_open(&d, &m->w, &dop, err, sizeof err), 0);
    struct core_batch b;
    memset(&b, 0, sizeof b);
    assert_int_equal(core_encode(c, "", 0, CORE_SEG_USER, 1, &b, err, sizeof err), 0);
    assert_int_equal(b.n, 1);
    int vocab = m->w.cfg.vocab;
    float *lg = malloc((size_t)vocab * sizeof *lg), x[64];
    assert_non_null(lg);
    assert_int_equal(dec_forward(d, b.vecs, 1, 0, lg, 0, err, sizeof err), 0);
    char out[8192];
    size_t on = 0;
    struct core_detok dt;      /* the first piece after BOS loses SentencePiece's space */
    core_detok_init(&dt, core_bos(c));
    for (int pos = 1; pos <= 200; pos++) {
        int32_t next = 0;
        for (int32_t i = 1; i < vocab; i++)
            if (lg[i] > lg[next]) next = i;
        char piece[64];
        size_t pl = core_piece(c, &dt, next, 0, piece, sizeof piece);
        assert_true(pl < sizeof piece);
        assert_true(on + pl < sizeof out - 2);
        memcpy(out + on, piece, pl);
        on += pl;
        if (pos == 200) break;
        assert_int_equal(core_embed_token(c, next, x, err, sizeof err), 0);
        assert_int_equal(dec_forward(d, x, 1, pos, lg, 0, err, sizeof err), 0);
    }
    out[on++] = '\n';
    if (on != glen || memcmp(out, golden, on) != 0)
        fail_msg("output through the core differs from the golden text:\n%.*s", (int)on, out);
    struct core_status st;
    core_status(c, &st);
    print_message("  status: %s\n", st.summary);
    assert_true(st.swap_pages_out > 0);
    assert_true(st.swap_pages_in > 0);
    free(lg);
    core_batch_free(&b);
    dec_close(d);
    model_close(m);
    core_close(c);
}

static void test_open_errors(void **state)
{
    (void)state;
    struct core *c = (void *)1;
    struct core_options o;
    core_defaults(&o);
    assert_int_equal(core_open(&c, "/nonexistent/model.gguf", &o, err, sizeof err), -1);
    assert_null(c);
    assert_non_null(strstr(err, "nonexistent"));
    o.eps = 0;
    assert_int_equal(core_open(&c, "/nonexistent/model.gguf", &o, err, sizeof err), -1);
    assert_non_null(strstr(err, "ε"));
    core_defaults(&o);
    o.mechanism = 42;
    assert_int_equal(core_open(&c, "/nonexistent/model.gguf", &o, err, sizeof err), -1);
    assert_non_null(strstr(err, "mechanism"));
}

/* The word unit: one report row per word, each sanitized word charged once and replaced by a
 * whole word; the sent ids spell the rows' sent words; every guarded region is wiped; the
 * preview draws no noise and charges nothing; a deferred batch is charged on commit only. */
static void test_word_unit(void **state)
{
    (void)state;
    const char *mp = tu_shared("models/stories260K.gguf");
    struct core_options o;
    every_word_options(&o, 7);
    struct core *c;
    assert_int_equal(core_open(&c, mp, &o, err, sizeof err), 0);
    const char *text = "my secret password is blue dragon";
    struct core_tok_report pv[16];
    size_t npv;
    double cost;
    assert_int_equal(core_preview(c, text, strlen(text), pv, 16, &npv, &cost, err, sizeof err), 0);
    assert_int_equal(npv, 6);
    for (size_t i = 0; i < npv; i++) assert_int_equal(pv[i].kind, CORE_TOK_PLANNED);
    assert_true(cost == 6.0);
    assert_true(core_budget_spent(c) == 0.0);
    struct core_batch b;
    memset(&b, 0, sizeof b);
    b.defer_charge = 1;
    freed_regions = freed_nonzero = freed_max = 0;
    enclave_set_free_hook(count_hook, NULL);
    int rc = core_encode(c, text, strlen(text), CORE_SEG_USER, 0, &b, err, sizeof err);
    enclave_set_free_hook(NULL, NULL);
    assert_int_equal(rc, 0);
    assert_true(freed_regions >= 2);
    assert_int_equal(freed_nonzero, 0);
    assert_int_equal(b.nrep, 6);
    char rows[512] = "", sent[512] = "";
    for (size_t i = 0; i < b.nrep; i++) {
        assert_true(b.rep[i].kind == CORE_TOK_KEPT || b.rep[i].kind == CORE_TOK_REPLACED);
        assert_true(b.rep[i].eps == 1.0);
        strncat(rows, b.rep[i].sent, sizeof rows - strlen(rows) - 1);
    }
    struct core_detok d;
    core_detok_init(&d, -1);
    for (size_t i = 0; i < b.n; i++) {
        char piece[64];
        size_t pl = core_piece(c, &d, b.ids[i], 0, piece, sizeof piece);
        assert_true(pl < sizeof piece);
        strncat(sent, piece, sizeof sent - strlen(sent) - 1);
    }
    /* SentencePiece puts a space before the first word. */
    assert_string_equal(sent[0] == ' ' && rows[0] != ' ' ? sent + 1 : sent, rows);
    assert_true(b.msg_eps == 6.0 && b.pending == 6.0);
    assert_true(core_budget_spent(c) == 0.0);
    assert_int_equal(core_commit(c, &b, err, sizeof err), 0);
    assert_true(core_budget_spent(c) == 6.0 && b.pending == 0.0);
    core_batch_free(&b);
    /* The noise state, the mechanism's and the word sanitizer's scratch now exist, all in the
     * kind of region the noise state has (memfd_secret where the kernel has it). */
    struct core_place pl[8];
    int np = core_places(c, pl, 8, err, sizeof err);
    assert_true(np >= 5 && np <= 8);
    const char *noise_kind = NULL;
    for (int i = 0; i < np; i++)
        if (strcmp(pl[i].what, "noise state") == 0) noise_kind = pl[i].where;
    assert_non_null(noise_kind);
    int scratch = 0;
    for (int i = 0; i < np; i++) {
        if (!strstr(pl[i].what, "scratch")) continue;
        scratch++;
        assert_true(pl[i].bytes > 0);
        assert_string_equal(pl[i].where, noise_kind);
    }
    assert_int_equal(scratch, 2);
    core_close(c);
}

TU_MAIN(
    cmocka_unit_test(test_open_errors),
    cmocka_unit_test(test_open_status),
    cmocka_unit_test(test_word_unit),
    cmocka_unit_test(test_encode_matches_table),
    cmocka_unit_test(test_text_wiped),
    cmocka_unit_test(test_small_region_uses_swap),
    cmocka_unit_test(test_random_models),
    cmocka_unit_test(test_not_locked_reported),
    cmocka_unit_test(test_boundary_cpu),
    cmocka_unit_test(test_boundary_opencl),
    cmocka_unit_test(test_prepare_same_output),
    cmocka_unit_test(test_golden_through_swap),
    cmocka_unit_test(test_lazy_table))
