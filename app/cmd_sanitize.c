/* app/cmd_sanitize: `cmif sanitize` — run text through the confidential core's sanitizer and
 * show what is sent: the sanitized text on the first line, then one row per word (or token
 * with --unit token); --json prints one object for scripts. What is sent is charged to the
 * per-user ledger unless --no-ledger. */
#include <errno.h>
#include <locale.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/cmd.h"
#include "app/chat.h"
#include "app/opts.h"
#include "app/script.h"
#include "app/xdg.h"
#include "core/core.h"
#include "ui/utf8.h"

static void print_public_set(FILE *f)
{
    fprintf(f, "public set in force (sent as-is at ε = 0, marked \"public\"): tokens whose piece "
               "is made only of these characters (assets/public-tokens.txt):\n  ");
    for (const char *p = core_public_chars(); *p; p++) {
        switch (*p) {
        case ' ': fputs("\\s ", f); break;
        case '\t': fputs("\\t ", f); break;
        case '\n': fputs("\\n ", f); break;
        case '\r': fputs("\\r ", f); break;
        case '\v': fputs("\\v ", f); break;
        case '\f': fputs("\\f ", f); break;
        default: fprintf(f, "%c ", *p);
        }
    }
    fputs("\ncontrol and chat-template tokens are never sanitized and cost 0.\n", f);
}

#define SAN_FLAGS (OPT_MODEL | OPT_PRIVACY)

enum { X_FILE = 1, X_QUIET, X_SEED, X_CACHE, X_JSON };

static const struct opts_extra extras[] = {
    {"file", 'f', 1, X_FILE,
     "-f, --file FILE        sanitize the contents of FILE (- = stdin; keeps it off argv)"},
    {"json", 0, 0, X_JSON, "--json             one JSON object: sent, eps_message, eps_left_today, units"},
    {"seed", 0, 1, X_SEED, "--seed N           the same as --dp-seed N"},
    {"cache-dir", 0, 1, X_CACHE, "--cache-dir DIR    cluster cache (default $XDG_CACHE_HOME/cmif)"},
    {"quiet", 'q', 0, X_QUIET, "-q, --quiet            no progress while clustering"},
    {NULL, 0, 0, 0, NULL},
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: cmif sanitize -m MODEL.gguf [--sanitize auto|all|marked] [--unit word|token] "
            "[--eps E] [--budget B] [--no-ledger] [--json] "
            "[--mechanism rnm|rnm-exp|santext+|custext+] [--cluster-size K] [--seed N] "
            "[--cache-dir DIR] [-q] [-f FILE | TEXT...]\n"
            "  Sanitizes TEXT (or the contents of FILE, or stdin with -f -) inside the\n"
            "  confidential core and prints the sanitized text, then one row per word:\n"
            "  as typed, as sent, treatment (public/sanitized: kept or replaced/random/control),\n"
            "  ε charged, cluster size. TEXT on the command line is visible to other local users\n"
            "  while cmif starts (/proc/PID/cmdline): prefer -f FILE or -f - for secrets.\n"
            "  TEXT starts at the first word that is not a flag: every word from there on is\n"
            "  text, dashes included (cmif sanitize -m M.gguf I owe -5).\n");
    opts_usage(f, SAN_FLAGS, extras);
    fprintf(f, "the common words of --sanitize auto: a public list of %zu words "
               "(assets/public-words.txt)\n", core_public_word_count());
    print_public_set(f);
}

/* What the flags set beyond struct opts. */
struct san_flags {
    struct core_options *core;
    const char *file;
    int json;
};

static int on_extra(void *ctx, int id, const char *v, char *err, size_t errlen)
{
    struct san_flags *fl = ctx;
    struct core_options *o = fl->core;
    switch (id) {
    case X_FILE: fl->file = v; return 0;
    case X_QUIET: o->quiet = 1; return 0;
    case X_SEED: {
        char *end;
        errno = 0;
        unsigned long long s = strtoull(v, &end, 0);
        if (errno || end == v || *end) {
            snprintf(err, errlen, "--seed: '%s' is not an integer", v);
            return -1;
        }
        o->seeded = 1;
        o->seed = s;
        return 0;
    }
    case X_CACHE: o->cache_dir = v; return 0;
    case X_JSON: fl->json = 1; return 0;
    }
    snprintf(err, errlen, "internal: unknown flag id %d", id);
    return -1;
}

/* The text is the user's secret: read unbuffered (no copy left in a stdio buffer) and wipe
 * every buffer that is outgrown or dropped. */
static char *read_all(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cmif sanitize: cannot open %s: %s\n", path, strerror(errno));
        return NULL;
    }
    setvbuf(f, NULL, _IONBF, 0);
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            char *nb = cap <= SIZE_MAX / 2 ? malloc(cap * 2) : NULL;
            if (nb) memcpy(nb, buf, n);
            core_wipe(buf, cap);
            free(buf);
            buf = nb;
            if (!nb) break;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) break;
    }
    int bad = ferror(f);
    if (f != stdin) fclose(f);
    if (!buf || bad) {
        fprintf(stderr, "cmif sanitize: cannot read %s\n", path);
        core_wipe(buf, buf ? cap : 0);
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

/* The byte a report piece stands for when it is exactly one escaped byte ("\\xNN"), else -1:
 * a character the tokenizer split into byte tokens arrives as one such row per byte. */
static int escaped_byte(const char *s)
{
    unsigned v;
    char end;
    if (strlen(s) != 4 || s[0] != '\\' || s[1] != 'x') return -1;
    if (sscanf(s + 2, "%2x%c", &v, &end) != 1) return -1;
    return (int)v;
}

static const char *rep_piece(const struct core_tok_report *r, int sent)
{
    return sent ? r->sent : r->orig;
}

/* Row i's original (or sent) piece for the table, quoted. A valid character spread over
 * byte rows is shown as itself on each of them with the byte's place ("'🐶' 2/4"); a byte
 * that belongs to no valid character stays escaped. */
static void report_cell(const struct core_tok_report *rep, size_t n, size_t i, int sent,
                        char *out, size_t cap)
{
    const char *p = rep_piece(&rep[i], sent);
    snprintf(out, cap, "'%s'", p);
    if (escaped_byte(p) < 0) return;
    size_t j = i;
    while (j > 0 && i - j < 3 && (escaped_byte(rep_piece(&rep[j], sent)) & 0xC0) == 0x80)
        j--;
    char ch[4];
    size_t len = 0;
    for (size_t k = j; k < n && len < 4; k++) {
        int b = escaped_byte(rep_piece(&rep[k], sent));
        if (b < 0 || (k > j && (b & 0xC0) != 0x80)) break;
        ch[len++] = (char)b;
    }
    uint32_t cp;
    size_t l = utf8_decode(ch, len, &cp);
    if (l < 2 || j + l <= i) return;
    snprintf(out, cap, "'%.*s' %zu/%zu", (int)l, ch, i - j + 1, l);
}

/* Pads a table cell to `cols` display columns (wide characters count 2). */
static void print_cell(const char *s, int cols)
{
    int w = utf8_width(s, strlen(s));
    printf("%s%*s", s, w < cols ? cols - w : 0, "");
}

static int cmd_sanitize_exec(int argc, char **argv)
{
    struct opts op;
    opts_defaults(&op);
    struct core_options *o = &op.core;
    struct san_flags fl = {o, NULL, 0};
    char err[512];
    /* Every word after the first text word is text too: `cmif sanitize I owe -5` works. */
    struct opts_refusal rf = {on_extra, &fl, 0};
    int r = opts_parse(&op, argc, argv, SAN_FLAGS | OPT_ARGS_END_FLAGS, extras, opts_refusal_fn,
                       &rf, err, sizeof err);
    if (r == 1) {
        usage(stdout);
        return EXIT_OK;
    }
    if (r < 0) {
        fprintf(stderr, "cmif sanitize: %s\n", err);
        if (!rf.refused && !op.bad_value) usage(stderr);
        return EXIT_USAGE;
    }
    const char *model = op.model, *file = fl.file;
    int json = fl.json, no_ledger = op.no_ledger;
    if (o->mechanism == CORE_MECH_NONE) {
        fprintf(stderr, "cmif sanitize: --mechanism none sanitizes nothing (rnm, rnm-exp, "
                        "santext+, custext+)\n");
        return EXIT_USAGE;
    }
    if (!model) {
        fprintf(stderr, "cmif sanitize: -m MODEL.gguf is required\n");
        usage(stderr);
        return EXIT_USAGE;
    }
    char *text = NULL;
    size_t len = 0;
    if (file) {
        if (op.n_args > 0) {
            fprintf(stderr, "cmif sanitize: give either -f FILE or TEXT, not both\n");
            return EXIT_USAGE;
        }
        if (!(text = read_all(file, &len))) return EXIT_RUNTIME;
    } else {
        if (op.n_args == 0) {
            fprintf(stderr, "cmif sanitize: no text given\n");
            usage(stderr);
            return EXIT_USAGE;
        }
        for (int i = 0; i < op.n_args; i++) len += strlen(op.args[i]) + 1;
        text = calloc(len + 1, 1);
        if (!text) { fprintf(stderr, "cmif sanitize: out of memory\n"); return EXIT_RUNTIME; }
        len = 0;
        for (int i = 0; i < op.n_args; i++) {
            size_t l = strlen(op.args[i]);
            if (i > 0) text[len++] = ' ';
            memcpy(text + len, op.args[i], l);
            len += l;
            /* argv is readable by other users in /proc/PID/cmdline: shorten that window
             * (-f FILE or -f - keeps the text off the command line altogether). */
            core_wipe(op.args[i], l);
        }
    }
    /* A seeded core prints its own "NOT private" warning when the sanitizer starts. */

    char ledger[4096];
    if (!no_ledger) {
        if (xdg_path(XDG_STATE, "ledger", 1, ledger, sizeof ledger, err, sizeof err) != 0) {
            fprintf(stderr, "cmif sanitize: the privacy ledger: %s (or run with --no-ledger)\n",
                    err);
            core_wipe(text, len);
            free(text);
            return EXIT_RUNTIME;
        }
        o->ledger_path = ledger;
    }
    struct core *c;
    if (core_open(&c, model, o, err, sizeof err) != 0) {
        fprintf(stderr, "cmif sanitize: %s\n", err);
        core_wipe(text, len);
        free(text);
        return EXIT_RUNTIME;
    }
    struct core_batch b = {0};
    int rc = core_encode(c, text, len, CORE_SEG_USER, 0, &b, err, sizeof err);
    int lead_space = len > 0 && text[0] == ' ';
    core_wipe(text, len);
    free(text);
    if (rc != 0) {
        if (rc == CORE_EBUDGET) {
            char msg[600];
            chat_refusal_text(c, &b.refusal, "lower --eps", msg, sizeof msg);
            fprintf(stderr, "cmif sanitize: %s\n", msg);
        } else {
            fprintf(stderr, "cmif sanitize: %s\n", err);
        }
        core_batch_free(&b);
        core_close(c);
        return rc == CORE_EBUDGET ? EXIT_BUDGET : EXIT_RUNTIME;
    }
    const char *unit = core_unit_name(core_unit(c));
    double left = core_budget_total(c) - core_budget_spent(c);
    if (left < 0) left = 0;
    /* The sent text, decoded from the ids that leave the core (the rows leave out spaces). */
    char *sent = NULL;
    size_t sl = 0, cap = 0;
    struct core_detok d;
    core_detok_init(&d, -1);
    for (size_t i = 0; i < b.n; i++) {
        char piece[256];
        size_t n = core_piece(c, &d, b.ids[i], 0, piece, sizeof piece);
        if (n > sizeof piece) n = sizeof piece;
        if (sl + n + 1 > cap) {
            size_t nc = (cap + n + 1) * 2;
            char *ns = malloc(nc);
            if (!ns) break;
            if (sl) memcpy(ns, sent, sl);
            core_wipe(sent, cap);
            free(sent);
            sent = ns;
            cap = nc;
        }
        memcpy(sent + sl, piece, n);
        sl += n;
        core_wipe(piece, sizeof piece);
    }
    const char *sp = sent ? sent : "";
    if (sl && !lead_space && sp[0] == ' ') {
        sp++;
        sl--;
    }
    if (json) {
        printf("{\"sent\": ");
        script_json_str(stdout, sp, sl);
        printf(", \"unit\": \"%s\", \"sanitize\": \"%s\", \"mechanism\": \"%s\", \"eps\": %.17g, "
               "\"eps_message\": %.17g, \"eps_left_today\": %.17g, \"eps_budget\": %.17g, "
               "\"eps_lifetime\": %.17g, \"ledger\": %s, \"seeded\": %s, \"units\": [",
               unit, core_scope_name(core_scope(c)), core_mech_name(core_mechanism(c)),
               core_eps(c), b.msg_eps, left, core_budget_total(c), core_budget_lifetime(c),
               core_has_ledger(c) ? "true" : "false", o->seeded ? "true" : "false");
        for (size_t i = 0; i < b.nrep; i++) {
            const struct core_tok_report *r = &b.rep[i];
            printf("%s{\"original\": ", i ? ", " : "");
            script_json_str(stdout, r->orig, strnlen(r->orig, sizeof r->orig));
            printf(", \"sent\": ");
            script_json_str(stdout, r->sent, strnlen(r->sent, sizeof r->sent));
            printf(", \"treatment\": \"%s\", \"eps\": %.17g, \"cluster\": %d}",
                   core_kind_name(r->kind), r->eps, r->cluster_size);
        }
        printf("]}\n");
        core_wipe(sent, cap);
        free(sent);
        core_batch_free(&b);
        core_close(c);
        return EXIT_OK;
    }
    /* Line 1: the sanitized text. */
    fwrite(sp, 1, sl, stdout);
    fputc('\n', stdout);
    core_wipe(sent, cap);
    free(sent);
    size_t cnt[CORE_TOK_PLANNED + 1] = {0};
    /* Display widths (wcwidth) need a UTF-8 locale; the report's text is UTF-8 whatever the
     * environment names. */
    if (!setlocale(LC_CTYPE, "") || MB_CUR_MAX == 1) setlocale(LC_CTYPE, "C.UTF-8");
    printf("%-4s %-20s %-20s %-9s %-6s %s\n", "#", "original", "sent", "treatment", "eps", "cluster");
    for (size_t i = 0; i < b.nrep; i++) {
        const struct core_tok_report *r = &b.rep[i];
        if (r->kind >= 0 && r->kind <= CORE_TOK_PLANNED) cnt[r->kind]++;
        char orig[80], sent[80];
        report_cell(b.rep, b.nrep, i, 0, orig, sizeof orig);
        report_cell(b.rep, b.nrep, i, 1, sent, sizeof sent);
        /* printf pads by bytes; the table pads by display columns so wide text lines up. */
        printf("%-4zu ", i);
        print_cell(orig, 20);
        putchar(' ');
        print_cell(sent, 20);
        printf(" %-9s %-6g %d\n", core_kind_name(r->kind), r->eps, r->cluster_size);
    }
    printf("%ss %zu: replaced %zu, kept %zu, public %zu, random %zu, control %zu\n", unit,
           b.nrep, cnt[CORE_TOK_REPLACED], cnt[CORE_TOK_KEPT], cnt[CORE_TOK_PUBLIC],
           cnt[CORE_TOK_RANDOM], cnt[CORE_TOK_CONTROL]);
    printf("mechanism %s, sanitize %s, ε %g per sanitized %s, message ε %g (%zu %ss x %g), "
           "budget spent %g of %g%s, cluster size K = %d%s\n",
           core_mech_name(core_mechanism(c)), core_scope_name(core_scope(c)), core_eps(c), unit,
           b.msg_eps, cnt[CORE_TOK_REPLACED] + cnt[CORE_TOK_KEPT], unit, core_eps(c),
           core_budget_spent(c), core_budget_total(c),
           core_has_ledger(c) ? " today (ledger)" : " (this run, no ledger)", o->cluster_size,
           o->seeded ? " [SEEDED: NOT PRIVATE]" : "");
    if (core_unit(c) == CORE_UNIT_TOKEN)
        printf("public set in force: pieces made only of whitespace and ASCII punctuation "
               "(assets/public-tokens.txt; `cmif sanitize --help` lists it)\n");
    core_batch_free(&b);
    core_close(c);
    return EXIT_OK;
}

const struct cmd_entry cmd_sanitize_entry = {
    "sanitize",
    "sanitize -m MODEL [--eps E] [--budget B] [--mechanism M] [--cluster-size K] [--seed N] TEXT",
    "sanitize text as the chat would send it and show the per-token privacy report",
    cmd_sanitize_exec,
};
