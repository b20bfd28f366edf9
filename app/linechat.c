/* The line-mode chat; see app/linechat.h. */
#include "app/linechat.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/chat.h"
#include "app/cmd.h"
#include "app/commands.h"
#include "core/core.h"
#include "ui/plain.h"

/* The chat whose answer Ctrl-C stops (chat_stop only stores an atomic flag). */
static struct chat *g_chat;

static void on_sigint(int sig)
{
    (void)sig;
    if (g_chat) chat_stop(g_chat);
}

void linechat_summary(const struct chat *chat, char *out, size_t cap)
{
    size_t n;
    double eps;
    const struct core_tok_report *rep = chat_last_report(chat, &n, &eps);
    size_t typed = 0, san = 0, repl = 0, rnd = 0;
    for (size_t i = 0; i < n; i++) {
        switch (rep[i].kind) {
        case CORE_TOK_PUBLIC:
        case CORE_TOK_CONTROL: typed++; break;
        case CORE_TOK_RANDOM: rnd++; break;
        case CORE_TOK_REPLACED: repl++; san++; break;
        default: san++; break;
        }
    }
    double spent, total, e;
    chat_budget_snapshot(chat, &spent, &total, &e);
    struct core *core = chat_core(chat);
    snprintf(out, cap,
             "privacy: %zu %s%s: %zu as typed, %zu sanitized (%zu replaced), %zu random; "
             "ε %.4g; spent %.4g of %.4g %s%s",
             n, core_unit_name(core_unit(core)), n == 1 ? "" : "s", typed, san, repl, rnd, eps,
             spent, total, core_has_ledger(core) ? "today" : "this session",
             core_mechanism(core) == CORE_MECH_NONE ? " (NOT SANITIZED)" : "");
    size_t nsys = chat_last_report_system(chat);
    size_t len = strlen(out);
    if (nsys && len + 4 < cap) {
        out[len++] = ';';
        out[len++] = ' ';
        chat_system_note(chat, nsys, out + len, cap - len);
    }
}

struct run {
    struct plain *pl;
    const struct chat *chat;
};

static void on_text(void *ctx, const char *s, size_t n)
{
    struct run *r = ctx;
    plain_piece(r->pl, s, n);
}

static void on_info(void *ctx, const char *msg)
{
    struct run *r = ctx;
    plain_note(r->pl, msg);
}

static void on_report(void *ctx)
{
    struct run *r = ctx;
    char line[512];
    linechat_summary(r->chat, line, sizeof line);
    plain_note(r->pl, line);
}

struct retry_ctx {
    struct chat *chat;
    struct plain *pl;
};

static void line_print(void *ctx, int level, const char *msg)
{
    struct retry_ctx *rc = ctx;
    if (level == CMDS_ERROR) {
        char m[2100];
        snprintf(m, sizeof m, "error: %s", msg);
        plain_note(rc->pl, m);
    } else {
        plain_note(rc->pl, msg);
    }
}

/* /retry here: the new answer streams right away. */
static int line_retry(void *ctx, char *err, size_t errlen)
{
    struct retry_ctx *rc = ctx;
    struct run r = { rc->pl, rc->chat };
    struct chat_cb cb = { on_text, on_info, NULL, &r };
    int st = chat_retry(rc->chat, &cb, err, errlen);
    plain_end_answer(rc->pl);
    if (st == CHAT_STOPPED) plain_note(rc->pl, "stopped: the session goes on");
    return st < 0 ? -1 : 0;
}

/* Appends n bytes to the message being gathered. 0 or -1. */
static int gather(char **msg, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t nc = *cap ? *cap * 2 : 256;
        while (nc < *len + n + 1) nc *= 2;
        /* Not realloc: the outgrown copy held what the user typed and is wiped. */
        char *nm = malloc(nc);
        if (!nm) return -1;
        if (*msg) {
            memcpy(nm, *msg, *len);
            core_wipe(*msg, *cap);
            free(*msg);
        }
        *msg = nm;
        *cap = nc;
    }
    memcpy(*msg + *len, s, n);
    *len += n;
    (*msg)[*len] = 0;
    return 0;
}

static int is_fence(const char *s, size_t n)
{
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
    while (n && (*s == ' ' || *s == '\t')) s++, n--;
    return n == 3 && !memcmp(s, "\"\"\"", 3);
}

int linechat_run(struct chat *chat, struct cmds_session *sess, struct plain *pl,
                 const struct linechat_opts *o)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);   /* no SA_RESTART: Ctrl-C at the prompt ends the read */
    g_chat = chat;
    sigaction(SIGINT, &sa, &old);
    char *line = NULL, *msg = NULL;
    size_t lcap = 0, mlen = 0, mcap = 0;
    int block = 0, cont = 0, status = EXIT_OK;
    char err[1024];
    /* /retry answers here; /edit and /copy fall back to what commands do without a screen. */
    struct retry_ctx rctx = { chat, pl };
    struct cmds_session saved = *sess;
    sess->print = line_print;
    sess->retry = line_retry;
    sess->ctx = &rctx;
    for (;;) {
        if (o->prompt) {
            fputs(block || cont ? "... " : ">>> ", o->prompt);
            fflush(o->prompt);
        }
        errno = 0;
        ssize_t got = getline(&line, &lcap, o->in);
        if (got < 0) {
            if (errno == EINTR && !feof(o->in)) {
                /* Ctrl-C at the prompt: forget the message being gathered. */
                clearerr(o->in);
                if (o->prompt) fputc('\n', o->prompt);
                if (msg) core_wipe(msg, mcap);
                mlen = 0;
                block = cont = 0;
                continue;
            }
            break;
        }
        size_t n = (size_t)got;
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
        if (!block && !cont && is_fence(line, n)) {
            block = 1;
            continue;
        }
        if (block) {
            if (is_fence(line, n)) block = 0;
            else if ((mlen && gather(&msg, &mlen, &mcap, "\n", 1)) ||
                     gather(&msg, &mlen, &mcap, line, n)) {
                status = EXIT_RUNTIME;
                break;
            }
            if (block) continue;
        } else {
            int more = n && line[n - 1] == '\\';
            if ((cont && gather(&msg, &mlen, &mcap, "\n", 1)) ||
                gather(&msg, &mlen, &mcap, line, more ? n - 1 : n)) {
                status = EXIT_RUNTIME;
                break;
            }
            cont = more;
            if (cont) continue;
        }
        const char *p = msg;
        while (p && (*p == ' ' || *p == '\t' || *p == '\n')) p++;
        if (!p || !*p) {
            mlen = 0;
            continue;
        }
        if (cmds_check_length(msg, err, sizeof err) != 0) {
            plain_note(pl, err);
        } else {
            cmds_record(sess, msg);
            if (o->echo) plain_user(pl, msg);
            if (cmds_is_command(msg)) {
                if (cmds_run(sess, msg, 0) == CMDS_QUIT) break;
            } else {
                struct run r = { pl, chat };
                struct chat_cb cb = { on_text, on_info, on_report, &r };
                int rc = chat_send(chat, msg, &cb, err, sizeof err);
                plain_end_answer(pl);
                if (rc == CHAT_STOPPED) plain_note(pl, "stopped: the session goes on");
                else if (rc == CORE_EBUDGET) {
                    char m[1200];
                    snprintf(m, sizeof m, "message not sent: %s", err);
                    plain_note(pl, m);
                } else if (rc < 0) plain_note(pl, err);
            }
        }
        core_wipe(msg, mcap);
        mlen = 0;
    }
    if (line) core_wipe(line, lcap);
    free(line);
    if (msg) core_wipe(msg, mcap);
    free(msg);
    sigaction(SIGINT, &old, NULL);
    g_chat = NULL;
    sess->print = saved.print;
    sess->retry = saved.retry;
    sess->ctx = saved.ctx;
    if (o->prompt && feof(o->in)) fputc('\n', o->prompt);
    return status;
}
