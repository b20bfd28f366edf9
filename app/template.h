/* app/template: chat templates (Llama 2 [INST], Mistral [INST], Llama 3 header tokens, ChatML,
 * Zephyr) and plain completion. A turn is rendered as a list of segments: template text (special
 * tokens parsed, never sanitized) and user content (sanitized by the core). Rendering is
 * incremental so the KV cache can be reused: each turn only adds its own segments. */
#ifndef CMIF_APP_TEMPLATE_H
#define CMIF_APP_TEMPLATE_H

#include <stddef.h>

enum tmpl_kind {
    TMPL_PLAIN = 0, TMPL_LLAMA2, TMPL_LLAMA3, TMPL_CHATML, TMPL_ZEPHYR, TMPL_MISTRAL, TMPL_COUNT
};

enum tmpl_seg_kind { TMPL_SEG_TEMPLATE = 0, TMPL_SEG_USER = 1 };

struct tmpl_seg {
    int kind;               /* enum tmpl_seg_kind */
    const char *text;       /* static template text or a pointer into the caller's text */
    size_t len;
};

#define TMPL_MAX_SEGS 12

/* One turn's segments and whether BOS goes first. */
struct tmpl_turn {
    struct tmpl_seg seg[TMPL_MAX_SEGS];
    int n;
    int add_bos;
    int n_head;             /* segments [0, n_head) are the conversation head (system
                               prompt), kept when old turns are dropped; 0 for Llama 2 */
    int sys_seg;            /* the system prompt's segment, -1 when the turn has none */
    int barrier;            /* internal: the next template piece starts a new segment */
    char tbuf[256];         /* merged template text (segments point here); do not copy */
    size_t tlen;
};

const char *tmpl_name(int kind);
/* Name → kind ("llama2", "llama3", "chatml", "zephyr", "mistral", "plain"); -1 when unknown. */
int tmpl_parse(const char *name);
/* Kind from a GGUF tokenizer.chat_template (Jinja) string; TMPL_PLAIN when text is NULL
 * or empty. *known is set to 0 when a template exists but is not recognised (then
 * ChatML, the most common convention, is returned). */
int tmpl_detect(const char *text, size_t len, int *known);

/* Renders the prompt part of a turn: everything up to the point where the assistant's
 * answer starts. first: this is the first turn of the conversation (BOS, system prompt).
 * system may be NULL or "". user is the message (not copied). */
void tmpl_render_turn(int kind, int first, const char *system, const char *user,
                      struct tmpl_turn *out);
/* Template text that closes an assistant answer in the context when the model did not
 * end it itself (stopped by the user or a length limit); "\n" for plain completion, so
 * the next message starts a line of its own. */
const char *tmpl_answer_end(int kind);
/* Template text that follows the model's own end-of-generation token ("" or "\n"; plain
 * completion, which keeps no such token, "\n" after the answer). */
const char *tmpl_after_eog(int kind);
/* Whether a first turn keeps the BOS tmpl_render_turn asks for, given the vocabulary's own
 * add_bos flag (tokenizer.ggml.add_bos_token): the Llama 2/3 and Mistral templates write
 * BOS in their own text, so it stays; ChatML, Zephyr and plain completion do not, and
 * llama.cpp adds BOS to them only when the vocabulary says so (SmolLM2 and Qwen do not). */
int tmpl_keeps_bos(int kind, int vocab_add_bos);

/* Concatenates a rendered turn into buf (tests, /show); returns the needed length. */
size_t tmpl_flatten(const struct tmpl_turn *t, char *buf, size_t cap);

#endif
