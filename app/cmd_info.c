/* cmif info: what a GGUF file holds — architecture, shapes, tensor types and sizes,
 * tokenizer and chat template — read through the validating reader, so a corrupt file is
 * reported (exit 1) instead of crashing anything. Each part of the report is one static
 * section_* function; optional sections are switched on by flags in info_extra[]. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/cmd.h"
#include "app/engine.h"
#include "app/model.h"
#include "app/opts.h"
#include "core/core.h"
#include "core/gguf.h"
#include "gpu/cl_util.h"
#include "gpu/quant.h"

enum { X_TENSORS = 1, X_CORE, X_DEVICES };

static const struct opts_extra info_extra[] = {
    {"tensors", 0, 0, X_TENSORS, "--tensors              list every tensor (name, type, shape, bytes, offset)"},
    {"core", 0, 0, X_CORE, "--core                 the confidential core's protection for this model (region, lock, swap)"},
    {"devices", 0, 0, X_DEVICES, "--devices              compute devices: OpenCL platforms and devices, memory, usability (-m optional)"},
    {NULL, 0, 0, 0, NULL},
};

struct info_flags {
    int tensors;
    int core;                   /* --core section */
    int devices;                /* --devices section */
};

static int on_extra(void *ctx, int id, const char *val, char *err, size_t errlen)
{
    struct info_flags *f = ctx;
    if (id == X_TENSORS) f->tensors = 1;
    else if (id == X_CORE) f->core = 1;
    else if (id == X_DEVICES) f->devices = 1;
    (void)val, (void)err, (void)errlen;
    return 0;
}

static const char usage_line[] = "info [-m MODEL] [--tensors] [--core [--core-mem BYTES] [--require-locked]] [--devices]";

static void usage(FILE *f)
{
    fprintf(f, "usage: cmif %s\n\nDescribes a GGUF model: architecture, shapes, tensor types, "
               "tokenizer, chat template.\n"
               "Model: -m, else $CMIF_MODEL, else " OPTS_DEFAULT_MODEL ".\n\n", usage_line);
    opts_usage(f, OPT_MODEL | OPT_CORE_MEM, info_extra);
}

/* ---- printing helpers ---------------------------------------------------------------- */

/* Prints file text with control bytes escaped (file content never drives the terminal). */
static void put_safe(const char *p, uint64_t len, uint64_t max)
{
    uint64_t n = len < max ? len : max;
    for (uint64_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x20 || c == 0x7f) printf("\\x%02x", c);
        else putchar(c);
    }
    if (len > max) printf("...");
}

static void put_bytes(uint64_t b)
{
    if (b >= (1ull << 30)) printf("%.2f GiB", (double)b / (double)(1ull << 30));
    else if (b >= (1ull << 20)) printf("%.2f MiB", (double)b / (double)(1ull << 20));
    else if (b >= 1024) printf("%.2f KiB", (double)b / 1024.0);
    else printf("%llu B", (unsigned long long)b);
}

static void put_str_key(const struct gguf *g, const char *key)
{
    struct gguf_str s;
    int r = gguf_get_str(g, key, &s);
    if (r == 0) put_safe(s.ptr, s.len, 200);
    else printf(r == -1 ? "-" : "(not a string)");
}

static void put_u32_key(const struct gguf *g, const char *key)
{
    uint32_t v;
    int r = gguf_get_u32(g, key, &v);
    if (r == 0) printf("%u", v);
    else printf(r == -1 ? "-" : "(bad type)");
}

static void put_f32_key(const struct gguf *g, const char *key, const char *dflt)
{
    float v;
    int r = gguf_get_f32(g, key, &v);
    if (r == 0) printf("%g", (double)v);
    else if (r == -1) printf("%s", dflt);
    else printf("(bad type)");
}

/* "<arch>.<suffix>" into buf; an unusable key when the architecture is missing. */
static const char *ak(const struct gguf *g, const char *suffix, char *buf, size_t n)
{
    const char *k = gguf_arch_key(g, suffix, buf, n);
    return k ? k : "\x01-no-architecture";
}

/* ---- sections ------------------------------------------------------------------------ */

static void section_file(const struct gguf *g, const char *path)
{
    printf("file:          %s\n", path);
    printf("format:        GGUF v%u, %llu bytes, %llu metadata keys, alignment %llu\n",
           g->version, (unsigned long long)g->size, (unsigned long long)g->n_kv,
           (unsigned long long)g->alignment);
    printf("architecture:  ");
    put_str_key(g, "general.architecture");
    printf("\nname:          ");
    put_str_key(g, "general.name");
    printf("\n");
}

static void section_shapes(const struct gguf *g)
{
    char k[160];
    struct gguf_str arch;
    if (gguf_get_str(g, "general.architecture", &arch) != 0) {
        printf("\nshapes:        (no general.architecture; cannot read the model keys)\n");
        return;
    }
    uint32_t dim = 0, heads = 0, kv = 0, hd = 0;
    int has_dim = gguf_get_u32(g, ak(g, "embedding_length", k, sizeof k), &dim) == 0;
    int has_heads = gguf_get_u32(g, ak(g, "attention.head_count", k, sizeof k), &heads) == 0;
    int has_kv = gguf_get_u32(g, ak(g, "attention.head_count_kv", k, sizeof k), &kv) == 0;
    printf("\nshapes:\n  dim            ");
    put_u32_key(g, ak(g, "embedding_length", k, sizeof k));
    printf("\n  layers         ");
    put_u32_key(g, ak(g, "block_count", k, sizeof k));
    printf("\n  heads          ");
    put_u32_key(g, ak(g, "attention.head_count", k, sizeof k));
    printf("\n  kv heads       ");
    if (has_kv) printf("%u", kv);
    else if (has_heads) printf("%u (= heads)", heads);
    else printf("-");
    printf("\n  head dim       ");
    if (gguf_get_u32(g, ak(g, "attention.key_length", k, sizeof k), &hd) == 0) printf("%u", hd);
    else if (has_dim && has_heads && heads && dim % heads == 0) printf("%u", dim / heads);
    else printf("-");
    printf("\n  ffn            ");
    put_u32_key(g, ak(g, "feed_forward_length", k, sizeof k));
    printf("\n  vocab          ");
    const struct gguf_kv *tok = gguf_find(g, "tokenizer.ggml.tokens");
    if (gguf_find(g, ak(g, "vocab_size", k, sizeof k))) put_u32_key(g, k);
    else if (tok && tok->type == GGUF_VT_ARRAY) printf("%llu", (unsigned long long)tok->arr_n);
    else printf("-");
    printf("\n  context        ");
    put_u32_key(g, ak(g, "context_length", k, sizeof k));
    printf(" (trained)\n  rope base      ");
    put_f32_key(g, ak(g, "rope.freq_base", k, sizeof k), "10000 (default)");
    printf("\n  rope dims      ");
    put_u32_key(g, ak(g, "rope.dimension_count", k, sizeof k));
    printf("\n  rope scaling   ");
    struct gguf_str st;
    int has_type = gguf_get_str(g, ak(g, "rope.scaling.type", k, sizeof k), &st) == 0;
    if (has_type) {
        put_safe(st.ptr, st.len, 40);
        printf(" factor ");
        put_f32_key(g, ak(g, "rope.scaling.factor", k, sizeof k), "-");
        printf(", original context ");
        put_u32_key(g, ak(g, "rope.scaling.original_context_length", k, sizeof k));
    }
    if (gguf_tensor(g, "rope_freqs.weight")) printf("%srope_freqs factors (Llama 3.1 style)", has_type ? "; " : "");
    else if (!has_type) printf("none");
    printf("\n  rms norm eps   ");
    put_f32_key(g, ak(g, "attention.layer_norm_rms_epsilon", k, sizeof k), "-");
    printf("\n");
}

static void section_tensor_types(const struct gguf *g)
{
    uint64_t count[GGUF_T_COUNT] = {0}, bytes[GGUF_T_COUNT] = {0}, total = 0, elems = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const struct gguf_tensor *t = &g->tensors[i];
        count[t->type]++;   /* the reader only accepts known types, all < GGUF_T_COUNT */
        bytes[t->type] += t->nbytes;
        total += t->nbytes;
        elems += t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
    }
    printf("\ntensors:       %llu (%.1fM parameters)\n", (unsigned long long)g->n_tensors,
           (double)elems / 1e6);
    if (g->n_tensors) printf("  %-8s %6s  %s\n", "type", "count", "bytes");
    int unrunnable = 0;
    for (uint32_t t = 0; t < GGUF_T_COUNT; t++) {
        if (!count[t]) continue;
        printf("  %-8s %6llu  ", gguf_type_name(t), (unsigned long long)count[t]);
        put_bytes(bytes[t]);
        /* named here, before any load: the decoder has no kernels for this type */
        if (!qt_supported((int)t)) {
            printf("  (cmif cannot run this type)");
            unrunnable++;
        }
        printf("\n");
    }
    if (unrunnable) {
        printf("  types cmif cannot run:");
        for (uint32_t t = 0; t < GGUF_T_COUNT; t++)
            if (count[t] && !qt_supported((int)t)) printf(" %s", gguf_type_name(t));
        printf(" (supported: F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q2_K Q3_K Q4_K Q5_K Q6_K IQ4_NL IQ4_XS)\n");
    }
    printf("  total weight bytes: %llu (", (unsigned long long)total);
    put_bytes(total);
    printf(")\n");
}

/* id and its piece, e.g. "1 '<s>'". */
static void put_token(const struct gguf *g, const char *key)
{
    uint32_t id;
    int r = gguf_get_u32(g, key, &id);
    if (r) {
        printf(r == -1 ? "-" : "(bad type)");
        return;
    }
    printf("%u", id);
    struct gguf_str s;
    if (gguf_arr_str(gguf_find(g, "tokenizer.ggml.tokens"), id, &s) == 0) {
        printf(" '");
        put_safe(s.ptr, s.len, 40);
        printf("'");
    } else {
        printf(" (out of range)");
    }
}

static void section_tokenizer(const struct gguf *g)
{
    printf("\ntokenizer:\n  model          ");
    put_str_key(g, "tokenizer.ggml.model");
    printf("\n  pre            ");
    put_str_key(g, "tokenizer.ggml.pre");
    printf("\n  vocab          ");
    const struct gguf_kv *tok = gguf_find(g, "tokenizer.ggml.tokens");
    if (tok && tok->type == GGUF_VT_ARRAY && tok->arr_type == GGUF_VT_STRING)
        printf("%llu tokens", (unsigned long long)tok->arr_n);
    else printf("-");
    const struct gguf_kv *merges = gguf_find(g, "tokenizer.ggml.merges");
    if (merges && merges->type == GGUF_VT_ARRAY) printf(", %llu merges", (unsigned long long)merges->arr_n);
    printf("\n  bos            ");
    put_token(g, "tokenizer.ggml.bos_token_id");
    printf("\n  eos            ");
    put_token(g, "tokenizer.ggml.eos_token_id");
    printf("\n  eot            ");
    put_token(g, "tokenizer.ggml.eot_token_id");
    int b;
    int r = gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b);
    printf("\n  add_bos        %s", r == 0 ? (b ? "yes" : "no") : r == -1 ? "(not set)" : "(bad type)");
    r = gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &b);
    printf("\n  add_eos        %s\n", r == 0 ? (b ? "yes" : "no") : r == -1 ? "(not set)" : "(bad type)");
}

static void section_template(const struct gguf *g)
{
    enum { MAX_LINES = 8, MAX_COLS = 120 };
    struct gguf_str s;
    int r = gguf_get_str(g, "tokenizer.chat_template", &s);
    if (r) {
        printf("\nchat template: %s\n", r == -1 ? "none" : "(not a string)");
        return;
    }
    uint64_t lines = s.len && s.ptr[s.len - 1] != '\n';   /* a final newline ends, not starts, a line */
    for (uint64_t i = 0; i < s.len; i++) lines += s.ptr[i] == '\n';
    printf("\nchat template: %llu bytes, %llu lines\n", (unsigned long long)s.len,
           (unsigned long long)lines);
    uint64_t pos = 0;
    for (int l = 0; l < MAX_LINES && pos < s.len; l++) {
        const char *nl = memchr(s.ptr + pos, '\n', s.len - pos);
        uint64_t end = nl ? (uint64_t)(nl - s.ptr) : s.len;
        printf("  | ");
        put_safe(s.ptr + pos, end - pos, MAX_COLS);
        printf("\n");
        pos = end + 1;
        if (!nl) break;
    }
    if (lines > MAX_LINES) printf("  | ... (%llu more lines)\n", (unsigned long long)(lines - MAX_LINES));
}

/* Whether the decoder accepts the file: required keys and tensor shapes (app/model). */
static void section_load_check(const struct gguf *g)
{
    struct model *m;
    char err[512];
    printf("\nload check:    ");
    if (model_open(&m, g, err, sizeof err)) {
        printf("cannot run: ");
        put_safe(err, strlen(err), 400);
        printf("\n");
        return;
    }
    printf("ok (%s output, ", m->tied ? "tied" : "separate");
    put_bytes(m->weight_bytes);
    printf(" of weights read per token)\n");
    model_close(m);
}

static void section_tensor_list(const struct gguf *g)
{
    printf("\n%5s  %-32s %-7s %-24s %12s %12s\n", "#", "name", "type", "shape", "bytes", "offset");
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const struct gguf_tensor *t = &g->tensors[i];
        char shape[96];
        int o = snprintf(shape, sizeof shape, "[");
        for (uint32_t d = 0; d < t->n_dims && o < (int)sizeof shape; d++)
            o += snprintf(shape + o, sizeof shape - (size_t)o, "%s%llu", d ? ", " : "",
                          (unsigned long long)t->ne[d]);
        if (o < (int)sizeof shape) snprintf(shape + o, sizeof shape - (size_t)o, "]");
        printf("%5llu  ", (unsigned long long)i);
        put_safe(t->name.ptr, t->name.len, 64);
        int pad = 32 - (int)(t->name.len < 64 ? t->name.len : 67);
        printf("%*s %-7s %-24s %12llu %12llu\n", pad > 0 ? pad : 0, "", gguf_type_name(t->type),
               shape, (unsigned long long)t->nbytes, (unsigned long long)(g->data_offset + t->offset));
    }
}

/* ---- --core: what the confidential core does with this model ---------------------- */

static void core_bytes(size_t b)
{
    if (b == SIZE_MAX) printf("unlimited");
    else put_bytes(b);
}

/* Opens the model's core as cmif would and reports the protection actually in force.
 * Returns 0, or -1 after printing why (including a --require-locked refusal). */
static int section_core(const char *path, const struct core_options *given)
{
    struct core_options o = *given;   /* --core-mem, --require-locked */
    core_options_plain(&o);
    struct core *c;
    char err[512];
    printf("\ncore:\n");
    fflush(stdout);
    int rc = core_open(&c, path, &o, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "cmif info: %s%s\n", err, rc == CORE_ELOCKED ? ENGINE_LOCKED_ADVICE : "");
        return -1;
    }
    struct core_status st;
    core_status(c, &st);
    const struct gguf_tensor *t = gguf_tensor(core_gguf(c), "token_embd.weight");
    printf("  region         %s, ", st.secretmem ? "memfd_secret (not in the kernel's direct map)"
                                               : "anonymous mapping, guard pages, MADV_DONTDUMP");
    core_bytes(st.region_bytes);
    printf("\n  locked         %s: ", st.locked ? "yes" : "NOT LOCKED");
    core_bytes(st.bytes_locked);
    printf(" of RLIMIT_MEMLOCK ");
    core_bytes(st.memlock_limit);
    printf("\n  dumpable       %s\n", st.dumpable ? "YES (PR_SET_DUMPABLE failed)"
                                                 : "no (PR_SET_DUMPABLE 0, RLIMIT_CORE 0)");
    if (t) {
        printf("  table          token_embd %s, %llu x %llu, ", gguf_type_name(t->type),
               (unsigned long long)t->ne[1], (unsigned long long)t->ne[0]);
        put_bytes(t->nbytes);
        if (!st.table_sealed)
            printf(" (read from the model file for public lookups until the first lookup that"
                   " follows your words seals it into the %s)\n",
                   st.table_in_swap ? "encrypted swap" : "guarded region");
        else
            printf("%s\n", st.swap_pages_out ? " (partly in the encrypted swap)" : " (all resident)");
    }
    printf("  swap           %llu pages out, %llu in, %llu verified (XChaCha20-Poly1305); file ",
           (unsigned long long)st.swap_pages_out, (unsigned long long)st.swap_pages_in,
           (unsigned long long)st.tamper_checks);
    put_bytes(st.swap_file_bytes);
    printf("\n  status         %s\n", st.summary);
    struct core_place pl[8];
    int np = core_places(c, pl, 8, err, sizeof err);
    if (np < 0) {
        fprintf(stderr, "cmif info: %s\n", err);
        core_close(c);
        return -1;
    }
    printf("  where:\n");
    for (int i = 0; i < np && i < 8; i++) {
        printf("    %-20s %s", pl[i].what, pl[i].where);
        if (pl[i].bytes) {
            printf(", ");
            put_bytes(pl[i].bytes);
        }
        printf("\n");
    }
    core_close(c);
    return 0;
}

/* ---- --devices: where the decoder can run ------------------------------------------ */

/* Lists every OpenCL platform's devices with the index --device cl:N takes, their memory
 * and whether the backend can use them, then what --device auto would pick. */
static int section_devices(void)
{
    struct clu_dev *d = NULL;
    int n = 0;
    char err[512] = "";
    printf("\ndevices:\n");
    printf("  cpu            the CPU backend (SIMD + OpenBLAS), always usable\n");
    if (clu_devices(&d, &n, err, sizeof err) != 0) {
        printf("  opencl         none: %s\n", err);
        printf("  --device auto  cpu\n");
        return 0;
    }
    if (n == 0) printf("  opencl         platforms present, but no devices\n");
    int gpu = -1;
    for (int i = 0; i < n; i++) {
        if (i == 0 || d[i].platform != d[i - 1].platform)
            printf("  platform       %s\n", d[i].platform_name);
        printf("    cl:%-3d %-11s %s\n", d[i].index, clu_type_name(d[i].type), d[i].name);
        printf("           version   %s; driver %s\n", d[i].version, d[i].driver);
        printf("           memory    %.1f MiB global, %.1f MiB max buffer, %.0f KiB local; "
               "%u compute units; fp16 %s\n",
               d[i].global_mem / 1048576.0, d[i].max_alloc / 1048576.0, d[i].local_mem / 1024.0,
               d[i].compute_units, d[i].fp16 ? "yes" : "no");
        printf("           usable    %s%s\n", d[i].usable ? "yes" : "no: ", d[i].usable ? "" : d[i].why);
        if (gpu < 0 && d[i].usable && (d[i].type & (CL_DEVICE_TYPE_GPU | CL_DEVICE_TYPE_ACCELERATOR)))
            gpu = i;
    }
    if (gpu >= 0) printf("  --device auto  cl:%d (%s)\n", gpu, d[gpu].name);
    else printf("  --device auto  cpu (no usable OpenCL GPU; --device cl uses the first usable device)\n");
    clu_devices_free(d);
    return 0;
}

/* ---- entry --------------------------------------------------------------------------- */

static int cmd_info_exec(int argc, char **argv)
{
    struct opts o;
    struct info_flags fl = {0};
    char err[1024] = "";
    opts_defaults(&o);
    int r = opts_parse(&o, argc, argv, OPT_MODEL | OPT_CORE_MEM, info_extra, on_extra, &fl, err, sizeof err);
    if (r == 1) {
        usage(stdout);
        return EXIT_OK;
    }
    if (r == 0 && fl.devices && !o.model && o.n_args == 0) {
        section_devices();
        return fflush(stdout) == 0 ? EXIT_OK : EXIT_RUNTIME;
    }
    char mbuf[4200];
    if (opts_need_model(&o, r, err, "cmif info", mbuf, sizeof mbuf) != 0) {
        usage(stderr);
        return EXIT_USAGE;
    }
    struct gguf *g;
    if (gguf_open(&g, o.model, err, sizeof err)) {
        fprintf(stderr, "cmif info: %s\n", err);
        return EXIT_RUNTIME;
    }
    section_file(g, o.model);
    section_shapes(g);
    section_tensor_types(g);
    section_tokenizer(g);
    section_template(g);
    if (g->n_tensors) section_load_check(g);
    if (fl.tensors) section_tensor_list(g);
    if (fl.devices) section_devices();
    gguf_close(g);
    if (fl.core && section_core(o.model, &o.core)) return EXIT_RUNTIME;
    return fflush(stdout) == 0 ? EXIT_OK : EXIT_RUNTIME;
}

const struct cmd_entry cmd_info_entry = {
    "info", usage_line, "describe a GGUF model (shapes, tensor types, tokenizer, template)",
    cmd_info_exec,
};
