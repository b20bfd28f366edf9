/* app/json: a small JSON reader (RFC 8259 values into a tree), for the session files cmif
 * writes itself (/save FILE.json, --resume). Strings are decoded (\uXXXX included, as
 * UTF-8); numbers are doubles. */
#ifndef CMIF_APP_JSON_H
#define CMIF_APP_JSON_H

#include <stddef.h>

enum json_type { JSON_NULL = 0, JSON_BOOL, JSON_NUM, JSON_STR, JSON_ARR, JSON_OBJ };

struct json {
    int type;
    double num;              /* JSON_NUM, JSON_BOOL (0 or 1) */
    char *str;               /* JSON_STR: NUL-terminated, len bytes */
    size_t len;
    struct json *items;      /* JSON_ARR and JSON_OBJ: n values */
    char **keys;             /* JSON_OBJ: n keys */
    size_t n;
};

/* Parses text[0..len) into *out (freed with json_free). 0, or -1 with err. */
int json_parse(const char *text, size_t len, struct json *out, char *err, size_t errlen);
/* Wipes the strings (they may hold what the user typed) and frees the tree. */
void json_free(struct json *j);
/* The member key of an object; NULL when absent or j is not an object. */
const struct json *json_get(const struct json *j, const char *key);
/* A member's number or string, or dflt when absent or of another type. */
double json_num(const struct json *j, const char *key, double dflt);
const char *json_str(const struct json *j, const char *key);

#endif
