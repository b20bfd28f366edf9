/* A small JSON reader; see app/json.h. */
#include "app/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

struct rd {
    const char *s, *e;
    int depth;
    char *err;
    size_t errlen;
};

static int fail(struct rd *r, const char *what)
{
    if (r->err && !r->err[0]) snprintf(r->err, r->errlen, "%s", what);
    return -1;
}

static void ws(struct rd *r)
{
    while (r->s < r->e && (*r->s == ' ' || *r->s == '\n' || *r->s == '\r' || *r->s == '\t')) r->s++;
}

static int put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xc0 | cp >> 6); o[1] = (char)(0x80 | (cp & 63)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12); o[1] = (char)(0x80 | ((cp >> 6) & 63));
        o[2] = (char)(0x80 | (cp & 63));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18); o[1] = (char)(0x80 | ((cp >> 12) & 63));
    o[2] = (char)(0x80 | ((cp >> 6) & 63)); o[3] = (char)(0x80 | (cp & 63));
    return 4;
}

static int hex4(struct rd *r, unsigned *v)
{
    if (r->e - r->s < 4) return fail(r, "truncated \\u escape");
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = *r->s++;
        *v <<= 4;
        if (c >= '0' && c <= '9') *v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') *v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') *v |= (unsigned)(c - 'A' + 10);
        else return fail(r, "bad \\u escape");
    }
    return 0;
}

static int string(struct rd *r, char **out, size_t *outlen)
{
    r->s++;   /* the opening quote */
    const char *q = r->s;
    while (q < r->e && *q != '"') q += *q == '\\' ? 2 : 1;
    if (q >= r->e) return fail(r, "unterminated string");
    char *o = malloc((size_t)(q - r->s) + 1), *w = o;
    if (!o) return fail(r, "out of memory");
    while (r->s < q) {
        char c = *r->s++;
        if (c != '\\') {
            *w++ = c;
            continue;
        }
        char x = *r->s++;
        unsigned cp;
        switch (x) {
        case 'n': *w++ = '\n'; break;
        case 't': *w++ = '\t'; break;
        case 'r': *w++ = '\r'; break;
        case 'b': *w++ = '\b'; break;
        case 'f': *w++ = '\f'; break;
        case 'u':
            if (hex4(r, &cp) != 0) {
                free(o);
                return -1;
            }
            if (cp >= 0xd800 && cp < 0xdc00 && r->e - r->s >= 6 && r->s[0] == '\\' &&
                r->s[1] == 'u') {
                unsigned lo;
                r->s += 2;
                if (hex4(r, &lo) != 0) {
                    free(o);
                    return -1;
                }
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            /* 6 escaped bytes always hold the at most 4 of UTF-8. */
            w += put_utf8(w, cp);
            break;
        default: *w++ = x; break;
        }
    }
    r->s = q + 1;
    *w = 0;
    *out = o;
    *outlen = (size_t)(w - o);
    return 0;
}

static int value(struct rd *r, struct json *j);

static int push(struct json *j, struct rd *r, char *key)
{
    if (j->n == 0 || (j->n >= 4 && (j->n & (j->n - 1)) == 0)) {   /* 4, 8, 16, ... */
        size_t nc = j->n ? j->n * 2 : 4;
        struct json *ni = realloc(j->items, nc * sizeof *ni);
        if (!ni) return fail(r, "out of memory");
        j->items = ni;
        if (j->type == JSON_OBJ) {
            char **nk = realloc(j->keys, nc * sizeof *nk);
            if (!nk) return fail(r, "out of memory");
            j->keys = nk;
        }
    }
    memset(&j->items[j->n], 0, sizeof *j->items);
    if (j->type == JSON_OBJ) j->keys[j->n] = key;
    if (value(r, &j->items[j->n]) != 0) {
        if (j->type == JSON_OBJ) free(key);
        return -1;
    }
    j->n++;
    return 0;
}

static int value(struct rd *r, struct json *j)
{
    ws(r);
    if (r->s >= r->e) return fail(r, "unexpected end");
    if (++r->depth > 64) return fail(r, "nested too deep");
    int rc = 0;
    char c = *r->s;
    if (c == '{' || c == '[') {
        j->type = c == '{' ? JSON_OBJ : JSON_ARR;
        char close = c == '{' ? '}' : ']';
        r->s++;
        ws(r);
        if (r->s < r->e && *r->s == close) r->s++;
        else
            for (;;) {
                char *key = NULL;
                if (j->type == JSON_OBJ) {
                    size_t kl;
                    ws(r);
                    if (r->s >= r->e || *r->s != '"' || string(r, &key, &kl) != 0)
                        return fail(r, "expected a key");
                    ws(r);
                    if (r->s >= r->e || *r->s != ':') {
                        free(key);
                        return fail(r, "expected ':'");
                    }
                    r->s++;
                }
                if (push(j, r, key) != 0) return -1;
                ws(r);
                if (r->s < r->e && *r->s == ',') {
                    r->s++;
                    continue;
                }
                if (r->s < r->e && *r->s == close) {
                    r->s++;
                    break;
                }
                return fail(r, "expected ',' or a closing bracket");
            }
    } else if (c == '"') {
        j->type = JSON_STR;
        rc = string(r, &j->str, &j->len);
    } else if (r->e - r->s >= 4 && !strncmp(r->s, "true", 4)) {
        j->type = JSON_BOOL, j->num = 1, r->s += 4;
    } else if (r->e - r->s >= 5 && !strncmp(r->s, "false", 5)) {
        j->type = JSON_BOOL, r->s += 5;
    } else if (r->e - r->s >= 4 && !strncmp(r->s, "null", 4)) {
        j->type = JSON_NULL, r->s += 4;
    } else {
        char buf[64];
        size_t n = 0;
        while (r->s + n < r->e && n < sizeof buf - 1 && strchr("+-0123456789.eE", r->s[n])) n++;
        memcpy(buf, r->s, n);
        buf[n] = 0;
        char *end;
        j->type = JSON_NUM;
        j->num = strtod(buf, &end);
        if (!n || *end) return fail(r, "bad value");
        r->s += n;
    }
    r->depth--;
    return rc;
}

int json_parse(const char *text, size_t len, struct json *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (err && errlen) err[0] = 0;
    struct rd r = { text, text + len, 0, err, errlen };
    if (value(&r, out) != 0) {
        json_free(out);
        return -1;
    }
    ws(&r);
    if (r.s != r.e) {
        json_free(out);
        return fail(&r, "trailing text after the value");
    }
    return 0;
}

void json_free(struct json *j)
{
    if (!j) return;
    if (j->str) sodium_memzero(j->str, j->len);
    free(j->str);
    for (size_t i = 0; i < j->n; i++) {
        json_free(&j->items[i]);
        if (j->keys) free(j->keys[i]);
    }
    free(j->items);
    free(j->keys);
    memset(j, 0, sizeof *j);
}

const struct json *json_get(const struct json *j, const char *key)
{
    if (!j || j->type != JSON_OBJ) return NULL;
    for (size_t i = 0; i < j->n; i++)
        if (!strcmp(j->keys[i], key)) return &j->items[i];
    return NULL;
}

double json_num(const struct json *j, const char *key, double dflt)
{
    const struct json *v = json_get(j, key);
    return v && (v->type == JSON_NUM || v->type == JSON_BOOL) ? v->num : dflt;
}

const char *json_str(const struct json *j, const char *key)
{
    const struct json *v = json_get(j, key);
    return v && v->type == JSON_STR ? v->str : NULL;
}
