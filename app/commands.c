/* The /commands table; see app/commands.h. */
#include "app/commands.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "app/chat.h"
#include "app/savefile.h"
#include "app/session.h"
#include "app/template.h"
#include "core/core.h"
#include "gpu/sampler.h"

static void out(struct cmds_session *s, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void out(struct cmds_session *s, int level, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (s->print) s->print(s->ctx, level, buf);
}

static int write_script(const struct cmds_session *s, FILE *f, const char *path, char *err,
                        size_t errlen);

static int c_help(struct cmds_session *s, const char *arg)
{
    (void)arg;
    char buf[2048];
    size_t n = 0;
    n += (size_t)snprintf(buf + n, sizeof buf - n, "commands:");
    for (int i = 0; cmds_table[i].name && n < sizeof buf; i++) {
        char head[64];
        snprintf(head, sizeof head, "/%s%s%s", cmds_table[i].name, *cmds_table[i].args ? " " : "",
                 cmds_table[i].args);
        n += (size_t)snprintf(buf + n, sizeof buf - n, "\n  %-19s %s", head, cmds_table[i].help);
    }
    if (n < sizeof buf)
        snprintf(buf + n, sizeof buf - n,
                 "\nkeys:"
                 "\n  Enter sends; a \\ at the end of a line continues the message"
                 "\n  Ctrl-C stops the answer; Ctrl-D quits"
                 "\n  PgUp/PgDn or the mouse wheel scroll; F2 shows or hides the panel"
                 "\n  Up/Down recall earlier inputs, Ctrl-R searches them; Tab completes"
                 "\n  /commands and the names /mechanism, /sanitize and /set take"
                 "\nsecrets: write {{ and }} around words to have them sanitized in any mode,"
                 "\n  e.g. my card is {{4111 1111}}; the panel shows each word's treatment as"
                 "\n  you type (P public, S will be sanitized, N random, C control)");
    out(s, CMDS_INFO, "%s", buf);
    return CMDS_OK;
}

static int parse_double(const char *s, double *v)
{
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    while (*end == ' ') end++;
    return end != s && !*end && errno == 0;
}

static int c_eps(struct cmds_session *s, const char *arg)
{
    double v;
    char err[256];
    if (!*arg) {
        out(s, CMDS_INFO, "ε per token: %g", core_eps(s->core));
        return CMDS_OK;
    }
    if (!parse_double(arg, &v) || !(v > 0) || v > 1e6) {
        out(s, CMDS_ERROR, "/eps: '%s' is not a positive number", arg);
        return CMDS_FAIL;
    }
    if (core_set_eps(s->core, v, err, sizeof err) != 0) {
        out(s, CMDS_ERROR, "/eps: %s", err);
        return CMDS_FAIL;
    }
    out(s, CMDS_INFO, "ε per token is now %g (applies from the next message)", core_eps(s->core));
    return CMDS_OK;
}

/* Today's figures against the daily limit (the session's without a ledger), then this
 * session's and the lifetime total. */
static void budget_line(struct core *c, char *buf, size_t cap)
{
    double tot = core_budget_total(c), sp = core_budget_spent(c), left = tot - sp;
    if (left < 0) left = 0;
    double e = core_eps(c);
    snprintf(buf, cap,
             "budget: ε %.4g spent of %.4g %s, %.4g left (about %.0f more sanitized %ss at ε %g)\n"
             "this session: ε %.4g; %s: ε %.4g",
             sp, tot, core_has_ledger(c) ? "today (rolling 24 hours, the ledger)"
                                         : "in this session (no ledger)",
             left, e > 0 ? left / e : 0.0, core_unit_name(core_unit(c)), e,
             core_budget_session(c), core_has_ledger(c) ? "lifetime" : "lifetime (this session)",
             core_budget_lifetime(c));
}

static int c_budget(struct cmds_session *s, const char *arg)
{
    char err[512], line[512];
    if (!*arg) {
        if (core_budget_refresh(s->core, err, sizeof err) != 0)
            out(s, CMDS_ERROR, "/budget: %s (the figures below are as last read)", err);
        budget_line(s->core, line, sizeof line);
        out(s, CMDS_INFO, "%s", line);
        return CMDS_OK;
    }
    if (!strcmp(arg, "reset") || !strcmp(arg, "reset!")) {
        if (!s->ledger_path) {
            out(s, CMDS_ERROR, "/budget reset: there is no ledger in this session (--no-ledger): "
                               "nothing to reset");
            return CMDS_FAIL;
        }
        if (strcmp(arg, "reset!") != 0) {
            out(s, CMDS_INFO,
                "/budget reset forgets every charge of the ledger %s: today's and the lifetime "
                "total go back to 0. The privacy already spent is NOT given back: what was sent "
                "stays sent, and a new day of budget lets an observer learn more about the same "
                "secrets. Type /budget reset! to reset.", s->ledger_path);
            return CMDS_OK;
        }
        if (core_budget_reset(s->core, err, sizeof err) != 0) {
            out(s, CMDS_ERROR, "/budget reset: %s", err);
            return CMDS_FAIL;
        }
        out(s, CMDS_INFO, "ledger reset: every charge forgotten (today 0, lifetime 0); "
                          "charges go on into the new ledger.");
        return CMDS_OK;
    }
    double v;
    if (!parse_double(arg, &v) || !(v > 0)) {
        out(s, CMDS_ERROR, "/budget: '%s' is neither reset nor a positive number", arg);
        return CMDS_FAIL;
    }
    if (core_set_budget(s->core, v, err, sizeof err) != 0) {
        out(s, CMDS_ERROR, "/budget %s: %s", arg, err);
        return CMDS_FAIL;
    }
    budget_line(s->core, line, sizeof line);
    out(s, CMDS_INFO, "the limit is now ε %g %s\n%s", v,
        core_has_ledger(s->core) ? "a day (for this session; --budget sets it at start)"
                                 : "for this session", line);
    return CMDS_OK;
}

static int c_sanitize(struct cmds_session *s, const char *arg)
{
    char err[256];
    if (!*arg) {
        out(s, CMDS_INFO, "sanitize: %s (auto, all or marked; {{ }} marks a secret in every "
                          "mode)", core_scope_name(core_scope(s->core)));
        return CMDS_OK;
    }
    int m = core_scope_parse(arg);
    if (m < 0) {
        out(s, CMDS_ERROR, "/sanitize: '%s' is not auto, all or marked", arg);
        return CMDS_FAIL;
    }
    if (core_set_scope(s->core, m, err, sizeof err) != 0) {
        out(s, CMDS_ERROR, "/sanitize: %s", err);
        return CMDS_FAIL;
    }
    static const char *const what[] = {
        "common words are sent as typed; names, numbers, addresses and rare words are sanitized",
        "every word is sanitized",
        "only the words inside {{ }} are sanitized; everything else is sent as typed",
    };
    out(s, CMDS_INFO, "sanitize is now %s: %s (from the next message)", core_scope_name(m),
        what[m]);
    return CMDS_OK;
}

static int c_restore(struct cmds_session *s, const char *arg)
{
    int on;
    if (!strcmp(arg, "on")) on = 1;
    else if (!strcmp(arg, "off")) on = 0;
    else {
        out(s, CMDS_ERROR, "/restore: on or off");
        return CMDS_FAIL;
    }
    if (s->set_restore) s->set_restore(s->ctx, on);
    out(s, CMDS_INFO, on ? "restore on: a substitute the model repeats is shown as your own "
                           "word, marked (only on this screen)"
                         : "restore off: answers are shown exactly as the model wrote them");
    return CMDS_OK;
}

static int c_mechanism(struct cmds_session *s, const char *arg)
{
    char err[256];
    if (!*arg) {
        char names[256] = "";
        for (int m = CORE_MECH_RNM; m <= CORE_MECH_NONE; m++) {
            strncat(names, " ", sizeof names - strlen(names) - 1);
            strncat(names, core_mech_name(m), sizeof names - strlen(names) - 1);
        }
        out(s, CMDS_INFO, "mechanism: %s (available:%s)", core_mech_name(core_mechanism(s->core)),
            names);
        return CMDS_OK;
    }
    size_t al = strlen(arg);
    int confirmed = al && arg[al - 1] == '!';
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)(confirmed ? al - 1 : al), arg);
    int m = core_mech_parse(name);
    if (m == CORE_MECH_NONE && !confirmed) {
        out(s, CMDS_INFO, "/mechanism none turns sanitization OFF: your next messages go to the "
                          "model exactly as typed, names, numbers and all, and the status line "
                          "says NOT SANITIZED. Type /mechanism none! to do it.");
        return CMDS_OK;
    }
    if (m < 0) {
        out(s, CMDS_ERROR, "/mechanism: unknown mechanism '%s' (/mechanism lists them)", arg);
        return CMDS_FAIL;
    }
    if (core_set_mechanism(s->core, m, err, sizeof err) != 0) {
        out(s, CMDS_ERROR, "/mechanism: %s", err);
        return CMDS_FAIL;
    }
    if (m == CORE_MECH_NONE)
        out(s, CMDS_INFO, "mechanism is now none: messages are sent NOT SANITIZED "
                          "(/mechanism rnm turns it back on)");
    else out(s, CMDS_INFO, "mechanism is now %s", core_mech_name(m));
    return CMDS_OK;
}

static int c_panel(struct cmds_session *s, const char *arg)
{
    (void)arg;
    if (!s->toggle_panel) {
        out(s, CMDS_INFO, "/panel: no panel in a scripted session (use --report json)");
        return CMDS_OK;
    }
    s->toggle_panel(s->ctx);
    return CMDS_OK;
}

/* The settings /set changes, one line each ("temp 0.8"). */
static void settings_text(struct cmds_session *s, char *buf, size_t cap)
{
    struct sampler_params sp;
    int np;
    chat_sampling(s->chat, &sp, &np);
    char seed[32];
    if (sp.seed == SAMPLER_SEED_RANDOM) snprintf(seed, sizeof seed, "random");
    else snprintf(seed, sizeof seed, "%llu", (unsigned long long)sp.seed);
    snprintf(buf, cap,
             "settings (/set NAME VALUE):\n  temp %g\n  top-k %d\n  top-p %g\n  min-p %g\n"
             "  repeat-penalty %g\n  n %d%s\n  seed %s\n  eps %g (per %s)\n  mechanism %s\n"
             "  sanitize %s",
             sp.temp, sp.top_k, sp.top_p, sp.min_p, sp.repeat_penalty, np,
             np < 0 ? " (until the end of the answer)" : "", seed, core_eps(s->core),
             core_unit_name(core_unit(s->core)), core_mech_name(core_mechanism(s->core)),
             core_scope_name(core_scope(s->core)));
    size_t n = strlen(buf);
    if (s->set_markdown && n < cap)
        snprintf(buf + n, cap - n, "\n  markdown %s", s->set_markdown(s->ctx, -1) ? "on" : "off");
}

const char *const cmds_set_names[] = {
    "temp", "top-k", "top-p", "min-p", "repeat-penalty", "n", "seed", "eps", "mechanism",
    "sanitize", "markdown", NULL,
};

static int c_eps(struct cmds_session *s, const char *arg);
static FILE *open_target(struct cmds_session *s, const char *cmd, const char *arg, char *path,
                         size_t cap);
static int c_mechanism(struct cmds_session *s, const char *arg);
static int c_sanitize(struct cmds_session *s, const char *arg);

/* Display only: the answers' text (/copy, /save) is the same either way. */
static int set_markdown(struct cmds_session *s, const char *v)
{
    int on = !strcmp(v, "on");
    if (!on && strcmp(v, "off")) {
        out(s, CMDS_ERROR, "/set markdown: on or off");
        return CMDS_FAIL;
    }
    if (!s->set_markdown) {
        out(s, CMDS_ERROR, "/set markdown: answers are shown as written here (no screen)");
        return CMDS_FAIL;
    }
    s->set_markdown(s->ctx, on);
    out(s, CMDS_INFO, on ? "markdown on: answers are drawn as Markdown (bold, code, lists)"
                         : "markdown off: answers are shown exactly as the model wrote them");
    return CMDS_OK;
}

static int c_set(struct cmds_session *s, const char *arg)
{
    char name[32], buf[1024], err[256];
    size_t nl = strcspn(arg, " \t");
    const char *v = arg + nl;
    while (*v == ' ' || *v == '\t') v++;
    if (!*arg) {
        settings_text(s, buf, sizeof buf);
        out(s, CMDS_INFO, "%s", buf);
        return CMDS_OK;
    }
    snprintf(name, sizeof name, "%.*s", (int)(nl < sizeof name ? nl : sizeof name - 1), arg);
    if (!strcmp(name, "eps")) return *v ? c_eps(s, v) : (out(s, CMDS_ERROR, "/set eps: give a value"), CMDS_FAIL);
    if (!strcmp(name, "mechanism")) return *v ? c_mechanism(s, v) : (out(s, CMDS_ERROR, "/set mechanism: give a name"), CMDS_FAIL);
    if (!strcmp(name, "markdown")) return set_markdown(s, v);
    if (!strcmp(name, "sanitize")) return *v ? c_sanitize(s, v) : (out(s, CMDS_ERROR, "/set sanitize: auto, all or marked"), CMDS_FAIL);
    struct sampler_params sp;
    int np;
    chat_sampling(s->chat, &sp, &np);
    double d;
    int ok = *v && parse_double(v, &d);
    if (!strcmp(name, "temp") && ok && d >= 0 && d <= 100) sp.temp = (float)d;
    else if (!strcmp(name, "top-k") && ok && d >= 0 && d <= 1e6 && d == (int)d) sp.top_k = (int)d;
    else if (!strcmp(name, "top-p") && ok && d > 0 && d <= 1) sp.top_p = (float)d;
    else if (!strcmp(name, "min-p") && ok && d >= 0 && d <= 1) sp.min_p = (float)d;
    else if (!strcmp(name, "repeat-penalty") && ok && d > 0 && d <= 10) sp.repeat_penalty = (float)d;
    else if (!strcmp(name, "n") && ok && d >= -1 && d <= 1e6 && d == (int)d) np = (int)d;
    else if (!strcmp(name, "seed") && !strcmp(v, "random")) sp.seed = SAMPLER_SEED_RANDOM;
    else if (!strcmp(name, "seed") && ok && d >= 0 && d < 1.8e19 && d == (double)(uint64_t)d)
        sp.seed = strtoull(v, NULL, 10);
    else {
        int known = 0;
        for (int i = 0; cmds_set_names[i]; i++) known |= !strcmp(cmds_set_names[i], name);
        if (!known)
            out(s, CMDS_ERROR, "/set: unknown setting '%s' (temp, top-k, top-p, min-p, "
                               "repeat-penalty, n, seed, eps, mechanism, sanitize, markdown)", name);
        else out(s, CMDS_ERROR, "/set %s: '%s' is not a valid value", name, v);
        return CMDS_FAIL;
    }
    if (chat_set_sampling(s->chat, &sp, np, err, sizeof err) != 0) {
        out(s, CMDS_ERROR, "/set %s: %s", name, err);
        return CMDS_FAIL;
    }
    out(s, CMDS_INFO, "%s is now %s (from the next answer)", name, v);
    return CMDS_OK;
}

static int c_retry(struct cmds_session *s, const char *arg)
{
    (void)arg;
    char err[256];
    if (!s->retry) {
        out(s, CMDS_ERROR, "/retry: not available in a scripted session");
        return CMDS_FAIL;
    }
    if (!chat_last_message(s->chat)) {
        out(s, CMDS_ERROR, "/retry: nothing to retry: no message in this conversation yet");
        return CMDS_FAIL;
    }
    out(s, CMDS_INFO, "retry: a new answer to the same sanitized message; it costs no ε "
                      "(nothing new is sent)");
    if (s->retry(s->ctx, err, sizeof err) != 0) {
        out(s, CMDS_ERROR, "/retry: %s", err);
        return CMDS_FAIL;
    }
    return CMDS_OK;
}

static int c_edit(struct cmds_session *s, const char *arg)
{
    (void)arg;
    const char *m = chat_last_message(s->chat);
    if (!m) {
        out(s, CMDS_ERROR, "/edit: no message in this conversation yet");
        return CMDS_FAIL;
    }
    if (s->edit) {
        s->edit(s->ctx, m);
        out(s, CMDS_INFO, "your last message is in the input line: change it and press Enter "
                          "(what is new costs ε)");
    } else {
        out(s, CMDS_INFO, "your last message (this terminal cannot put it in the input line):"
                          "\n%s", m);
    }
    return CMDS_OK;
}

/* Writes the answer to a file only the user can read: FILE, or one cmif names in the
 * runtime directory. */
static int copy_to_file(struct cmds_session *s, const char *arg, const char *text, size_t n)
{
    char path[4200], err[600];
    FILE *f;
    if (*arg) {
        if (!(f = open_target(s, "copy", arg, path, sizeof path))) return CMDS_FAIL;
    } else {
        const char *dir = getenv("XDG_RUNTIME_DIR");
        if (!dir || !*dir) dir = getenv("TMPDIR");
        if (!dir || !*dir) dir = "/tmp";
        f = NULL;
        for (int i = 0; i < 100 && !f; i++) {
            snprintf(path, sizeof path, "%s/cmif-answer-%ld-%d.txt", dir, (long)getpid(), i);
            f = savefile_open_private(path, 0, err, sizeof err);
            if (!f && errno != EEXIST) break;
        }
        if (!f) {
            out(s, CMDS_ERROR, "/copy: %s", err);
            return CMDS_FAIL;
        }
    }
    int bad = fwrite(text, 1, n, f) != n;
    bad |= fclose(f) != 0;
    if (bad) {
        out(s, CMDS_ERROR, "/copy: %s: write failed", path);
        return CMDS_FAIL;
    }
    out(s, CMDS_INFO, "the last answer is in %s (readable only by you)", path);
    return CMDS_OK;
}

static int c_copy(struct cmds_session *s, const char *arg)
{
    size_t n;
    const char *a = chat_last_answer(s->chat, &n);
    if (!a) {
        out(s, CMDS_ERROR, "/copy: no answer to copy yet");
        return CMDS_FAIL;
    }
    if (!*arg && s->copy && s->copy(s->ctx, a, n) == 0) {
        out(s, CMDS_INFO, "the last answer was sent to the terminal's clipboard (OSC 52; a "
                          "terminal without it ignores it: /copy FILE writes a file)");
        return CMDS_OK;
    }
    return copy_to_file(s, arg, a, n);
}

/* The pieces of ids as /prompt shows them, into out when it is not NULL; returns the
 * length (without the NUL). Special tokens (BOS, the template's markers) in ⟦ ⟧, line breaks
 * as ⏎, other control bytes as \xNN. */
static size_t render_prompt(struct core *core, const int32_t *ids, size_t n, char *out)
{
    char piece[256], probe[8];
    size_t len = 0;
#define PUT(p, k) (out ? memcpy(out + len, (p), (k)) : NULL, len += (k))
    for (size_t i = 0; i < n; i++) {
        size_t pn = core_piece(core, NULL, ids[i], 1, piece, sizeof piece);
        if (pn > sizeof piece) pn = sizeof piece;
        int special = pn && core_piece(core, NULL, ids[i], 0, probe, sizeof probe) == 0;
        if (special) PUT("⟦", strlen("⟦"));
        for (size_t j = 0; j < pn; j++) {
            unsigned char ch = (unsigned char)piece[j];
            if (ch == '\n') PUT("⏎", strlen("⏎"));
            else if (ch < 0x20 || ch == 0x7f) {
                snprintf(probe, sizeof probe, "\\x%02x", ch);
                PUT(probe, 4);
            } else PUT(piece + j, 1);
        }
        if (special) PUT("⟧", strlen("⟧"));
    }
#undef PUT
    sodium_memzero(piece, sizeof piece);
    if (out) out[len] = 0;
    return len;
}

/* The last turn as the decoder received it: each token's piece in order. */
static int c_prompt(struct cmds_session *s, const char *arg)
{
    (void)arg;
    size_t n;
    const int32_t *ids = chat_last_prompt(s->chat, &n);
    if (!n) {
        out(s, CMDS_ERROR, "/prompt: no message sent in this conversation yet");
        return CMDS_FAIL;
    }
    char head[256];
    int hl = snprintf(head, sizeof head, "prompt of the last turn: %zu tokens as the decoder "
                      "received them (template, system prompt, your message as sanitized; ⟦ ⟧ "
                      "marks special tokens):\n", n);
    size_t len = (size_t)hl + render_prompt(s->core, ids, n, NULL);
    char *buf = malloc(len + 1);
    if (!buf) {
        out(s, CMDS_ERROR, "/prompt: out of memory");
        return CMDS_FAIL;
    }
    memcpy(buf, head, (size_t)hl);
    render_prompt(s->core, ids, n, buf + hl);
    if (s->print) s->print(s->ctx, CMDS_INFO, buf);
    sodium_memzero(buf, len);
    free(buf);
    return CMDS_OK;
}

static int c_show(struct cmds_session *s, const char *arg)
{
    (void)arg;
    struct core_status st;
    core_status(s->core, &st);
    const char *sys = chat_system(s->chat);
    char set[1024];
    settings_text(s, set, sizeof set);
    out(s, CMDS_INFO, "%s", set);
    out(s, CMDS_INFO,
        "model: %s\ndevice: %s\ntemplate: %s\ncontext: %d of %d tokens used\n"
        "core: %s\nregion: %zu bytes, %zu locked (RLIMIT_MEMLOCK %zu), %s\n"
        "swap: %llu pages out, %llu in, %llu tamper checks\n"
        "mechanism: %s, ε %g per token, budget %.4g of %.4g spent\nsystem: %s",
        s->model_name ? s->model_name : "?", s->device_name ? s->device_name : "?",
        tmpl_name(chat_template(s->chat)), chat_pos(s->chat), chat_ctx(s->chat), st.summary,
        st.region_bytes, st.bytes_locked, st.memlock_limit,
        st.secretmem ? "memfd_secret" : st.locked ? "mlock'd mapping" : "NOT locked",
        (unsigned long long)st.swap_pages_out, (unsigned long long)st.swap_pages_in,
        (unsigned long long)st.tamper_checks, core_mech_name(core_mechanism(s->core)),
        core_eps(s->core), core_budget_spent(s->core), core_budget_total(s->core),
        sys ? sys : "(none)");
    return CMDS_OK;
}

/* The file a /save-like command writes: "~/" expanded; an existing file only with a '!'. */
static FILE *open_target(struct cmds_session *s, const char *cmd, const char *arg, char *path,
                         size_t cap)
{
    char err[600];
    if (!*arg) {
        out(s, CMDS_ERROR, "/%s: which file? (/%s FILE)", cmd, cmd);
        return NULL;
    }
    if (savefile_expand(arg, path, cap) != 0) {
        out(s, CMDS_ERROR, "/%s: cannot expand the file name (HOME unset or too long)", cmd);
        return NULL;
    }
    FILE *f = savefile_open_private(path, s->bang ? SAVEFILE_OVERWRITE : 0, err, sizeof err);
    if (!f && errno == EEXIST)
        out(s, CMDS_ERROR, "/%s: %s (/%s! %s overwrites it)", cmd, err, cmd, arg);
    else if (!f) out(s, CMDS_ERROR, "/%s: %s", cmd, err);
    return f;
}

static int c_save(struct cmds_session *s, const char *arg)
{
    char err[512], path[4200];
    FILE *f = open_target(s, "save", arg, path, sizeof path);
    if (!f) return CMDS_FAIL;
    size_t pl = strlen(path);
    if (pl > 5 && !strcmp(path + pl - 5, ".json")) {
        if (session_write(s->chat, f, s->model_name, path, err, sizeof err) != 0) {
            out(s, CMDS_ERROR, "/save: %s", err);
            return CMDS_FAIL;
        }
        out(s, CMDS_INFO, "session saved to %s (transcript, sanitized inputs, settings, "
                          "privacy report; in clear, readable only by you): cmif --resume %s "
                          "goes on from here", path, path);
        return CMDS_OK;
    }
    if (chat_write_markdown(s->chat, f, s->model_name, path, err, sizeof err) != 0) {
        out(s, CMDS_ERROR, "/save: %s", err);
        return CMDS_FAIL;
    }
    out(s, CMDS_INFO, "transcript saved to %s (in clear, readable only by you)", path);
    return CMDS_OK;
}

static int c_save_history(struct cmds_session *s, const char *arg)
{
    char err[512], path[4200];
    FILE *f = open_target(s, "save-history", arg, path, sizeof path);
    if (!f) return CMDS_FAIL;
    if (write_script(s, f, path, err, sizeof err) != 0) {
        out(s, CMDS_ERROR, "/save-history: %s", err);
        return CMDS_FAIL;
    }
    out(s, CMDS_INFO,
        "%zu inputs saved to %s (replay with --script); the file holds what you typed in "
        "clear, readable only by you",
        s->ninputs, path);
    return CMDS_OK;
}

/* The inputs /save-history would write: what the user typed, wiped before it is freed. */
static void forget_inputs(struct cmds_session *s)
{
    for (size_t i = 0; i < s->ninputs; i++) {
        core_wipe(s->inputs[i], strlen(s->inputs[i]));
        free(s->inputs[i]);
    }
    s->ninputs = 0;
}

static int c_clear(struct cmds_session *s, const char *arg)
{
    (void)arg;
    chat_clear(s->chat);
    forget_inputs(s);      /* a new conversation keeps no copy of what was typed */
    if (s->cleared) s->cleared(s->ctx);
    out(s, CMDS_INFO, "new conversation (budget spent so far stays spent: %.4g of %.4g)",
        core_budget_spent(s->core), core_budget_total(s->core));
    return CMDS_OK;
}

static int c_system(struct cmds_session *s, const char *arg)
{
    char err[256];
    if (chat_set_system(s->chat, arg, err, sizeof err) != 0) {
        out(s, CMDS_ERROR, "/system: %s", err);
        return CMDS_FAIL;
    }
    if (!*arg) out(s, CMDS_INFO, "system prompt removed");
    else if (chat_pos(s->chat) > 0)
        out(s, CMDS_INFO, "system prompt set; it applies to the next conversation (/clear)");
    else out(s, CMDS_INFO, "system prompt set (sanitized like your messages)");
    return CMDS_OK;
}

static int c_quit(struct cmds_session *s, const char *arg)
{
    (void)s;
    (void)arg;
    return CMDS_QUIT;
}

const struct cmds_entry cmds_table[] = {
    { "help", "", "list commands and keys", 0, c_help },
    { "eps", "X", "set ε per sanitized token (no X: show it)", CMDS_IDLE, c_eps },
    { "budget", "[reset]", "ε spent today, the limit, this session, lifetime; reset asks first",
      CMDS_IDLE, c_budget },
    { "sanitize", "MODE", "auto, all or marked: which words are sanitized", CMDS_IDLE, c_sanitize },
    { "restore", "on|off", "show substitutes in answers as your words (on) or as sent", 0,
      c_restore },
    { "mechanism", "NAME", "choose the sanitizer (no NAME: list them; none asks first)",
      CMDS_IDLE, c_mechanism },
    { "panel", "", "show or hide the privacy panel (F2)", 0, c_panel },
    { "show", "", "the settings, model, device and confidential-core status", CMDS_IDLE,
      c_show },
    { "set", "NAME VALUE", "temp, top-k, top-p, min-p, repeat-penalty, n, seed, eps, "
      "mechanism, sanitize, markdown (no NAME: list them)", CMDS_IDLE, c_set },
    { "retry", "", "a new answer to the last message (same sanitized input: no ε)", CMDS_IDLE,
      c_retry },
    { "prompt", "", "the tokens the model received for the last message (template, sanitized "
      "text)", CMDS_IDLE, c_prompt },
    { "edit", "", "put the last message in the input line to change and resend", 0, c_edit },
    { "copy", "[FILE]", "copy the last answer (terminal clipboard, else a private file)",
      CMDS_IDLE | CMDS_BANG, c_copy },
    { "save", "FILE", "write transcript + privacy report (Markdown; FILE.json: a session "
      "--resume continues); /save! overwrites",
      CMDS_IDLE | CMDS_BANG, c_save },
    { "clear", "", "new conversation (spent budget stays spent)", CMDS_IDLE, c_clear },
    { "system", "TEXT", "set the system prompt (no TEXT: remove it)", CMDS_IDLE, c_system },
    { "save-history", "FILE", "save this session's inputs as a --script file (! overwrites)",
      CMDS_BANG, c_save_history },
    { "quit", "", "leave cmif (Ctrl-D does the same)", 0, c_quit },
    { "bye", "", "leave cmif (as /quit)", 0, c_quit },
    { NULL, NULL, NULL, 0, NULL },
};

int cmds_is_command(const char *line)
{
    return line && line[0] == '/' && line[1] && line[1] != '/' && line[1] != ' ';
}

const struct cmds_entry *cmds_find(const char *name, size_t len)
{
    const struct cmds_entry *hit = NULL;
    int n = 0;
    for (int i = 0; cmds_table[i].name; i++) {
        if (strlen(cmds_table[i].name) == len && !strncmp(cmds_table[i].name, name, len))
            return &cmds_table[i];
        if (!strncmp(cmds_table[i].name, name, len)) {
            hit = &cmds_table[i];
            n++;
        }
    }
    return n == 1 ? hit : NULL;
}

int cmds_run(struct cmds_session *s, const char *line, int busy)
{
    const char *p = line + 1, *e = p;
    while (*e && *e != ' ' && *e != '\t') e++;
    const char *arg = e;
    while (*arg == ' ' || *arg == '\t') arg++;
    /* "/save! FILE": the '!' is the user's yes to overwriting, not part of the name. */
    int bang = e > p + 1 && e[-1] == '!';
    if (bang) e--;
    /* Trailing blanks are not part of an argument (file names, numbers). */
    char a[4096];
    size_t al = strlen(arg);
    while (al && (arg[al - 1] == ' ' || arg[al - 1] == '\t' || arg[al - 1] == '\n')) al--;
    if (al >= sizeof a) {
        out(s, CMDS_ERROR, "/%.*s: argument too long", (int)(e - p > 32 ? 32 : e - p), p);
        return CMDS_FAIL;
    }
    memcpy(a, arg, al);
    a[al] = 0;
    const struct cmds_entry *ce = cmds_find(p, (size_t)(e - p));
    if (!ce) {
        out(s, CMDS_ERROR, "unknown command /%.*s (try /help)", (int)(e - p > 40 ? 40 : e - p), p);
        return CMDS_FAIL;
    }
    if (bang && !(ce->flags & CMDS_BANG)) {
        out(s, CMDS_ERROR, "/%s takes no '!'", ce->name);
        return CMDS_FAIL;
    }
    if (busy && (ce->flags & CMDS_IDLE)) {
        out(s, CMDS_ERROR, "/%s: wait for the answer to finish (Ctrl-C stops it)", ce->name);
        return CMDS_FAIL;
    }
    s->bang = bang;
    int rc = ce->exec(s, a);
    s->bang = 0;
    sodium_memzero(a, sizeof a);
    return rc;
}

int cmds_check_length(const char *line, char *err, size_t errlen)
{
    size_t n = strnlen(line, CMDS_MAX_MESSAGE + 1);
    if (n <= CMDS_MAX_MESSAGE) return 0;
    snprintf(err, errlen, "message refused: longer than %d KiB (split it into several messages)",
             CMDS_MAX_MESSAGE / 1024);
    return -1;
}

int cmds_record(struct cmds_session *s, const char *line)
{
    if (s->ninputs == s->inputs_cap) {
        size_t nc = s->inputs_cap ? s->inputs_cap * 2 : 16;
        char **ni = realloc(s->inputs, nc * sizeof *ni);
        if (!ni) return -1;
        s->inputs = ni;
        s->inputs_cap = nc;
    }
    if (!(s->inputs[s->ninputs] = strdup(line))) return -1;
    s->ninputs++;
    return 0;
}

void cmds_session_free(struct cmds_session *s)
{
    forget_inputs(s);
    free(s->inputs);
    s->inputs = NULL;
    s->ninputs = s->inputs_cap = 0;
}

/* Writes the inputs to f and closes it. */
static int write_script(const struct cmds_session *s, FILE *f, const char *path, char *err,
                        size_t errlen)
{
    fprintf(f, "# cmif session inputs: replay with cmif -m MODEL --script %s\n", path);
    for (size_t i = 0; i < s->ninputs; i++) {
        for (const char *c = s->inputs[i]; *c; c++) {
            if (*c == '\n') fputs("\\\n", f);
            else fputc(*c, f);
        }
        fputc('\n', f);
    }
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        snprintf(err, errlen, "%s: write failed", path);
        return -1;
    }
    return 0;
}

int cmds_write_script(const struct cmds_session *s, const char *path, int flags, char *err,
                      size_t errlen)
{
    /* What the user typed, in clear: owner only, no link followed. */
    FILE *f = savefile_open_private(path, flags, err, errlen);
    if (!f) return -1;
    return write_script(s, f, path, err, errlen);
}
