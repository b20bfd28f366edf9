/* app/cmd_sanitize: `cmif sanitize` — run text through the confidential core's sanitizer and
 * show what is sent: the sanitized text on the first line, then one row per word (or token
 * with --unit token); --json prints one object for scripts. What is sent is charged to the
 * per-user ledger unless --no-ledger. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/cmd.h"
#include "app/chat.h"
#include "app/script.h"
#include "app/xdg.h"
#include "core/core.h"

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
            "  --sanitize S       auto (default): common words (a public list of %zu words,\n"
            "                     assets/public-words.txt) are sent as typed; names, numbers,\n"
            "                     addresses and rare words are sanitized. all: every word.\n"
            "                     marked: only what is inside {{ }}. {{ }} marks in every mode.\n"
            "  --unit U           word (default: a word costs ε once, replaced by a whole word)\n"
            "                     or token (every sub-word piece, as the CMIF paper)\n"
            "  --eps E            ε per sanitized word (default 1)\n"
            "  --budget B         ε a day, over a rolling 24 hours, kept in the per-user ledger\n"
            "                     $XDG_STATE_HOME/cmif/ledger (default 200); exit 3 when the text\n"
            "                     costs more than is left\n"
            "  --no-ledger        do not read or charge the ledger (the budget is this run's)\n"
            "  --json             one JSON object: sent, eps_message, eps_left_today, units\n"
            "  --mechanism M      rnm (default), rnm-exp, santext+, custext+\n"
            "  --cluster-size K   tokens per cluster (default 20)\n"
            "  --seed N           reproducible noise: FOR TESTS ONLY, NOT PRIVATE\n"
            "  --cache-dir DIR    cluster cache (default $XDG_CACHE_HOME/cmif)\n"
            "  -q, --quiet        no progress while clustering\n", core_public_word_count());
    print_public_set(f);
}

static int parse_double(const char *s, const char *what, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end) {
        fprintf(stderr, "cmif sanitize: %s: '%s' is not a number\n", what, s);
        return -1;
    }
    *out = v;
    return 0;
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

static int cont_bytes(const char *s)
{
    int n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) == 0x80;
    return n;
}

static int cmd_sanitize_exec(int argc, char **argv)
{
    struct core_options o;
    core_defaults(&o);
    const char *model = NULL, *file = NULL;
    enum { O_EPS = 256, O_BUDGET, O_MECH, O_K, O_SEED, O_CACHE, O_SCOPE, O_UNIT, O_NOLEDGER,
           O_JSON };
    int json = 0, no_ledger = 0;
    static const struct option lo[] = {
        {"model", required_argument, 0, 'm'}, {"eps", required_argument, 0, O_EPS},
        {"budget", required_argument, 0, O_BUDGET}, {"mechanism", required_argument, 0, O_MECH},
        {"cluster-size", required_argument, 0, O_K}, {"seed", required_argument, 0, O_SEED},
        {"cache-dir", required_argument, 0, O_CACHE}, {"file", required_argument, 0, 'f'},
        {"quiet", no_argument, 0, 'q'}, {"help", no_argument, 0, 'h'},
        {"sanitize", required_argument, 0, O_SCOPE}, {"unit", required_argument, 0, O_UNIT},
        {"no-ledger", no_argument, 0, O_NOLEDGER}, {"json", no_argument, 0, O_JSON},
        {0, 0, 0, 0},
    };
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "+m:f:qh", lo, NULL)) != -1) {
        double v;
        switch (ch) {
        case 'm': model = optarg; break;
        case 'f': file = optarg; break;
        case 'q': o.quiet = 1; break;
        case 'h': usage(stdout); return EXIT_OK;
        case O_EPS:
            if (parse_double(optarg, "--eps", &o.eps)) return EXIT_USAGE;
            break;
        case O_BUDGET:
            if (parse_double(optarg, "--budget", &o.budget)) return EXIT_USAGE;
            break;
        case O_MECH:
            o.mechanism = core_mech_parse(optarg);
            if (o.mechanism < 0 || o.mechanism == CORE_MECH_NONE) {
                fprintf(stderr, "cmif sanitize: unknown mechanism '%s' "
                                "(rnm, rnm-exp, santext+, custext+)\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case O_K:
            if (parse_double(optarg, "--cluster-size", &v)) return EXIT_USAGE;
            if (v < 2 || v > 100000 || v != (int)v) {
                fprintf(stderr, "cmif sanitize: --cluster-size must be an integer from 2 to 100000\n");
                return EXIT_USAGE;
            }
            o.cluster_size = (int)v;
            break;
        case O_SEED: {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(optarg, &end, 0);
            if (errno || end == optarg || *end) {
                fprintf(stderr, "cmif sanitize: --seed: '%s' is not an integer\n", optarg);
                return EXIT_USAGE;
            }
            o.seeded = 1;
            o.seed = s;
            break;
        }
        case O_CACHE: o.cache_dir = optarg; break;
        case O_SCOPE:
            if ((o.scope = core_scope_parse(optarg)) < 0) {
                fprintf(stderr, "cmif sanitize: --sanitize: '%s' is not auto, all or marked\n",
                        optarg);
                return EXIT_USAGE;
            }
            break;
        case O_UNIT:
            if ((o.unit = core_unit_parse(optarg)) < 0) {
                fprintf(stderr, "cmif sanitize: --unit: '%s' is not word or token\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case O_NOLEDGER: no_ledger = 1; break;
        case O_JSON: json = 1; break;
        default:
            fprintf(stderr, "cmif sanitize: unknown or incomplete option '%s'\n", argv[optind - 1]);
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    char err[512];
    const char *what[] = {"--eps", "--budget"};
    double vals[] = {o.eps, o.budget};
    for (int i = 0; i < 2; i++) {
        if (core_check_eps(vals[i], what[i], err, sizeof err)) {
            fprintf(stderr, "cmif sanitize: %s\n", err);
            return EXIT_USAGE;
        }
    }
    if (!model) {
        fprintf(stderr, "cmif sanitize: -m MODEL.gguf is required\n");
        usage(stderr);
        return EXIT_USAGE;
    }
    char *text = NULL;
    size_t len = 0;
    if (file) {
        if (optind < argc) {
            fprintf(stderr, "cmif sanitize: give either -f FILE or TEXT, not both\n");
            return EXIT_USAGE;
        }
        if (!(text = read_all(file, &len))) return EXIT_RUNTIME;
    } else {
        if (optind >= argc) {
            fprintf(stderr, "cmif sanitize: no text given\n");
            usage(stderr);
            return EXIT_USAGE;
        }
        for (int i = optind; i < argc; i++) len += strlen(argv[i]) + 1;
        text = calloc(len + 1, 1);
        if (!text) { fprintf(stderr, "cmif sanitize: out of memory\n"); return EXIT_RUNTIME; }
        len = 0;
        for (int i = optind; i < argc; i++) {
            size_t l = strlen(argv[i]);
            if (i > optind) text[len++] = ' ';
            memcpy(text + len, argv[i], l);
            len += l;
            /* argv is readable by other users in /proc/PID/cmdline: shorten that window
             * (-f FILE or -f - keeps the text off the command line altogether). */
            core_wipe(argv[i], l);
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
        o.ledger_path = ledger;
    }
    struct core *c;
    if (core_open(&c, model, &o, err, sizeof err) != 0) {
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
               core_has_ledger(c) ? "true" : "false", o.seeded ? "true" : "false");
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
    printf("%-4s %-20s %-20s %-9s %-6s %s\n", "#", "original", "sent", "treatment", "eps", "cluster");
    for (size_t i = 0; i < b.nrep; i++) {
        const struct core_tok_report *r = &b.rep[i];
        if (r->kind >= 0 && r->kind <= CORE_TOK_PLANNED) cnt[r->kind]++;
        char orig[64], sent[64];
        snprintf(orig, sizeof orig, "'%s'", r->orig);
        snprintf(sent, sizeof sent, "'%s'", r->sent);
        /* printf pads by bytes; widen by the UTF-8 continuation bytes so columns line up. */
        printf("%-4zu %-*s %-*s %-9s %-6g %d\n", i, 20 + cont_bytes(orig), orig,
               20 + cont_bytes(sent), sent, core_kind_name(r->kind), r->eps, r->cluster_size);
    }
    printf("%ss %zu: replaced %zu, kept %zu, public %zu, random %zu, control %zu\n", unit,
           b.nrep, cnt[CORE_TOK_REPLACED], cnt[CORE_TOK_KEPT], cnt[CORE_TOK_PUBLIC],
           cnt[CORE_TOK_RANDOM], cnt[CORE_TOK_CONTROL]);
    printf("mechanism %s, sanitize %s, ε %g per sanitized %s, message ε %g (%zu %ss x %g), "
           "budget spent %g of %g%s, cluster size K = %d%s\n",
           core_mech_name(core_mechanism(c)), core_scope_name(core_scope(c)), core_eps(c), unit,
           b.msg_eps, cnt[CORE_TOK_REPLACED] + cnt[CORE_TOK_KEPT], unit, core_eps(c),
           core_budget_spent(c), core_budget_total(c),
           core_has_ledger(c) ? " today (ledger)" : " (this run, no ledger)", o.cluster_size,
           o.seeded ? " [SEEDED: NOT PRIVATE]" : "");
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
