/* The full-screen chat's event loop; see app/tui.h. */
#include "app/tui.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curses.h>

#include "app/chat.h"
#include "app/cmd.h"
#include "app/commands.h"
#include "app/histfile.h"
#include "app/restore.h"
#include "app/savefile.h"
#include "app/template.h"
#include "core/core.h"
#include "gpu/decoder.h"
#include "ui/input.h"
#include "ui/queue.h"
#include "ui/screen.h"

/* The write end of the signal pipe: the one piece of state a signal handler must reach.
 * Set while tui_run runs, -1 otherwise. */
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
    const struct tui_options *o;
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
    /* Kept from the last idle moment for the status line and the panel: the core is
     * asked only while no turn runs (/mechanism cannot run during one). */
    char summary[sizeof ((struct core_status *)0)->summary];
    const char *mech;
    int unsanitized;              /* mechanism none in force */
    const char **cmd_names;       /* the /command names for Tab completion */
    /* The values Tab completes after /mechanism, /sanitize and /set */
    const char *mech_names[CORE_MECH_NONE + 2];
    const char *scope_names[CORE_SCOPE_MARKED + 2];
    struct input_args cmd_args[4];
    int previewing;               /* the panel shows the line being typed */
    /* Substitutes of the user's words sent in this conversation: an answer that repeats one
     * shows the user's word, marked (this screen only); restore_on: /restore on|off. */
    struct restore *rst;
    int restore_on;
    /* Enter while an answer streams: the message waits here and goes out when the answer
     * ends; what the transcript would say meanwhile waits in `later` (a notice added while
     * the answer streams would cut the answer in two). */
    char *queued;
    int defer;
    struct later { int style; char *text; } *later;
    size_t nlater, later_cap;
};

/* How a restored word is marked in the transcript: the user's word between ⟨ ⟩. */
#define RESTORE_OPEN "⟨"
#define RESTORE_CLOSE "⟩"

static void note(struct tui *t, int style, const char *msg)
{
    if (t->defer) {
        if (t->nlater == t->later_cap) {
            size_t nc = t->later_cap ? t->later_cap * 2 : 8;
            struct later *nl = realloc(t->later, nc * sizeof *nl);
            if (!nl) return;
            t->later = nl;
            t->later_cap = nc;
        }
        char *c = strdup(msg);
        if (!c) return;
        t->later[t->nlater++] = (struct later){ style, c };
        return;
    }
    transcript_add(screen_transcript(t->scr), style, msg, strlen(msg));
    /* Your own message brings the view back to the end; a notice (the end of an answer)
     * leaves a scrolled-back view where it is. */
    if (style == TR_USER) screen_transcript(t->scr)->scroll = 0;
}

static void tui_print(void *ctx, int level, const char *msg)
{
    note(ctx, level == CMDS_ERROR ? TR_ERROR : TR_INFO, msg);
}

static void tui_set_restore(void *ctx, int on)
{
    struct tui *t = ctx;
    t->restore_on = on;
}

static int tui_set_markdown(void *ctx, int on)
{
    struct tui *t = ctx;
    struct transcript *tr = screen_transcript(t->scr);
    if (on >= 0 && transcript_set_markdown(tr, on) != 0)
        note(t, TR_ERROR, "out of memory: answers are shown as written");
    return tr->markdown;
}

/* restore_feed's output: into the streamed answer, a restored word marked. */
static void restored_piece(void *ctx, const char *s, size_t n, const char *orig)
{
    struct transcript *tr = screen_transcript(((struct tui *)ctx)->scr);
    if (!orig) {
        transcript_append(tr, s, n);
        return;
    }
    transcript_append(tr, RESTORE_OPEN, strlen(RESTORE_OPEN));
    transcript_append(tr, orig, strlen(orig));
    transcript_append(tr, RESTORE_CLOSE, strlen(RESTORE_CLOSE));
}

static void q_text(void *ctx, const char *s, size_t n);
static void q_info(void *ctx, const char *msg);
static void q_report(void *ctx);
static void q_done(void *ctx, int status, double tps, const char *err);

/* /retry: the new answer streams as any other. */
static int tui_retry(void *ctx, char *err, size_t errlen)
{
    struct tui *t = ctx;
    struct chat_cb cb = { q_text, q_info, NULL, t };
    return chat_submit(t->o->chat, NULL, &cb, q_done, err, errlen);
}

static void tui_edit(void *ctx, const char *text)
{
    struct tui *t = ctx;
    input_set_line(t->in, text);
}

static int tui_copy(void *ctx, const char *text, size_t n)
{
    struct tui *t = ctx;
    return screen_clipboard(t->scr, text, n);
}

static void tui_toggle(void *ctx)
{
    struct tui *t = ctx;
    screen_toggle_panel(t->scr);
}

/* An entry of the sealed history file, recalled with Up. */
static void recall(void *ctx, const char *line)
{
    char err[128];
    input_history_add(ctx, line, err, sizeof err);
}

/* The panel's header figures (the rows are set by the caller). */
static void panel_head(struct tui *t, struct panel_data *pd, double spent, double total,
                       double eps)
{
    pd->eps = eps;
    pd->spent = spent;
    pd->total = total;
    pd->mechanism = t->mech;
    pd->unit = core_unit_name(core_unit(t->o->core));
    pd->day = core_has_ledger(t->o->core);
    pd->unsanitized = t->unsanitized;
}

static void tui_cleared(void *ctx)
{
    struct tui *t = ctx;
    /* A new conversation: what was typed is no longer recalled (the file keeps its copy). */
    input_history_clear(t->in);
    transcript_clear(screen_transcript(t->scr));
    restore_forget(t->rst);
    struct panel_data pd = { 0 };
    t->mech = core_mech_name(core_mechanism(t->o->core));
    t->unsanitized = core_mechanism(t->o->core) == CORE_MECH_NONE;
    panel_head(t, &pd, core_budget_spent(t->o->core), core_budget_total(t->o->core),
               core_eps(t->o->core));
    screen_set_panel(t->scr, &pd);
}

/* The panel's row for one token of the core's report (the pieces as they are: the panel
 * bounds and sanitizes them when it draws). */
static void panel_tok_from(struct panel_tok *p, const struct core_tok_report *r)
{
    _Static_assert(sizeof p->orig == sizeof r->orig && sizeof p->sent == sizeof r->sent,
                   "panel pieces hold what the core reports");
    memcpy(p->orig, r->orig, sizeof p->orig);
    memcpy(p->sent, r->sent, sizeof p->sent);
    switch (r->kind) {
    case CORE_TOK_KEPT: p->kind = PANEL_KEPT; break;
    case CORE_TOK_REPLACED: p->kind = PANEL_REPLACED; break;
    case CORE_TOK_PUBLIC: p->kind = PANEL_PUBLIC; break;
    case CORE_TOK_CONTROL: p->kind = PANEL_CONTROL; break;
    case CORE_TOK_RANDOM: p->kind = PANEL_RANDOM; break;
    case CORE_TOK_PLANNED: p->kind = PANEL_PLANNED; break;
    default: p->kind = -1; break;   /* drawn as '?' */
    }
    p->eps = r->eps;
}

/* Status and panel totals; the core is asked only while no turn runs. */
static void refresh_info(struct tui *t, int with_report)
{
    int busy = chat_busy(t->o->chat);
    double spent, total, eps;
    struct core_status st;
    if (!busy) {
        t->mech = core_mech_name(core_mechanism(t->o->core));
        t->unsanitized = core_mechanism(t->o->core) == CORE_MECH_NONE;
        spent = core_budget_spent(t->o->core);
        total = core_budget_total(t->o->core);
        eps = core_eps(t->o->core);
        core_status(t->o->core, &st);
        snprintf(t->summary, sizeof t->summary, "%s", st.summary);
    } else {
        chat_budget_snapshot(t->o->chat, &spent, &total, &eps);
    }
    struct status_info si = { .model = t->o->model_name, .device = dec_device_name(t->o->dec),
                              .tps = chat_last_tps(t->o->chat), .core = t->summary, .eps = eps,
                              .spent = spent, .total = total, .busy = busy,
                              .unit = core_unit_name(core_unit(t->o->core)),
                              .day = core_has_ledger(t->o->core), .unsanitized = t->unsanitized };
    screen_set_status(t->scr, &si);
    if (with_report) {
        struct panel_data pd = { 0 };
        const struct core_tok_report *rep = chat_last_report(t->o->chat, &pd.n, &pd.msg_eps);
        struct panel_tok *rows = pd.n ? calloc(pd.n, sizeof *rows) : NULL;
        if (!rows) pd.n = 0;
        for (size_t i = 0; i < pd.n; i++) panel_tok_from(&rows[i], &rep[i]);
        pd.rep = rows;
        pd.n_system = pd.n ? chat_last_report_system(t->o->chat) : 0;
        panel_head(t, &pd, spent, total, eps);
        t->previewing = 0;
        screen_set_panel(t->scr, &pd);
        /* The screen keeps its own copy; this one held what the user typed. */
        if (rows) core_wipe(rows, pd.n * sizeof *rows);
        free(rows);
    }
}

static void handle_key(struct tui *t, int ch)
{
    switch (ch) {
    case KEY_RESIZE: screen_resize(t->scr); return;
    case KEY_PPAGE: screen_scroll_pages(t->scr, 1); return;
    case KEY_NPAGE: screen_scroll_pages(t->scr, -1); return;
    case KEY_END:   /* scrolled back: End follows the answer again; else the line's end */
        if (screen_transcript(t->scr)->scroll > 0) {
            screen_transcript(t->scr)->scroll = 0;
            return;
        }
        input_key(t->in, ch);
        return;
    case KEY_MOUSE: screen_scroll_rows(t->scr, 3 * screen_wheel(t->scr)); return;
    case KEY_F(2): screen_toggle_panel(t->scr); return;
    case 12: screen_repaint(t->scr); return;   /* Ctrl-L */
    case 3:                                     /* Ctrl-C */
        if (chat_busy(t->o->chat)) {
            chat_stop(t->o->chat);
            note(t, TR_INFO, "stopping the answer…");
        } else {
            t->cancel = 1;
        }
        return;
    default: input_key(t->in, ch); return;
    }
}

/* The line being typed changed: the panel shows what Enter would do to each word, from
 * the core's preview (no noise is drawn). Not while a turn runs (the core is busy) and not
 * for /commands; an emptied line brings back the last message's report. */
static void on_line_changed(void *ctx, const char *line)
{
    struct tui *t = ctx;
    if (chat_busy(t->o->chat)) return;
    const char *p = line;
    while (*p == ' ' || *p == '\t') p++;
    if (!*p || cmds_is_command(line)) {
        if (t->previewing) refresh_info(t, 1);
        return;
    }
    enum { MAX_ROWS = 256 };
    struct core_tok_report *rows = calloc(MAX_ROWS, sizeof *rows);
    struct panel_tok *pr = calloc(MAX_ROWS, sizeof *pr);
    struct panel_data pd = { 0 };
    char err[256];
    if (rows && pr &&
        core_preview(t->o->core, line, strlen(line), rows, MAX_ROWS, &pd.n, &pd.msg_eps, err,
                     sizeof err) == 0) {
        for (size_t i = 0; i < pd.n; i++) {
            panel_tok_from(&pr[i], &rows[i]);
            /* No noise is drawn before Enter: the "sent" column says what will happen. */
            const char *what = rows[i].kind == CORE_TOK_PLANNED  ? "(sanitized)"
                               : rows[i].kind == CORE_TOK_RANDOM ? "(random)"
                                                                 : "(as typed)";
            snprintf(pr[i].sent, sizeof pr[i].sent, "%s", what);
        }
        pd.rep = pr;
        pd.preview = 1;
        panel_head(t, &pd, core_budget_spent(t->o->core), core_budget_total(t->o->core),
                   core_eps(t->o->core));
        screen_set_panel(t->scr, &pd);
        t->previewing = 1;
    }
    if (rows) core_wipe(rows, MAX_ROWS * sizeof *rows);
    if (pr) core_wipe(pr, MAX_ROWS * sizeof *pr);
    free(rows);
    free(pr);
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

/* chat_submit's callbacks run on the generation thread: they only post to the queue,
 * which wakes the poll loop; handle_event then acts on the UI thread. */
static void q_text(void *ctx, const char *s, size_t n)
{
    struct tui *t = ctx;
    queue_push(t->q, QUEUE_TEXT, 0, 0, s, n);
}

static void q_info(void *ctx, const char *msg)
{
    struct tui *t = ctx;
    queue_push(t->q, QUEUE_INFO, 0, 0, msg, strlen(msg));
}

static void q_report(void *ctx)
{
    struct tui *t = ctx;
    queue_push(t->q, QUEUE_REPORT, 0, 0, NULL, 0);
}

static void q_done(void *ctx, int status, double tps, const char *err)
{
    struct tui *t = ctx;
    queue_push(t->q, QUEUE_DONE, status, tps, err, err ? strlen(err) : 0);
}

/* The answer ended: what was said meanwhile, then the queued message. */
static void after_answer(struct tui *t)
{
    for (size_t i = 0; i < t->nlater; i++) {
        note(t, t->later[i].style, t->later[i].text);
        core_wipe(t->later[i].text, strlen(t->later[i].text));
        free(t->later[i].text);
    }
    t->nlater = 0;
    if (t->queued && !chat_busy(t->o->chat)) {
        char err[512], *m = t->queued;
        t->queued = NULL;
        note(t, TR_INFO, "sending your queued message");
        struct chat_cb cb = { q_text, q_info, q_report, t };
        if (chat_submit(t->o->chat, m, &cb, q_done, err, sizeof err) != 0) note(t, TR_ERROR, err);
        core_wipe(m, strlen(m));
        free(m);
        refresh_info(t, 0);
    }
}

static void handle_line(struct tui *t, char *line)
{
    char err[512];
    size_t l = strlen(line);
    /* While an answer streams nothing is written into the transcript: it would land inside
     * the answer. It is said when the answer ends (after_answer). */
    t->defer = chat_busy(t->o->chat);
    int blank = 1;
    for (size_t i = 0; i < l; i++)
        if (line[i] != ' ' && line[i] != '\t' && line[i] != '\n') blank = 0;
    if (blank) goto done;
    if (cmds_check_length(line, err, sizeof err) != 0) {
        note(t, TR_ERROR, err);
        goto done;
    }
    /* Up and Ctrl-R recall this session's inputs; --history also keeps them, sealed. */
    if (input_history_add(t->in, line, err, sizeof err) != 0) note(t, TR_ERROR, err);
    if (t->o->history && histfile_append(t->o->history, line, err, sizeof err) != 0)
        note(t, TR_ERROR, err);
    cmds_record(&t->sess, line);
    note(t, TR_USER, line);
    if (cmds_is_command(line)) {
        int rc = cmds_run(&t->sess, line, chat_busy(t->o->chat));
        if (rc == CMDS_QUIT) t->quit = 1;
        refresh_info(t, 1);
        goto done;
    }
    if (chat_busy(t->o->chat)) {
        if (t->queued) {
            /* One message waits already: this one stays in the input line. */
            input_set_line(t->in, line);
            note(t, TR_ERROR, "a message was already queued while the answer streamed; the "
                              "next one stayed in the input line");
        } else if ((t->queued = strdup(line))) {
            note(t, TR_INFO, "queued while the answer streamed: sent when it ended");
        }
        goto done;
    }
    struct chat_cb cb = { q_text, q_info, q_report, t };
    if (chat_submit(t->o->chat, line, &cb, q_done, err, sizeof err) != 0) note(t, TR_ERROR, err);
    refresh_info(t, 0);
done:
    t->defer = 0;
    core_wipe(line, l);
    free(line);
}

static void handle_event(struct tui *t, struct queue_item *it)
{
    struct transcript *tr = screen_transcript(t->scr);
    switch (it->type) {
    case QUEUE_TEXT:
        if (t->restore_on) restore_feed(t->rst, it->text, it->len, restored_piece, t);
        else {
            restore_flush(t->rst, restored_piece, t);
            transcript_append(tr, it->text, it->len);
        }
        break;
    case QUEUE_INFO:
        restore_flush(t->rst, restored_piece, t);
        note(t, TR_INFO, it->text);
        break;
    case QUEUE_REPORT: {
        /* The last report stays as it is until the next message: safe to read here. */
        size_t n;
        const struct core_tok_report *rep = chat_last_report(t->o->chat, &n, NULL);
        if (chat_learn_substitutes(t->rst, rep, n) != 0) note(t, TR_ERROR, "out of memory");
        size_t nsys = chat_last_report_system(t->o->chat);
        if (nsys) {
            char msg[200];
            chat_system_note(t->o->chat, nsys, msg, sizeof msg);
            note(t, TR_INFO, msg);
        }
        refresh_info(t, 1);
        break;
    }
    case QUEUE_DONE:
        restore_flush(t->rst, restored_piece, t);
        chat_join(t->o->chat);
        transcript_end_answer(tr);
        if (it->status == CHAT_STOPPED) note(t, TR_INFO, "stopped: the session goes on");
        else if (it->status == CORE_EBUDGET) {
            /* Not "exhausted": the budget may be untouched and the message merely too
             * costly (chat.c words the advice for the chat). */
            char msg[1200];
            snprintf(msg, sizeof msg, "message not sent: %s",
                     it->text ? it->text : "privacy budget exceeded");
            note(t, TR_ERROR, msg);
        } else if (it->status < 0) note(t, TR_ERROR, it->text ? it->text : "error");
        refresh_info(t, 1);
        after_answer(t);
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
    if (!t->o->dump) return;
    char err[512];
    /* Rewritten at every SIGUSR1 and at exit: overwriting is the point, a link is not. */
    FILE *f = savefile_open_private(t->o->dump, SAVEFILE_OVERWRITE, err, sizeof err);
    if (!f) return;
    screen_dump(t->scr, f);
    fclose(f);
}

/* The /command names from the table, for Tab completion (NULL-terminated). */
static const char **command_names(void)
{
    size_t n = 0;
    while (cmds_table[n].name) n++;
    const char **names = calloc(n + 1, sizeof *names);
    for (size_t i = 0; names && i < n; i++) names[i] = cmds_table[i].name;
    return names;
}

/* The argument values Tab completes: mechanism names, sanitize modes, /set names. */
static void command_args(struct tui *t)
{
    int n = 0;
    for (int m = CORE_MECH_RNM; m <= CORE_MECH_NONE; m++) t->mech_names[n++] = core_mech_name(m);
    t->mech_names[n] = NULL;
    n = 0;
    for (int m = CORE_SCOPE_AUTO; m <= CORE_SCOPE_MARKED; m++) t->scope_names[n++] = core_scope_name(m);
    t->scope_names[n] = NULL;
    t->cmd_args[0] = (struct input_args){ "mechanism", t->mech_names };
    t->cmd_args[1] = (struct input_args){ "sanitize", t->scope_names };
    t->cmd_args[2] = (struct input_args){ "set", cmds_set_names };
    t->cmd_args[3] = (struct input_args){ NULL, NULL };
}

int tui_run(const struct tui_options *o, int *exit_sig)
{
    struct tui t;
    memset(&t, 0, sizeof t);
    t.o = o;
    t.mech = "";
    t.restore_on = 1;
    *exit_sig = 0;
    t.err_r = t.saved_stderr = -1;
    t.headless = o->headless_cols > 0;
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

    if (!(t.rst = restore_open())) {
        fprintf(stderr, "cmif: out of memory\n");
        goto out;
    }
    if (queue_open(&t.q, err, sizeof err) != 0) {
        fprintf(stderr, "cmif: %s\n", err);
        goto out;
    }
    struct screen_options so = { .color = o->color, .mouse = 1 };
    if (t.headless) {
        devnull = fopen("/dev/null", "w");
        if (!devnull) {
            fprintf(stderr, "cmif: /dev/null: %s\n", strerror(errno));
            goto out;
        }
        so.out = devnull;
        so.cols = o->headless_cols;
        so.rows = o->headless_rows;
        so.term = "xterm";
        so.mouse = 0;
    }
    if (screen_open(&t.scr, &so, err, sizeof err) != 0) {
        fprintf(stderr, "cmif: %s\n", err);
        goto out;
    }
    transcript_set_markdown(screen_transcript(t.scr), !o->plain);
    t.cmd_names = command_names();
    command_args(&t);
    struct input_options io = { .fetch = nested_fetch, .ctx = &t, .commands = t.cmd_names,
                                .args = t.cmd_args, .changed = on_line_changed };
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
    t.sess = (struct cmds_session){ .chat = o->chat, .core = o->core, .model_name = o->model_name,
                                    .ledger_path = o->ledger_path,
                                    .device_name = dec_device_name(o->dec), .print = tui_print,
                                    .toggle_panel = tui_toggle, .cleared = tui_cleared,
                                    .set_restore = tui_set_restore, .retry = tui_retry,
                                    .edit = tui_edit, .copy = tui_copy, .ctx = &t,
                                    .set_markdown = tui_set_markdown };
    {
        char msg[768];
        snprintf(msg, sizeof msg,
                 "cmif %s: %s (%s template, %d-token context) on %s. Your messages are "
                 "sanitized (%s, %s, ε %g per %s, budget %.15g %s) before the model sees them; "
                 "the panel previews each word as you type. /help lists commands; Ctrl-D quits.",
                 CMIF_VERSION, o->model_name, tmpl_name(chat_template(o->chat)), chat_ctx(o->chat),
                 dec_device_name(o->dec), core_mech_name(core_mechanism(o->core)),
                 core_scope_name(core_scope(o->core)), core_eps(o->core),
                 core_unit_name(core_unit(o->core)), core_budget_total(o->core),
                 core_has_ledger(o->core) ? "a day, in the ledger" : "this session, no ledger");
        note(&t, TR_INFO, msg);
        if (dec_fallback_note(o->dec)) note(&t, TR_INFO, dec_fallback_note(o->dec));
        if (o->seeded)
            note(&t, TR_ERROR, "--dp-seed: the sanitizer's noise is reproducible: NOT private");
        if (o->history_off && o->history_off[0]) note(&t, TR_ERROR, o->history_off);
        if (o->history && histfile_read(o->history, recall, t.in, err, sizeof err) != 0)
            note(&t, TR_ERROR, err);
        if (o->history_note && o->history_note[0]) note(&t, TR_INFO, o->history_note);
        /* A resumed conversation: shown as it was. */
        size_t ne;
        const struct chat_entry *ent = chat_entries(o->chat, &ne);
        for (size_t i = 0; i < ne; i++) {
            if (ent[i].role == CHAT_ASSISTANT) {
                transcript_append(screen_transcript(t.scr), ent[i].text, ent[i].len);
                transcript_end_answer(screen_transcript(t.scr));
            } else {
                transcript_add(screen_transcript(t.scr), ent[i].role == CHAT_USER ? TR_USER : TR_INFO,
                               ent[i].text, ent[i].len);
            }
        }
        if (o->resume_note) note(&t, TR_INFO, o->resume_note);
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
        if (t.eof_in && !chat_busy(t.o->chat)) {
            /* Drain what the generation thread still posted, then leave. */
            while ((it = queue_pop(t.q))) {
                handle_event(&t, it);
                queue_item_free(it);
            }
            t.quit = 1;
        }
    }
    if (chat_busy(o->chat)) chat_stop(o->chat);
    chat_join(o->chat);
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
    restore_close(t.rst);
    queue_close(t.q);
    g_sig_w = -1;
    close(sp[0]);
    close(sp[1]);
    free(t.cmd_names);
    for (size_t i = 0; i < t.nlater; i++) {
        core_wipe(t.later[i].text, strlen(t.later[i].text));
        free(t.later[i].text);
    }
    free(t.later);
    if (t.queued) core_wipe(t.queued, strlen(t.queued));
    free(t.queued);
    *exit_sig = t.exit_sig;
    return rc;
}
