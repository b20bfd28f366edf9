/* Scripted sessions; see app/script.h. */
#include "app/script.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "app/chat.h"
#include "app/cmd.h"
#include "app/commands.h"
#include "app/opts.h"
#include "app/restore.h"
#include "app/template.h"
#include "core/core.h"
#include "ui/plain.h"
#include "ui/utf8.h"

static int push(struct script *s, char *item, int line)
{
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 16;
        char **ni = realloc(s->items, nc * sizeof *ni);
        if (!ni) return -1;
        s->items = ni;
        int *nl = realloc(s->line, nc * sizeof *nl);
        if (!nl) return -1;
        s->line = nl;
        s->cap = nc;
    }
    s->items[s->n] = item;
    s->line[s->n] = line;
    s->n++;
    return 0;
}

int script_parse(const char *buf, size_t len, struct script *s, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    if (memchr(buf, 0, len)) {
        snprintf(err, errlen, "script contains a NUL byte (not a text file?)");
        return -1;
    }
    char *cur = NULL;       /* item being continued with trailing backslashes */
    size_t curlen = 0;
    int curline = 0, lineno = 0;
    size_t i = 0;
    while (i < len) {
        size_t e = i;
        while (e < len && buf[e] != '\n') e++;
        lineno++;
        size_t l = e - i;
        if (l && buf[i + l - 1] == '\r') l--;
        const char *p = buf + i;
        i = e < len ? e + 1 : e;
        if (!cur) {
            size_t k = 0;
            while (k < l && (p[k] == ' ' || p[k] == '\t')) k++;
            if (k == l || p[k] == '#') continue;   /* blank or comment */
        }
        int cont = l && p[l - 1] == '\\';
        if (cont) l--;
        char *n = realloc(cur, curlen + l + 2);
        if (!n) goto oom;
        cur = n;
        if (!curlen && !curline) curline = lineno;
        memcpy(cur + curlen, p, l);
        curlen += l;
        if (cont && i < len) {
            cur[curlen++] = '\n';
            cur[curlen] = 0;
            continue;
        }
        cur[curlen] = 0;
        if (push(s, cur, curline) != 0) goto oom;
        cur = NULL;
        curlen = 0;
        curline = 0;
    }
    if (cur) {
        cur[curlen] = 0;
        if (push(s, cur, curline) != 0) goto oom;
    }
    return 0;
oom:
    free(cur);
    script_free(s);
    snprintf(err, errlen, "script: out of memory");
    return -1;
}

int script_load(FILE *f, const char *name, struct script *s, char *err, size_t errlen)
{
    char *buf;
    size_t len;
    if (opts_read_stream(f, name, 1, &buf, &len, err, errlen) != 0) return -1;
    int rc = script_parse(buf, len, s, err, errlen);
    if (rc != 0) {
        char tmp[256];
        snprintf(tmp, sizeof tmp, "%s", err);
        snprintf(err, errlen, "%s: %s", name, tmp);
    }
    core_wipe(buf, len);
    free(buf);
    return rc;
}

void script_free(struct script *s)
{
    for (size_t i = 0; i < s->n; i++) free(s->items[i]);
    free(s->items);
    free(s->line);
    memset(s, 0, sizeof *s);
}

void script_json_str(FILE *f, const char *s, size_t n)
{
    fputc('"', f);
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
            else if (c == '\n') fputs("\\n", f);
            else if (c == '\t') fputs("\\t", f);
            else if (c < 0x20 || c == 0x7f) fprintf(f, "\\u%04x", c);
            else fputc(c, f);
            i++;
            continue;
        }
        uint32_t cp;
        size_t l = utf8_decode(s + i, n - i, &cp);
        if (!l) {
            fputs("\\ufffd", f);
            i++;
            continue;
        }
        fwrite(s + i, 1, l, f);
        i += l;
    }
    fputc('"', f);
}

/* --- running ----------------------------------------------------------------------- */

struct run {
    struct plain *pl;
    FILE *ans;          /* the current answer, for the JSON report */
};

static void on_text(void *ctx, const char *s, size_t n)
{
    struct run *r = ctx;
    if (r->pl) plain_piece(r->pl, s, n);
    if (r->ans) fwrite(s, 1, n, r->ans);
}

static void on_info(void *ctx, const char *msg)
{
    struct run *r = ctx;
    if (r->pl) plain_note(r->pl, msg);
}

static void json_message(FILE *j, int first, size_t idx, const char *text, struct chat *chat,
                         const char *answer, size_t alen, int status)
{
    size_t n;
    double eps;
    const struct core_tok_report *rep = chat_last_report(chat, &n, &eps);
    fprintf(j, "%s\n    {\"index\": %zu, \"text\": ", first ? "" : ",", idx);
    script_json_str(j, text, strlen(text));
    fprintf(j, ", \"eps\": %.17g, \"n_tokens\": %zu, \"stopped\": %s,\n     \"tokens\": [", eps, n,
            status == CHAT_STOPPED ? "true" : "false");
    for (size_t i = 0; i < n; i++) {
        fprintf(j, "%s\n       {\"orig\": ", i ? "," : "");
        script_json_str(j, rep[i].orig, strnlen(rep[i].orig, sizeof rep[i].orig));
        fputs(", \"sent\": ", j);
        script_json_str(j, rep[i].sent, strnlen(rep[i].sent, sizeof rep[i].sent));
        fprintf(j, ", \"kind\": \"%s\", \"eps\": %.17g, \"cluster_size\": %d}",
                core_kind_name(rep[i].kind), rep[i].eps, rep[i].cluster_size);
    }
    fputs(n ? "\n     ],\n     \"answer\": " : "],\n     \"answer\": ", j);
    script_json_str(j, answer ? answer : "", alen);
    /* The answer with the user's own words back where the model repeated a substitute
     * ([[word]]); the same as "answer" when there was none. */
    int changed = 0;
    char *rt = restore_text(chat_restorer(chat), answer ? answer : "", alen, "[[", "]]", &changed);
    fputs(", \"answer_restored\": ", j);
    if (rt) script_json_str(j, rt, strlen(rt));
    else fputs("null", j);
    if (rt) core_wipe(rt, strlen(rt));
    free(rt);
    fputs("}", j);
}

int script_run(const struct script *s, struct chat *chat, struct cmds_session *sess,
               struct plain *pl, const struct script_opts *o, FILE *errf)
{
    char *jbuf = NULL;
    size_t jlen = 0;
    FILE *j = (o->json || o->report) ? open_memstream(&jbuf, &jlen) : NULL;
    if ((o->json || o->report) && !j) {
        fprintf(errf, "cmif: cannot buffer the report: %s\n", strerror(errno));
        return EXIT_RUNTIME;
    }
    struct core *core = chat_core(chat);
    int status = EXIT_OK;
    size_t nmsg = 0;
    double eps_sum = 0;
    char err[1024];
    for (size_t i = 0; i < s->n && status == EXIT_OK; i++) {
        const char *item = s->items[i];
        if (cmds_record(sess, item) != 0) {
            fprintf(errf, "cmif: out of memory\n");
            status = EXIT_RUNTIME;
            break;
        }
        if (cmds_is_command(item)) {
            if (pl) plain_user(pl, item);
            int rc = cmds_run(sess, item, 0);
            if (rc == CMDS_QUIT) break;
            if (rc == CMDS_FAIL) {
                /* The command's name only: its argument may be the user's text. */
                size_t nl = strcspn(item, " \t\n");
                fprintf(errf, "cmif: script line %d: command %.*s failed\n", s->line[i],
                        (int)(nl < 40 ? nl : 40), item);
                status = EXIT_RUNTIME;
            }
            continue;
        }
        if (cmds_check_length(item, err, sizeof err) != 0) {
            fprintf(errf, "cmif: script line %d: %s\n", s->line[i], err);
            status = EXIT_RUNTIME;
            break;
        }
        if (pl) plain_user(pl, item);
        char *abuf = NULL;
        size_t alen = 0;
        struct run r = { pl, j ? open_memstream(&abuf, &alen) : NULL };
        struct chat_cb cb = { on_text, on_info, NULL, &r };
        int rc = chat_send(chat, item, &cb, err, sizeof err);
        if (r.ans) fclose(r.ans);
        if (pl) plain_end_answer(pl);
        if (rc == 0 || rc == CHAT_STOPPED) {
            double e;
            chat_last_report(chat, NULL, &e);
            eps_sum += e;
            if (j) json_message(j, nmsg == 0, nmsg + 1, item, chat, abuf, alen, rc);
            nmsg++;
        } else if (rc == CORE_EBUDGET) {
            fprintf(errf, "cmif: privacy budget exhausted at script line %d: %s\n", s->line[i],
                    err);
            status = EXIT_BUDGET;
        } else {
            fprintf(errf, "cmif: script line %d: %s\n", s->line[i], err);
            status = EXIT_RUNTIME;
        }
        free(abuf);
    }
    if (j) {
        fclose(j);
        char *doc = NULL;
        size_t dlen = 0;
        FILE *d = open_memstream(&doc, &dlen);
        if (d) {
            fprintf(d, "{\n  \"model\": ");
            script_json_str(d, o->model_name ? o->model_name : "", o->model_name ? strlen(o->model_name) : 0);
            fprintf(d, ",\n  \"template\": \"%s\",\n  \"mechanism\": \"%s\",\n"
                       "  \"eps_per_token\": %.17g,\n  \"budget_total\": %.17g,\n"
                       "  \"budget_spent\": %.17g,\n  \"eps_total\": %.17g,\n  \"exit_status\": %d,\n"
                       "  \"messages\": [",
                    tmpl_name(chat_template(chat)), core_mech_name(core_mechanism(core)),
                    core_eps(core), core_budget_total(core), core_budget_spent(core), eps_sum,
                    status);
            if (jbuf) fwrite(jbuf, 1, jlen, d);
            fprintf(d, "%s]\n}\n", nmsg ? "\n  " : "");
            fclose(d);
            if (o->json) fwrite(doc, 1, dlen, stdout);
            if (o->report) fwrite(doc, 1, dlen, o->report);
            free(doc);
        } else {
            fprintf(errf, "cmif: cannot build the report\n");
            if (status == EXIT_OK) status = EXIT_RUNTIME;
        }
        free(jbuf);
    }
    return status;
}
