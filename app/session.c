/* Session files; see app/session.h. */
#include "app/session.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "app/chat.h"
#include "app/json.h"
#include "app/opts.h"
#include "app/script.h"
#include "app/template.h"
#include "core/core.h"
#include "gpu/sampler.h"

#define SESSION_FORMAT "cmif-session-1"

static const char *role_name(int role)
{
    switch (role) {
    case CHAT_USER: return "user";
    case CHAT_ASSISTANT: return "assistant";
    case CHAT_SYSTEM: return "system";
    default: return "note";
    }
}

/* Vectors as base64 of their float32 bytes: exact, so the replay is the same context. */
static void write_vecs(FILE *f, const float *v, size_t n, int dim)
{
    size_t bytes = n * (size_t)dim * sizeof(float);
    size_t cap = sodium_base64_encoded_len(bytes, sodium_base64_VARIANT_ORIGINAL);
    char *b = malloc(cap);
    if (!b) {
        fputs("\"\"", f);
        return;
    }
    sodium_bin2base64(b, cap, (const unsigned char *)v, bytes, sodium_base64_VARIANT_ORIGINAL);
    fprintf(f, "\"%s\"", b);
    free(b);
}

int session_write(const struct chat *c, FILE *f, const char *model_name, const char *path,
                  char *err, size_t errlen)
{
    struct core *core = chat_core(c);
    struct sampler_params sp;
    int np;
    chat_sampling(c, &sp, &np);
    int dim = chat_dim(c);
    fprintf(f, "{\n  \"format\": \"%s\",\n  \"model\": ", SESSION_FORMAT);
    script_json_str(f, model_name ? model_name : "", model_name ? strlen(model_name) : 0);
    fprintf(f, ",\n  \"template\": \"%s\",\n  \"dim\": %d,\n", tmpl_name(chat_template(c)), dim);
    fprintf(f, "  \"settings\": {\"temp\": %.9g, \"top_k\": %d, \"top_p\": %.9g, \"min_p\": %.9g, "
               "\"repeat_penalty\": %.9g, \"n_predict\": %d, \"seed\": %s%llu%s, \"eps\": %.17g, "
               "\"mechanism\": \"%s\", \"sanitize\": \"%s\", \"unit\": \"%s\"},\n",
            sp.temp, sp.top_k, sp.top_p, sp.min_p, sp.repeat_penalty, np,
            sp.seed == SAMPLER_SEED_RANDOM ? "\"random\", \"seed_value\": " : "",
            (unsigned long long)(sp.seed == SAMPLER_SEED_RANDOM ? 0 : sp.seed), "",
            core_eps(core), core_mech_name(core_mechanism(core)),
            core_scope_name(core_scope(core)), core_unit_name(core_unit(core)));
    const char *sys = chat_system(c);
    fputs("  \"system\": ", f);
    if (sys) script_json_str(f, sys, strlen(sys));
    else fputs("null", f);
    fprintf(f, ",\n  \"privacy\": {\"budget_spent\": %.17g, \"budget_total\": %.17g, "
               "\"ledger\": %s},\n",
            core_budget_spent(core), core_budget_total(core),
            core_has_ledger(core) ? "true" : "false");
    size_t ne;
    const struct chat_entry *ent = chat_entries(c, &ne);
    fputs("  \"transcript\": [", f);
    for (size_t i = 0; i < ne; i++) {
        fprintf(f, "%s\n    {\"role\": \"%s\", \"text\": ", i ? "," : "", role_name(ent[i].role));
        script_json_str(f, ent[i].text, ent[i].len);
        if (ent[i].role == CHAT_USER) {
            /* The sanitized input: what the model was sent, word by word. */
            fputs(", \"sent\": \"", f);
            for (size_t k = 0; k < ent[i].nrep; k++) {
                const char *s = ent[i].rep[k].sent;
                size_t sl = strnlen(s, sizeof ent[i].rep[k].sent);
                char tmp[128];
                FILE *m = fmemopen(tmp, sizeof tmp, "w");
                if (!m) continue;
                script_json_str(m, s, sl);
                long w = ftell(m);
                fclose(m);
                if (w >= 2) fwrite(tmp + 1, 1, (size_t)w - 2, f);   /* without its quotes */
            }
            fprintf(f, "\", \"eps\": %.17g, \"report\": [", ent[i].eps);
            for (size_t k = 0; k < ent[i].nrep; k++) {
                const struct core_tok_report *r = &ent[i].rep[k];
                fprintf(f, "%s{\"orig\": ", k ? ", " : "");
                script_json_str(f, r->orig, strnlen(r->orig, sizeof r->orig));
                fputs(", \"sent\": ", f);
                script_json_str(f, r->sent, strnlen(r->sent, sizeof r->sent));
                fprintf(f, ", \"kind\": \"%s\", \"eps\": %.17g, \"cluster_size\": %d}",
                        core_kind_name(r->kind), r->eps, r->cluster_size);
            }
            fputs("]", f);
        }
        fputs("}", f);
    }
    fputs(ne ? "\n  ],\n" : "],\n", f);
    size_t hn;
    const float *head = chat_head(c, &hn);
    fprintf(f, "  \"context\": {\"head_n\": %zu, \"head\": ", hn);
    write_vecs(f, head, hn, dim);
    fputs(", \"turns\": [", f);
    for (size_t i = 0; i < chat_nturns(c); i++) {
        size_t n, n_in;
        const float *v = chat_turn(c, i, &n, &n_in);
        fprintf(f, "%s\n    {\"n\": %zu, \"n_in\": %zu, \"vecs\": ", i ? "," : "", n, n_in);
        write_vecs(f, v, n, dim);
        fputs("}", f);
    }
    fputs("]}\n}\n", f);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        snprintf(err, errlen, "%s: write failed: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static float *read_vecs(const struct json *s, size_t n, int dim, char *err, size_t errlen)
{
    size_t bytes = n * (size_t)dim * sizeof(float), got = 0;
    float *v = malloc(bytes ? bytes : 1);
    if (!v) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (!s || s->type != JSON_STR ||
        sodium_base642bin((unsigned char *)v, bytes, s->str, s->len, NULL, &got, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 || got != bytes) {
        snprintf(err, errlen, "the saved context is damaged");
        free(v);
        return NULL;
    }
    return v;
}

static int kind_parse(const char *name)
{
    for (int k = CORE_TOK_KEPT; k <= CORE_TOK_PLANNED; k++)
        if (name && !strcmp(core_kind_name(k), name)) return k;
    return CORE_TOK_CONTROL;
}

/* Applies the saved settings (sampling, answer length, ε, mechanism, mode). */
static int apply_settings(struct chat *c, const struct json *st, char *err, size_t errlen)
{
    struct core *core = chat_core(c);
    struct sampler_params sp;
    int np;
    chat_sampling(c, &sp, &np);
    sp.temp = (float)json_num(st, "temp", sp.temp);
    sp.top_k = (int)json_num(st, "top_k", sp.top_k);
    sp.top_p = (float)json_num(st, "top_p", sp.top_p);
    sp.min_p = (float)json_num(st, "min_p", sp.min_p);
    sp.repeat_penalty = (float)json_num(st, "repeat_penalty", sp.repeat_penalty);
    np = (int)json_num(st, "n_predict", np);
    const struct json *seed = json_get(st, "seed");
    if (seed && seed->type == JSON_STR) sp.seed = SAMPLER_SEED_RANDOM;
    else if (seed && seed->type == JSON_NUM) sp.seed = (uint64_t)seed->num;
    if (chat_set_sampling(c, &sp, np, err, errlen) != 0) return -1;
    double eps = json_num(st, "eps", core_eps(core));
    if (eps > 0 && core_set_eps(core, eps, err, errlen) != 0) return -1;
    const char *m = json_str(st, "mechanism");
    if (m && core_mech_parse(m) >= 0 && core_set_mechanism(core, core_mech_parse(m), err, errlen) != 0)
        return -1;
    const char *sc = json_str(st, "sanitize");
    if (sc && core_scope_parse(sc) >= 0 && core_set_scope(core, core_scope_parse(sc), err, errlen) != 0)
        return -1;
    return 0;
}

int session_load(struct chat *c, const char *path, size_t *n_msgs, char *err, size_t errlen)
{
    char *buf = NULL, jerr[128];
    size_t len = 0;
    *n_msgs = 0;
    if (opts_read_file(path, 1, &buf, &len, err, errlen) != 0) return -1;
    struct json j;
    int rc = json_parse(buf, len, &j, jerr, sizeof jerr);
    sodium_memzero(buf, len);
    free(buf);
    if (rc != 0) {
        snprintf(err, errlen, "%s: not a session file (%s)", path, jerr);
        return -1;
    }
    rc = -1;
    struct chat_entry *ent = NULL;
    struct chat_turn_in *turns = NULL;
    float *head = NULL;
    const struct json *ctx = json_get(&j, "context"), *tr = json_get(&j, "transcript");
    const struct json *tv = json_get(ctx, "turns");
    const char *fmt = json_str(&j, "format"), *tmpl = json_str(&j, "template");
    if (!fmt || strcmp(fmt, SESSION_FORMAT) != 0 || !ctx || !tr || tr->type != JSON_ARR || !tv ||
        tv->type != JSON_ARR) {
        snprintf(err, errlen, "%s: not a cmif session file (%s)", path, SESSION_FORMAT);
        goto out;
    }
    if ((int)json_num(&j, "dim", -1) != chat_dim(c) || !tmpl ||
        strcmp(tmpl, tmpl_name(chat_template(c))) != 0) {
        snprintf(err, errlen, "%s: saved with another model (%s, template %s): resume it with "
                              "that model", path, json_str(&j, "model") ? json_str(&j, "model") : "?",
                 tmpl ? tmpl : "?");
        goto out;
    }
    const struct json *sys = json_get(&j, "system");
    if (chat_set_system(c, sys && sys->type == JSON_STR ? sys->str : NULL, err, errlen) != 0 ||
        apply_settings(c, json_get(&j, "settings"), err, errlen) != 0)
        goto out;
    int dim = chat_dim(c);
    size_t hn = (size_t)json_num(ctx, "head_n", 0);
    if (!(head = read_vecs(json_get(ctx, "head"), hn, dim, err, errlen))) goto out;
    if (!(turns = calloc(tv->n + 1, sizeof *turns)) || !(ent = calloc(tr->n + 1, sizeof *ent))) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < tv->n; i++) {
        turns[i].n = (size_t)json_num(&tv->items[i], "n", 0);
        turns[i].n_in = (size_t)json_num(&tv->items[i], "n_in", 0);
        if (!(turns[i].vecs = read_vecs(json_get(&tv->items[i], "vecs"), turns[i].n, dim, err,
                                        errlen)))
            goto out;
    }
    for (size_t i = 0; i < tr->n; i++) {
        const struct json *e = &tr->items[i], *rep = json_get(e, "report");
        const char *role = json_str(e, "role"), *text = json_str(e, "text");
        ent[i].role = !role ? CHAT_NOTE : !strcmp(role, "user") ? CHAT_USER
                    : !strcmp(role, "assistant")               ? CHAT_ASSISTANT
                    : !strcmp(role, "system")                  ? CHAT_SYSTEM
                                                               : CHAT_NOTE;
        ent[i].text = (char *)(text ? text : "");
        ent[i].len = text ? json_get(e, "text")->len : 0;
        ent[i].eps = json_num(e, "eps", 0);
        if (ent[i].role == CHAT_USER) (*n_msgs)++;
        if (rep && rep->type == JSON_ARR && rep->n) {
            if (!(ent[i].rep = calloc(rep->n, sizeof *ent[i].rep))) {
                snprintf(err, errlen, "out of memory");
                goto out;
            }
            ent[i].nrep = rep->n;
            for (size_t k = 0; k < rep->n; k++) {
                struct core_tok_report *r = &ent[i].rep[k];
                const char *o = json_str(&rep->items[k], "orig"), *s = json_str(&rep->items[k], "sent");
                snprintf(r->orig, sizeof r->orig, "%s", o ? o : "");
                snprintf(r->sent, sizeof r->sent, "%s", s ? s : "");
                r->kind = kind_parse(json_str(&rep->items[k], "kind"));
                r->eps = json_num(&rep->items[k], "eps", 0);
                r->cluster_size = (int)json_num(&rep->items[k], "cluster_size", 0);
            }
        }
    }
    rc = chat_resume(c, head, hn, turns, tv->n, ent, tr->n, err, errlen);
    if (rc != 0) {
        char tmp[256];
        snprintf(tmp, sizeof tmp, "%s", err);
        snprintf(err, errlen, "%s: %s", path, tmp);
    }
out:
    if (turns)
        for (size_t i = 0; i < tv->n; i++) free((void *)turns[i].vecs);
    free(turns);
    if (ent)
        for (size_t i = 0; i < tr->n; i++) {
            if (ent[i].rep) sodium_memzero(ent[i].rep, ent[i].nrep * sizeof *ent[i].rep);
            free(ent[i].rep);
        }
    free(ent);
    free(head);
    json_free(&j);
    return rc;
}
