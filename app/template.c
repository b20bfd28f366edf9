/* Chat templates rendered as segments; see app/template.h. */
#include "app/template.h"

#include <string.h>

static const char *const names[TMPL_COUNT] = { "plain", "llama2", "llama3", "chatml", "zephyr",
                                               "mistral" };

const char *tmpl_name(int kind)
{
    return kind >= 0 && kind < TMPL_COUNT ? names[kind] : "?";
}

int tmpl_parse(const char *name)
{
    if (!name) return -1;
    for (int i = 0; i < TMPL_COUNT; i++)
        if (!strcmp(name, names[i])) return i;
    if (!strcmp(name, "none") || !strcmp(name, "completion")) return TMPL_PLAIN;
    if (!strcmp(name, "llama-2")) return TMPL_LLAMA2;
    if (!strcmp(name, "llama-3")) return TMPL_LLAMA3;
    return -1;
}

static int has(const char *text, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    if (n > len) return 0;
    return memmem(text, len, needle, n) != NULL;
}

int tmpl_detect(const char *text, size_t len, int *known)
{
    if (known) *known = 1;
    if (!text || !len) return TMPL_PLAIN;
    /* Most specific markers first: a Llama 3 template may also mention other formats. */
    if (has(text, len, "<|start_header_id|>")) return TMPL_LLAMA3;
    if (has(text, len, "<|im_start|>")) return TMPL_CHATML;
    if (has(text, len, "<|user|>") && has(text, len, "<|assistant|>")) return TMPL_ZEPHYR;
    /* Llama 2's [INST] template wraps the system prompt in <<SYS>>; Mistral's do not. */
    if (has(text, len, "[INST]")) return has(text, len, "<<SYS>>") ? TMPL_LLAMA2 : TMPL_MISTRAL;
    if (known) *known = 0;
    return TMPL_CHATML;
}

static void add(struct tmpl_turn *t, int kind, const char *s, size_t len)
{
    if (!len) return;
    if (kind == TMPL_SEG_TEMPLATE) {
        /* Adjacent template pieces merge so the tokenizer sees them as one text. */
        if (t->tlen + len >= sizeof t->tbuf) return;   /* static strings: never happens */
        memcpy(t->tbuf + t->tlen, s, len);
        if (t->n && !t->barrier && t->seg[t->n - 1].kind == TMPL_SEG_TEMPLATE &&
            t->seg[t->n - 1].text + t->seg[t->n - 1].len == t->tbuf + t->tlen) {
            t->seg[t->n - 1].len += len;
            t->tlen += len;
            return;
        }
        s = t->tbuf + t->tlen;
        t->tlen += len;
    }
    t->barrier = 0;
    if (t->n >= TMPL_MAX_SEGS) return;
    t->seg[t->n].kind = kind;
    t->seg[t->n].text = s;
    t->seg[t->n].len = len;
    t->n++;
}

static void tpl(struct tmpl_turn *t, const char *s) { add(t, TMPL_SEG_TEMPLATE, s, strlen(s)); }
static void usr(struct tmpl_turn *t, const char *s) { if (s) add(t, TMPL_SEG_USER, s, strlen(s)); }

/* Length of the whitespace code point ending at s[n-1] (or starting at s[0] when front),
 * 0 when it is not one. The set is JavaScript's String.trim (what @huggingface/jinja's trim
 * and strip() remove): ASCII tab to CR and space, U+00A0, U+1680, U+2000-U+200A, U+2028,
 * U+2029, U+202F, U+205F, U+3000, U+FEFF. */
static size_t white_len(const unsigned char *s, size_t n, int front)
{
    static const unsigned char w2[][2] = {{0xC2, 0xA0}};
    static const unsigned char w3[][3] = {
        {0xE1, 0x9A, 0x80}, {0xE2, 0x80, 0xA8}, {0xE2, 0x80, 0xA9}, {0xE2, 0x80, 0xAF},
        {0xE2, 0x81, 0x9F}, {0xE3, 0x80, 0x80}, {0xEF, 0xBB, 0xBF}};
    if (!n) return 0;
    unsigned char c = front ? s[0] : s[n - 1];
    if (c == ' ' || (c >= '\t' && c <= '\r')) return 1;
    if (n >= 2 && !memcmp(front ? s : s + n - 2, w2[0], 2)) return 2;
    if (n < 3) return 0;
    const unsigned char *p = front ? s : s + n - 3;
    if (p[0] == 0xE2 && p[1] == 0x80 && p[2] >= 0x80 && p[2] <= 0x8A) return 3;
    for (size_t i = 0; i < sizeof w3 / sizeof w3[0]; i++)
        if (!memcmp(p, w3[i], 3)) return 3;
    return 0;
}

/* User text with surrounding whitespace removed, as the Llama 2/3 templates' trim and
 * strip() do: lead and/or tail. */
static void usr_trim(struct tmpl_turn *t, const char *s, int lead, int tail)
{
    if (!s) return;
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s), k;
    while (lead && (k = white_len(u, n, 1))) u += k, n -= k;
    while (tail && (k = white_len(u, n, 0))) n -= k;
    add(t, TMPL_SEG_USER, (const char *)u, n);
}
/* The system prompt as user text (it is sanitized like a message), remembered as such. */
static void sys_text(struct tmpl_turn *t, const char *s, int trim)
{
    int n = t->n;
    usr_trim(t, s, trim, trim);
    if (t->n > n) t->sys_seg = n;
}

/* Ends the head (system block): later pieces are never merged into it. */
static void head(struct tmpl_turn *t) { t->n_head = t->n; t->barrier = 1; }

/* The role-header templates: an optional system block, then the user's turn and the
 * assistant's header. Plain completion is the same shape with a preamble instead of a
 * system block. */
static const struct wrap {
    const char *sys_open, *sys_close, *user_open, *user_close;
} wraps[TMPL_COUNT] = {
    [TMPL_PLAIN] = {"", "\n\n", "", "\n"},
    [TMPL_LLAMA3] = {"<|start_header_id|>system<|end_header_id|>\n\n", "<|eot_id|>",
                     "<|start_header_id|>user<|end_header_id|>\n\n",
                     "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
    [TMPL_CHATML] = {"<|im_start|>system\n", "<|im_end|>\n", "<|im_start|>user\n",
                     "<|im_end|>\n<|im_start|>assistant\n"},
    [TMPL_ZEPHYR] = {"<|system|>\n", "</s>\n", "<|user|>\n", "</s>\n<|assistant|>\n"},
};

void tmpl_render_turn(int kind, int first, const char *system, const char *user,
                      struct tmpl_turn *t)
{
    int sys = first && system && *system;
    memset(t, 0, sizeof *t);
    t->sys_seg = -1;
    if (kind == TMPL_LLAMA2) {
        /* <s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] ... </s> every turn; the
         * template strips the whole content, so the user's text loses its tail always and
         * its lead only when no system block comes first. */
        t->add_bos = 1;
        tpl(t, "[INST] ");
        if (sys) {
            tpl(t, "<<SYS>>\n");
            sys_text(t, system, 0);
            tpl(t, "\n<</SYS>>\n\n");
        }
        usr_trim(t, user, !sys, 1);
        tpl(t, " [/INST]");
        return;
    }
    if (kind == TMPL_MISTRAL) {
        /* <s>[INST] {system}\n\n{user}[/INST] {answer}</s>[INST] {user}[/INST]: one BOS, no
         * space before [/INST] (Mistral's v3 tokenizer format, Mistral 7B v0.3 and later).
         * The system prompt goes in the first message: Mistral's own template puts it in
         * the last one, which would rewrite the context's start at every turn. */
        t->add_bos = first;
        tpl(t, "[INST] ");
        if (sys) {
            sys_text(t, system, 0);
            tpl(t, "\n\n");
        }
        usr(t, user);
        tpl(t, "[/INST]");
        return;
    }
    /* An unknown kind renders as plain completion (the text continues the context). */
    const struct wrap *w = &wraps[kind > 0 && kind < TMPL_COUNT ? kind : TMPL_PLAIN];
    int trim = kind == TMPL_LLAMA3;   /* its template trims every message */
    t->add_bos = first;
    if (sys) {
        tpl(t, w->sys_open);
        sys_text(t, system, trim);
        tpl(t, w->sys_close);
    }
    head(t);
    tpl(t, w->user_open);
    usr_trim(t, user, trim, trim);
    tpl(t, w->user_close);
}

const char *tmpl_answer_end(int kind)
{
    switch (kind) {
    case TMPL_LLAMA2: return " </s>";
    case TMPL_MISTRAL: return "</s>";
    case TMPL_LLAMA3: return "<|eot_id|>";
    case TMPL_CHATML: return "<|im_end|>\n";
    case TMPL_ZEPHYR: return "</s>\n";
    default: return "\n";   /* the next message starts a line of its own */
    }
}

const char *tmpl_after_eog(int kind)
{
    switch (kind) {
    case TMPL_CHATML:
    case TMPL_ZEPHYR:
    case TMPL_PLAIN: return "\n";
    default: return "";
    }
}

int tmpl_keeps_bos(int kind, int vocab_add_bos)
{
    return kind == TMPL_LLAMA2 || kind == TMPL_LLAMA3 || kind == TMPL_MISTRAL || vocab_add_bos;
}

size_t tmpl_flatten(const struct tmpl_turn *t, char *buf, size_t cap)
{
    size_t n = 0;
    for (int i = 0; i < t->n; i++) {
        for (size_t j = 0; j < t->seg[i].len; j++, n++)
            if (n + 1 < cap) buf[n] = t->seg[i].text[j];
    }
    if (cap) buf[n < cap ? n : cap - 1] = 0;
    return n;
}
