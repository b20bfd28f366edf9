/* app/cmd_chat: `cmif [chat] -m MODEL` — the default subcommand. Opens the model behind the
 * confidential core, then either the full-screen chat (a terminal) or a scripted session
 * (--script FILE, or stdin that is not a terminal). */
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curses.h>

#include "app/chat.h"
#include "app/cmd.h"
#include "app/commands.h"
#include "app/model.h"
#include "app/opts.h"
#include "app/script.h"
#include "app/template.h"
#include "app/xdg.h"
#include "core/budget.h"
#include "core/core.h"
#include "gpu/decoder.h"
#include "ui/input.h"
#include "ui/plain.h"
#include "ui/queue.h"
#include "ui/screen.h"

#define DEFAULT_MODEL "assets/models/cmif-tiny.gguf"
#define CHAT_DEFAULT_PREDICT 400

enum {
    X_EPS = 1, X_BUDGET, X_MECH, X_CLUSTER, X_DPSEED, X_COREMEM, X_LOCKED, X_TEMPLATE, X_SYSTEM,
    X_SCRIPT, X_REPORT, X_REPORTFILE, X_NOCOLOR, X_NOHIST, X_DUMP, X_HEADLESS, X_DELAY, X_QUIET,
};

static const struct opts_extra extras[] = {
    { "eps", 0, 1, X_EPS, "    --eps E            ε per sanitized token (default 1)" },
    { "budget", 0, 1, X_BUDGET, "    --budget B         session privacy budget (default 64)" },
    { "mechanism", 0, 1, X_MECH,
      "    --mechanism M      rnm (default), rnm-exp, santext+, custext+, none" },
    { "cluster-size", 0, 1, X_CLUSTER, "    --cluster-size K   tokens per sanitizer cluster (default 20)" },
    { "dp-seed", 0, 1, X_DPSEED,
      "    --dp-seed N        reproducible sanitizer noise: FOR TESTS ONLY, NOT PRIVATE" },
    { "core-mem", 0, 1, X_COREMEM, "    --core-mem BYTES   guarded region size (default: fits RLIMIT_MEMLOCK)" },
    { "require-locked", 0, 0, X_LOCKED, "    --require-locked   refuse to run when the core cannot be locked" },
    { "template", 0, 1, X_TEMPLATE,
      "    --template NAME    llama2, llama3, chatml, zephyr or plain (default: from the model)" },
    { "system", 0, 1, X_SYSTEM, "    --system TEXT      system prompt (sanitized like your messages)" },
    { "script", 0, 1, X_SCRIPT,
      "    --script FILE      replay FILE (one message or /command a line) without a screen" },
    { "report", 0, 1, X_REPORT, "    --report json      scripted: print the per-token privacy report as JSON" },
    { "report-file", 0, 1, X_REPORTFILE, "    --report-file F    scripted: also write the JSON report to F" },
    { "no-color", 0, 0, X_NOCOLOR, "    --no-color         no colours (also when NO_COLOR is set)" },
    { "no-history", 0, 0, X_NOHIST, "    --no-history       do not read or write the history file (Up still recalls\n                       this session's inputs)" },
    { "screen-dump", 0, 1, X_DUMP, "    --screen-dump F    write the screen as text to F at exit and on SIGUSR1" },
    { "headless", 0, 1, X_HEADLESS,
      "    --headless CxR     full-screen chat on a virtual CxR screen, keys from stdin (tests)" },
    { "delay-ms", 0, 1, X_DELAY, "    --delay-ms N       pause N ms after each generated token (demos, tests)" },
    { "quiet", 'q', 0, X_QUIET, "-q, --quiet            no progress messages" },
    { NULL, 0, 0, 0, NULL },
};

struct chat_opts {
    struct core_options core;
    const char *template_name;
    const char *system;
    const char *script;
    const char *report_file;
    const char *dump;
    int report_json;
    int color;
    int history;
    char history_off[600];   /* why the history file is not used (shown in the chat) */
    int headless_cols, headless_rows;
    int delay_ms;
};

static int parse_num(const char *v, double lo, double hi, double *out, const char *what, char *err,
                     size_t errlen)
{
    if (opts_float(v, lo, hi, out) != 0) {
        snprintf(err, errlen, "--%s: '%s' is not a number from %g to %g", what, v, lo, hi);
        return -1;
    }
    return 0;
}

static int on_extra(void *ctx, int id, const char *v, char *err, size_t errlen)
{
    struct chat_opts *c = ctx;
    double d;
    long l;
    switch (id) {
    case X_EPS:
        if (budget_valid(strtod(v, NULL), "--eps", err, errlen) ||
            parse_num(v, 1e-9, 1e9, &c->core.eps, "eps", err, errlen))
            return -1;
        return 0;
    case X_BUDGET:
        if (budget_valid(strtod(v, NULL), "--budget", err, errlen) ||
            parse_num(v, 1e-9, 1e12, &c->core.budget, "budget", err, errlen))
            return -1;
        return 0;
    case X_MECH:
        if ((c->core.mechanism = core_mech_parse(v)) < 0) {
            snprintf(err, errlen, "--mechanism: unknown '%s' (rnm, rnm-exp, santext+, custext+, none)", v);
            return -1;
        }
        return 0;
    case X_CLUSTER:
        if (opts_int(v, 2, 100000, &l) != 0) {
            snprintf(err, errlen, "--cluster-size: '%s' is not an integer from 2 to 100000", v);
            return -1;
        }
        c->core.cluster_size = (int)l;
        return 0;
    case X_DPSEED:
        if (parse_num(v, 0, 1.8e19, &d, "dp-seed", err, errlen) || d != (double)(uint64_t)d) {
            snprintf(err, errlen, "--dp-seed: '%s' is not a non-negative integer", v);
            return -1;
        }
        c->core.seeded = 1;
        c->core.seed = strtoull(v, NULL, 10);
        return 0;
    case X_COREMEM:
        if (parse_num(v, 4096, 1e15, &d, "core-mem", err, errlen)) return -1;
        c->core.mem_limit = (size_t)d;
        return 0;
    case X_LOCKED: c->core.require_locked = 1; return 0;
    case X_TEMPLATE:
        if (tmpl_parse(v) < 0) {
            snprintf(err, errlen, "--template: unknown '%s' (llama2, llama3, chatml, zephyr, plain)", v);
            return -1;
        }
        c->template_name = v;
        return 0;
    case X_SYSTEM: c->system = v; return 0;
    case X_SCRIPT: c->script = v; return 0;
    case X_REPORT:
        if (strcmp(v, "json") != 0) {
            snprintf(err, errlen, "--report: only 'json' is supported, not '%s'", v);
            return -1;
        }
        c->report_json = 1;
        return 0;
    case X_REPORTFILE: c->report_file = v; return 0;
    case X_NOCOLOR: c->color = 0; return 0;
    case X_NOHIST: c->history = 0; return 0;
    case X_DUMP: c->dump = v; return 0;
    case X_HEADLESS:
        if (sscanf(v, "%dx%d", &c->headless_cols, &c->headless_rows) != 2 ||
            c->headless_cols < 20 || c->headless_rows < 6 || c->headless_cols > 1000 ||
            c->headless_rows > 1000) {
            snprintf(err, errlen, "--headless: expected COLSxROWS (at least 20x6), got '%s'", v);
            return -1;
        }
        return 0;
    case X_DELAY:
        if (opts_int(v, 0, 60000, &l) != 0) {
            snprintf(err, errlen, "--delay-ms: '%s' is not an integer from 0 to 60000", v);
            return -1;
        }
        c->delay_ms = (int)l;
        return 0;
    case X_QUIET: c->core.quiet = 1; return 0;
    }
    snprintf(err, errlen, "internal: unknown flag id %d", id);
    return -1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: cmif [chat] [-m MODEL.gguf] [OPTIONS]\n"
               "  The confidential chat. Your messages are tokenized and sanitized with\n"
               "  differential privacy inside the confidential core before the model sees them.\n"
               "  On a terminal: full screen. With --script FILE, or when stdin is not a\n"
               "  terminal: each line is one message or /command, the transcript goes to stdout.\n"
               "  Model: -m, else $CMIF_MODEL, else " DEFAULT_MODEL ".\n"
               "  An answer stops at the model's end of turn or after -n tokens (default here %d).\n\n",
            CHAT_DEFAULT_PREDICT);
    opts_usage(f, OPT_ENGINE | OPT_PREDICT | OPT_SAMPLING, extras);
    fprintf(f, "\nkeys: Enter sends; a trailing \\ continues on the next line; Ctrl-C stops the\n"
               "  answer; Ctrl-D or /quit leaves; PgUp/PgDn or the wheel scroll; F2 the panel;\n"
               "  Up/Down/Ctrl-R history ($XDG_STATE_HOME/cmif/history); Tab completes /commands.\n"
               "commands:\n");
    for (int i = 0; cmds_table[i].name; i++) {
        char head[64];
        snprintf(head, sizeof head, "/%s %s", cmds_table[i].name, cmds_table[i].args);
        fprintf(f, "  %-20s %s\n", head, cmds_table[i].help);
    }
    fprintf(f, "exit status: 0 ok, 1 runtime error, 2 bad usage, 3 privacy budget ran out\n");
}

/* -m, else $CMIF_MODEL, else the bundled model next to the sources or the binary. */
static const char *find_model(const char *given, char *buf, size_t cap)
{
    if (given) return given;
    const char *env = getenv("CMIF_MODEL");
    if (env && *env) return env;
    if (access(DEFAULT_MODEL, R_OK) == 0) return DEFAULT_MODEL;
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0;
            snprintf(buf, cap, "%s/../%s", exe, DEFAULT_MODEL);
            if (access(buf, R_OK) == 0) return buf;
        }
    }
    return NULL;
}

/* Reports and screen dumps hold what the user typed in clear: owner only. */
static FILE *fopen_private(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return NULL;
    FILE *f = fdopen(fd, "w");
    if (!f) {
        int e = errno;
        close(fd);
        errno = e;
    }
    return f;
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* Everything the model needs, opened in order and closed in reverse. */
struct engine {
    struct core *core;
    struct model *model;
    struct decoder *dec;
    struct chat *chat;
    char name[160];
};

static void engine_close(struct engine *e)
{
    chat_close(e->chat);
    dec_close(e->dec);
    model_close(e->model);
    core_close(e->core);
    memset(e, 0, sizeof *e);
}

static int engine_open(struct engine *e, const char *path, const struct opts *o,
                       const struct chat_opts *co, char *err, size_t errlen)
{
    memset(e, 0, sizeof *e);
    char tmp[512];
    if (core_open(&e->core, path, &co->core, tmp, sizeof tmp) != 0) {
        snprintf(err, errlen, "%.400s: %.500s", path, tmp);
        return -1;
    }
    if (model_open(&e->model, core_gguf(e->core), tmp, sizeof tmp) != 0) {
        snprintf(err, errlen, "%.400s: %.500s", path, tmp);
        goto fail;
    }
    /* The table is in the core; the decoder side keeps token_embd only as a tied output. */
    memset(&e->model->embd, 0, sizeof e->model->embd);
    snprintf(e->name, sizeof e->name, "%.150s", e->model->name[0] ? e->model->name : base_name(path));
    struct dec_options dopt = { .ctx = o->ctx, .threads = o->threads, .device = o->device,
                                .cl_index = o->cl_index };
    if (dec_open(&e->dec, &e->model->w, &dopt, tmp, sizeof tmp) != 0) {
        snprintf(err, errlen, "%s", tmp);
        goto fail;
    }
    int kind;
    if (co->template_name) {
        kind = tmpl_parse(co->template_name);
    } else {
        struct gguf_str s = { 0 };
        int known = 1;
        gguf_get_str(core_gguf(e->core), "tokenizer.chat_template", &s);
        kind = tmpl_detect(s.ptr, s.len, &known);
    }
    struct chat_params cp = { .tmpl = kind, .n_predict = o->n_predict, .sp = o->sp,
                              .system = co->system, .delay_ms = co->delay_ms };
    if (chat_open(&e->chat, e->core, e->dec, &cp, tmp, sizeof tmp) != 0) {
        snprintf(err, errlen, "%s", tmp);
        goto fail;
    }
    return 0;
fail:
    engine_close(e);
    return -1;
}

/* --- scripted sessions ------------------------------------------------------------------ */

static void script_print(void *ctx, int level, const char *msg)
{
    if (level == CMDS_ERROR) {
        fprintf(stderr, "cmif: %s\n", msg);
        return;
    }
    if (ctx) plain_note(ctx, msg);
}

static int run_script(struct engine *e, FILE *in, const char *name, const struct chat_opts *co)
{
    char err[512];
    struct script sc;
    if (script_load(in, name, &sc, err, sizeof err) != 0) {
        fprintf(stderr, "cmif: %s\n", err);
        return EXIT_RUNTIME;
    }
    FILE *rf = NULL;
    if (co->report_file && !(rf = fopen_private(co->report_file))) {
        fprintf(stderr, "cmif: %s: %s\n", co->report_file, strerror(errno));
        script_free(&sc);
        return EXIT_RUNTIME;
    }
    struct plain pl;
    plain_init(&pl, stdout);
    struct plain *plp = co->report_json ? NULL : &pl;
    struct cmds_session sess = { .chat = e->chat, .core = e->core, .model_name = e->name,
                                 .device_name = dec_device_name(e->dec), .print = script_print,
                                 .ctx = plp };
    struct script_opts so = { .json = co->report_json, .report = rf, .model_name = e->name };
    int rc = script_run(&sc, e->chat, &sess, plp, &so, stderr);
    if (rf && fclose(rf) != 0 && rc == EXIT_OK) {
        fprintf(stderr, "cmif: %s: write failed\n", co->report_file);
        rc = EXIT_RUNTIME;
    }
    cmds_session_free(&sess);
    script_free(&sc);
    fflush(stdout);
    return rc;
}

/* --- the full-screen chat --------------------------------------------------------------- */

static int g_sig_w = -1;

static void on_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    if (g_sig_w >= 0) {
        ssize_t r = write(g_sig_w, &b, 1);
        (void)r;
    }
    errno = saved;
}

static void on_fatal(int sig)
{
    screen_emergency_restore();
    signal(sig, SIG_DFL);
    raise(sig);
}

struct tui {
    struct engine *e;
    const struct chat_opts *co;
    struct screen *scr;
    struct input *in;
    struct queue *q;
    struct cmds_session sess;
    int quit, eof_in, cancel, headless;
    int sig_r;
    int err_r, saved_stderr;      /* stderr is shown in the transcript while the screen is up */
    char errbuf[1024];
    size_t errlen;
    int exit_sig;
};

static void note(struct tui *t, int style, const char *msg)
{
    transcript_add(screen_transcript(t->scr), style, msg, strlen(msg));
    screen_transcript(t->scr)->scroll = 0;
}

static void tui_print(void *ctx, int level, const char *msg)
{
    note(ctx, level == CMDS_ERROR ? TR_ERROR : TR_INFO, msg);
}

static void tui_toggle(void *ctx)
{
    struct tui *t = ctx;
    screen_toggle_panel(t->scr);
}

static void tui_cleared(void *ctx)
{
    struct tui *t = ctx;
    transcript_clear(screen_transcript(t->scr));
    struct panel_data pd = { 0 };
    pd.eps = core_eps(t->e->core);
    pd.spent = core_budget_spent(t->e->core);
    pd.total = core_budget_total(t->e->core);
    pd.mechanism = core_mech_name(core_mechanism(t->e->core));
    screen_set_panel(t->scr, &pd);
}

/* Status and panel totals; the core is asked only while no turn runs. */
static void refresh_info(struct tui *t, int with_report)
{
    int busy = chat_busy(t->e->chat);
    double spent, total, eps;
    struct core_status st;
    static char summary[sizeof st.summary];
    /* Kept from the last idle moment: /mechanism cannot run during a turn. */
    static const char *mech = "";
    if (!busy) {
        mech = core_mech_name(core_mechanism(t->e->core));
        spent = core_budget_spent(t->e->core);
        total = core_budget_total(t->e->core);
        eps = core_eps(t->e->core);
        core_status(t->e->core, &st);
        snprintf(summary, sizeof summary, "%s", st.summary);
    } else {
        chat_budget_snapshot(t->e->chat, &spent, &total, &eps);
    }
    struct status_info si = { .model = t->e->name, .device = dec_device_name(t->e->dec),
                              .tps = chat_last_tps(t->e->chat), .core = summary, .eps = eps,
                              .spent = spent, .total = total, .busy = busy };
    screen_set_status(t->scr, &si);
    if (with_report) {
        struct panel_data pd = { 0 };
        pd.rep = chat_last_report(t->e->chat, &pd.n, &pd.msg_eps);
        pd.eps = eps;
        pd.spent = spent;
        pd.total = total;
        pd.mechanism = mech;
        screen_set_panel(t->scr, &pd);
    }
}

static void handle_key(struct tui *t, int ch)
{
    switch (ch) {
    case KEY_RESIZE: screen_resize(t->scr); return;
    case KEY_PPAGE: screen_scroll_pages(t->scr, 1); return;
    case KEY_NPAGE: screen_scroll_pages(t->scr, -1); return;
    case KEY_MOUSE: screen_scroll_rows(t->scr, 3 * screen_wheel(t->scr)); return;
    case KEY_F(2): screen_toggle_panel(t->scr); return;
    case 12: screen_repaint(t->scr); return;   /* Ctrl-L */
    case 3:                                     /* Ctrl-C */
        if (chat_busy(t->e->chat)) {
            chat_stop(t->e->chat);
            note(t, TR_INFO, "stopping the answer…");
        } else {
            t->cancel = 1;
        }
        return;
    default: input_key(t->in, ch); return;
    }
}

/* Readline wants another byte in the middle of a key sequence: wait for one key. */
static int nested_fetch(void *ctx)
{
    struct tui *t = ctx;
    int ch = screen_key(t->scr, 1);
    if (ch == ERR) return -1;
    handle_key(t, ch);
    return 0;
}

static void handle_line(struct tui *t, char *line)
{
    char err[512];
    size_t l = strlen(line);
    int blank = 1;
    for (size_t i = 0; i < l; i++)
        if (line[i] != ' ' && line[i] != '\t' && line[i] != '\n') blank = 0;
    if (blank) goto done;
    /* Up and Ctrl-R recall this session's inputs even when the history file is off
     * (--no-history): input_history_add writes the file only when there is one. */
    if (input_history_add(t->in, line, err, sizeof err) != 0) note(t, TR_ERROR, err);
    cmds_record(&t->sess, line);
    note(t, TR_USER, line);
    if (cmds_is_command(line)) {
        int rc = cmds_run(&t->sess, line, chat_busy(t->e->chat));
        if (rc == CMDS_QUIT) t->quit = 1;
        refresh_info(t, 1);
        goto done;
    }
    if (chat_busy(t->e->chat)) {
        note(t, TR_ERROR, "an answer is still streaming: wait or press Ctrl-C (Up recalls your text)");
        goto done;
    }
    if (chat_submit(t->e->chat, line, t->q, err, sizeof err) != 0) note(t, TR_ERROR, err);
    refresh_info(t, 0);
done:
    core_wipe(line, l);
    free(line);
}

static void handle_event(struct tui *t, struct queue_item *it)
{
    struct transcript *tr = screen_transcript(t->scr);
    switch (it->type) {
    case QUEUE_TEXT: transcript_append(tr, it->text, it->len); break;
    case QUEUE_INFO: note(t, TR_INFO, it->text); break;
    case QUEUE_REPORT: refresh_info(t, 1); break;
    case QUEUE_DONE:
        chat_join(t->e->chat);
        transcript_end_answer(tr);
        if (it->status == CHAT_STOPPED) note(t, TR_INFO, "stopped: the session goes on");
        else if (it->status == CORE_EBUDGET) {
            /* Not "exhausted": the budget may be untouched and the message merely too
             * costly. In the chat, ε is lowered with /eps rather than --eps. */
            char msg[1200];
            const char *why = it->text ? it->text : "privacy budget exceeded";
            const char *flag = strstr(why, "lower --eps");
            if (flag)
                snprintf(msg, sizeof msg, "message not sent: %.*slower ε with /eps%s",
                         (int)(flag - why), why, flag + strlen("lower --eps"));
            else
                snprintf(msg, sizeof msg, "message not sent: %s", why);
            note(t, TR_ERROR, msg);
        } else if (it->status < 0) note(t, TR_ERROR, it->text ? it->text : "error");
        refresh_info(t, 1);
        break;
    default: break;
    }
}

static void drain_stderr(struct tui *t)
{
    if (t->err_r < 0) return;
    for (;;) {
        ssize_t r = read(t->err_r, t->errbuf + t->errlen, sizeof t->errbuf - 1 - t->errlen);
        if (r <= 0) break;
        t->errlen += (size_t)r;
        char *nl;
        while ((nl = memchr(t->errbuf, '\n', t->errlen)) || t->errlen == sizeof t->errbuf - 1) {
            size_t n = nl ? (size_t)(nl - t->errbuf) : t->errlen;
            if (n) transcript_add(screen_transcript(t->scr), TR_INFO, t->errbuf, n);
            size_t used = nl ? n + 1 : n;
            memmove(t->errbuf, t->errbuf + used, t->errlen - used);
            t->errlen -= used;
        }
    }
}

static void dump(struct tui *t)
{
    if (!t->co->dump) return;
    FILE *f = fopen_private(t->co->dump);
    if (!f) return;
    screen_dump(t->scr, f);
    fclose(f);
}

static int run_tui(struct engine *e, const struct chat_opts *co, const char *hist_path)
{
    struct tui t;
    memset(&t, 0, sizeof t);
    t.e = e;
    t.co = co;
    t.err_r = t.saved_stderr = -1;
    t.headless = co->headless_cols > 0;
    char err[512];
    int rc = EXIT_RUNTIME;
    int sp[2] = { -1, -1 };
    FILE *devnull = NULL;
    if (pipe2(sp, O_CLOEXEC | O_NONBLOCK) != 0) {
        fprintf(stderr, "cmif: pipe: %s\n", strerror(errno));
        return EXIT_RUNTIME;
    }
    t.sig_r = sp[0];
    g_sig_w = sp[1];
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    const int quit_sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 };
    for (size_t i = 0; i < sizeof quit_sigs / sizeof *quit_sigs; i++) sigaction(quit_sigs[i], &sa, NULL);
    const int fatal_sigs[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT };
    for (size_t i = 0; i < sizeof fatal_sigs / sizeof *fatal_sigs; i++) signal(fatal_sigs[i], on_fatal);
    signal(SIGPIPE, SIG_IGN);

    if (queue_open(&t.q, err, sizeof err) != 0) {
        fprintf(stderr, "cmif: %s\n", err);
        goto out;
    }
    struct screen_options so = { .color = co->color, .mouse = 1 };
    if (t.headless) {
        devnull = fopen("/dev/null", "w");
        if (!devnull) {
            fprintf(stderr, "cmif: /dev/null: %s\n", strerror(errno));
            goto out;
        }
        so.out = devnull;
        so.cols = co->headless_cols;
        so.rows = co->headless_rows;
        so.term = "xterm";
        so.mouse = 0;
    }
    if (screen_open(&t.scr, &so, err, sizeof err) != 0) {
        fprintf(stderr, "cmif: %s\n", err);
        goto out;
    }
    struct input_options io = { .history_path = co->history ? hist_path : NULL, .fetch = nested_fetch,
                                .ctx = &t };
    if (input_open(&t.in, &io, err, sizeof err) != 0) {
        screen_close(t.scr);
        t.scr = NULL;
        fprintf(stderr, "cmif: %s\n", err);
        goto out;
    }
    /* Library messages on stderr would scribble over the screen: show them as notices. */
    int ep[2];
    if (pipe2(ep, O_CLOEXEC) == 0) {
        t.saved_stderr = dup(2);
        if (t.saved_stderr >= 0 && dup2(ep[1], 2) >= 0) {
            t.err_r = ep[0];
            fcntl(t.err_r, F_SETFL, O_NONBLOCK);
        } else {
            close(ep[0]);
            if (t.saved_stderr >= 0) close(t.saved_stderr);
            t.saved_stderr = -1;
        }
        close(ep[1]);
    }
    t.sess = (struct cmds_session){ .chat = e->chat, .core = e->core, .model_name = e->name,
                                    .device_name = dec_device_name(e->dec), .print = tui_print,
                                    .toggle_panel = tui_toggle, .cleared = tui_cleared, .ctx = &t };
    {
        char msg[768];
        snprintf(msg, sizeof msg,
                 "cmif %s: %s (%s template, %d-token context) on %s. Your messages are "
                 "sanitized (%s, ε %g per token, budget %g) before the model sees them. "
                 "/help lists commands; Ctrl-D quits.",
                 CMIF_VERSION, e->name, tmpl_name(chat_template(e->chat)), chat_ctx(e->chat),
                 dec_device_name(e->dec), core_mech_name(core_mechanism(e->core)), core_eps(e->core),
                 core_budget_total(e->core));
        note(&t, TR_INFO, msg);
        if (dec_fallback_note(e->dec)) note(&t, TR_INFO, dec_fallback_note(e->dec));
        if (co->core.seeded)
            note(&t, TR_ERROR, "--dp-seed: the sanitizer's noise is reproducible: NOT private");
        if (co->history_off[0]) note(&t, TR_ERROR, co->history_off);
    }
    refresh_info(&t, 1);
    int stdin_open = 1;
    rc = EXIT_OK;
    while (!t.quit) {
        drain_stderr(&t);
        screen_draw(t.scr, t.in);
        struct pollfd pf[4] = {
            { stdin_open ? 0 : -1, POLLIN, 0 }, { queue_fd(t.q), POLLIN, 0 },
            { t.sig_r, POLLIN, 0 }, { t.err_r, POLLIN, 0 },
        };
        int pr = poll(pf, 4, -1);
        if (pr < 0 && errno != EINTR) {
            rc = EXIT_RUNTIME;
            break;
        }
        if (pr > 0 && (pf[2].revents & POLLIN)) {
            unsigned char sig;
            while (read(t.sig_r, &sig, 1) == 1) {
                if (sig == SIGUSR1) dump(&t);
                else {
                    t.exit_sig = sig;
                    t.quit = 1;
                }
            }
        }
        /* Keys (also after EINTR: a resize arrives as KEY_RESIZE). */
        int got = 0, ch;
        while ((ch = screen_key(t.scr, 0)) != ERR) {
            handle_key(&t, ch);
            got = 1;
        }
        if (pr > 0 && (pf[0].revents & (POLLIN | POLLHUP)) && !got) {
            /* Readable but nothing read: end of input (headless key pipe closed). */
            stdin_open = 0;
            t.eof_in = 1;
        }
        input_pump(t.in);
        char matches[512];
        if (input_matches(t.in, matches, sizeof matches)) note(&t, TR_INFO, matches);
        if (t.cancel) {
            input_cancel(t.in);
            t.cancel = 0;
        }
        char *line;
        int eof = 0;
        while ((line = input_take(t.in, &eof))) handle_line(&t, line);
        if (eof) t.quit = 1;
        struct queue_item *it;
        while ((it = queue_pop(t.q))) {
            handle_event(&t, it);
            queue_item_free(it);
        }
        if (t.eof_in && !chat_busy(t.e->chat)) {
            /* Drain what the generation thread still posted, then leave. */
            while ((it = queue_pop(t.q))) {
                handle_event(&t, it);
                queue_item_free(it);
            }
            t.quit = 1;
        }
    }
    if (chat_busy(e->chat)) chat_stop(e->chat);
    chat_join(e->chat);
    {
        struct queue_item *it;
        while ((it = queue_pop(t.q))) {
            handle_event(&t, it);
            queue_item_free(it);
        }
    }
    drain_stderr(&t);
    screen_draw(t.scr, t.in);
    dump(&t);
out:
    if (t.in) input_close(t.in);
    if (t.scr) screen_close(t.scr);
    if (t.saved_stderr >= 0) {
        dup2(t.saved_stderr, 2);
        close(t.saved_stderr);
    }
    if (t.err_r >= 0) close(t.err_r);
    if (devnull) fclose(devnull);
    cmds_session_free(&t.sess);
    queue_close(t.q);
    g_sig_w = -1;
    close(sp[0]);
    close(sp[1]);
    if (t.exit_sig) {
        engine_close(e);
        signal(t.exit_sig, SIG_DFL);
        raise(t.exit_sig);
    }
    return rc;
}

static int cmd_chat_exec(int argc, char **argv)
{
    struct opts o;
    struct chat_opts co;
    char err[1024] = "";
    memset(&co, 0, sizeof co);
    core_defaults(&co.core);
    co.color = !(getenv("NO_COLOR") && *getenv("NO_COLOR"));
    co.history = 1;
    opts_defaults(&o);
    /* A base model rarely ends its answer: without a cap its first answer would fill the
     * whole context and push the conversation out. -n -1 still asks for "until the end". */
    o.n_predict = CHAT_DEFAULT_PREDICT;
    int r = opts_parse(&o, argc, argv, OPT_ENGINE | OPT_PREDICT | OPT_SAMPLING, extras, on_extra,
                       &co, err, sizeof err);
    if (r == 1) {
        usage(stdout);
        return EXIT_OK;
    }
    if (r < 0 || o.n_args > 0) {
        fprintf(stderr, "cmif: %s\n", r < 0 ? err : "unexpected argument (messages go in the chat)");
        fprintf(stderr, "usage: cmif [chat] [-m MODEL.gguf] [OPTIONS]; cmif --help lists them\n");
        return EXIT_USAGE;
    }
    char mbuf[4200];
    const char *model = find_model(o.model, mbuf, sizeof mbuf);
    if (!model) {
        fprintf(stderr, "cmif: no model given. Pass one with -m MODEL.gguf (or set CMIF_MODEL);\n"
                        "  e.g. cmif -m ../shared/models/stories260K.gguf\n"
                        "  (the bundled default %s was found neither under the current\n"
                        "  directory nor under the directory above the cmif binary)\n", DEFAULT_MODEL);
        return EXIT_USAGE;
    }
    int tty = isatty(0) && isatty(1);
    int scripted = co.script || (!isatty(0) && !co.headless_cols);
    if (!scripted && !tty && !co.headless_cols) {
        fprintf(stderr, "cmif: stdout is not a terminal: use --script FILE or pipe messages to stdin\n");
        return EXIT_USAGE;
    }
    if ((co.report_json || co.report_file) && !scripted) {
        fprintf(stderr, "cmif: --report and --report-file apply to scripted sessions (--script)\n");
        return EXIT_USAGE;
    }
    FILE *sf = NULL;
    if (co.script && !(sf = strcmp(co.script, "-") ? fopen(co.script, "r") : stdin)) {
        fprintf(stderr, "cmif: %s: %s\n", co.script, strerror(errno));
        return EXIT_RUNTIME;
    }
    setlocale(LC_ALL, "");
    if (!scripted) co.core.quiet = 1;   /* progress lines would land on the screen */
    char hist[4096] = "";
    if (!scripted && co.history &&
        xdg_path(XDG_STATE, "history", 1, hist, sizeof hist, err, sizeof err) != 0) {
        /* Said in the transcript: stderr printed now would be hidden by the screen. */
        snprintf(co.history_off, sizeof co.history_off,
                 "%.500s: the input history is kept for this session only", err);
        co.history = 0;
    }
    struct engine e;
    if (engine_open(&e, model, &o, &co, err, sizeof err) != 0) {
        fprintf(stderr, "cmif: %s\n", err);
        if (sf && sf != stdin) fclose(sf);
        return EXIT_RUNTIME;
    }
    int rc;
    if (scripted) {
        if (dec_fallback_note(e.dec)) fprintf(stderr, "cmif: %s\n", dec_fallback_note(e.dec));
        rc = run_script(&e, sf ? sf : stdin, co.script ? co.script : "stdin", &co);
    } else {
        rc = run_tui(&e, &co, hist);
    }
    if (sf && sf != stdin) fclose(sf);
    engine_close(&e);
    return rc;
}

const struct cmd_entry cmd_chat_entry = {
    "chat",
    "chat [-m MODEL] [--script FILE [--report json]] [--eps E] [--budget B] [--template T] ...",
    "the confidential chat (default): full screen, or scripted with --script / piped stdin",
    cmd_chat_exec,
};
