/* libFuzzer target for app/script's parser (built by `make fuzz`, run by tests/fuzz.sh):
 * arbitrary bytes as a --script file, and each parsed item through the JSON string writer
 * of the report.
 *
 * A script with a NUL byte must be refused with a message; any other input parses into
 * items that are C strings no longer than the input in total and start at increasing line
 * numbers within the file. Each item's JSON string is quoted, has no raw control byte and no invalid
 * UTF-8. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/script.h"
#include "ui/utf8.h"

static void check_json(const char *s, size_t n)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) abort();
    script_json_str(f, s, n);
    if (fclose(f) != 0) abort();
    if (len < 2 || buf[0] != '"' || buf[len - 1] != '"') abort();
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)buf[i];
        if (c < 0x20 || c == 0x7f) abort();
        if (c < 0x80) {
            i++;
            continue;
        }
        uint32_t cp;
        size_t l = utf8_decode(buf + i, len - i, &cp);
        if (!l) abort();
        i += l;
    }
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct script s;
    char err[512];
    const char *buf = (const char *)data;
    int rc = script_parse(buf, size, &s, err, sizeof err);
    if (memchr(buf, 0, size)) {
        if (rc == 0 || !err[0]) abort();
        return 0;
    }
    if (rc != 0) abort();
    size_t lines = 1;
    for (size_t i = 0; i < size; i++) lines += buf[i] == '\n';
    size_t total = 0;
    int prev = 0;
    for (size_t i = 0; i < s.n; i++) {
        size_t l = strlen(s.items[i]);
        total += l;
        if (s.line[i] <= prev || (size_t)s.line[i] > lines) abort();
        prev = s.line[i];
        check_json(s.items[i], l);
    }
    if (total > size) abort();
    script_free(&s);
    return 0;
}
