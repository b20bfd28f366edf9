/* tmplrender: the text app/template makes of a two-turn conversation with a system prompt,
 * as the chat sends it (tests/e2e/test_chat_templates.sh compares it with the models' own
 * Jinja templates). BOS, sent as a token, is written as its text.
 *   tmplrender KIND BOS SYSTEM USER1 ANSWER_FILE USER2 TURN1_OUT CONV_OUT
 * KIND is a template name (llama3, ...) or @FILE: the kind the chat detects from that
 * Jinja template (a template it does not recognise is an error here).
 * TURN1_OUT gets the first turn (up to where the answer starts); CONV_OUT the first turn,
 * ANSWER_FILE's bytes (the model's answer as it generated it, its end-of-generation token
 * included), what the chat appends after that token, and the second turn. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/template.h"

/* The whole of a small file, NUL-terminated, into buf; its length, or -1. */
static long read_small(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    int bad = !f || ferror(f) || n == cap - 1;
    if (f) fclose(f);
    if (bad) {
        fprintf(stderr, "tmplrender: cannot read %s (or larger than %zu bytes)\n", path, cap - 2);
        return -1;
    }
    buf[n] = 0;
    return (long)n;
}

static int put_turn(FILE *f, int kind, int first, const char *bos, const char *sys,
                    const char *user)
{
    struct tmpl_turn t;
    char buf[8192];
    tmpl_render_turn(kind, first, sys, user, &t);
    size_t n = tmpl_flatten(&t, buf, sizeof buf);
    if (n >= sizeof buf) return -1;
    if (t.add_bos) fputs(bos, f);
    fputs(buf, f);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 9) {
        fprintf(stderr, "usage: tmplrender KIND BOS SYSTEM USER1 ANSWER_FILE USER2 TURN1_OUT "
                        "CONV_OUT\n");
        return 2;
    }
    static char jinja[65536], answer[8192];
    int kind = -1, known = 0;
    if (argv[1][0] == '@') {
        long n = read_small(argv[1] + 1, jinja, sizeof jinja);
        if (n < 0) return 2;
        kind = tmpl_detect(jinja, (size_t)n, &known);
        if (!known) kind = -1;
    } else {
        kind = tmpl_parse(argv[1]);
    }
    if (kind < 0) {
        fprintf(stderr, "tmplrender: unknown template '%s'\n", argv[1]);
        return 2;
    }
    const char *bos = argv[2], *sys = argv[3], *u1 = argv[4], *u2 = argv[6];
    if (read_small(argv[5], answer, sizeof answer) < 0) return 2;
    FILE *t1 = fopen(argv[7], "wb"), *cv = fopen(argv[8], "wb");
    int rc = !t1 || !cv;
    if (!rc) {
        rc |= put_turn(t1, kind, 1, bos, sys, u1);
        rc |= put_turn(cv, kind, 1, bos, sys, u1);
        fputs(answer, cv);
        fputs(tmpl_after_eog(kind), cv);
        rc |= put_turn(cv, kind, 0, bos, sys, u2);
    }
    if (t1 && fclose(t1)) rc = 1;
    if (cv && fclose(cv)) rc = 1;
    if (rc) fprintf(stderr, "tmplrender: cannot write the output\n");
    return rc ? 2 : 0;
}
