/* core/tokenizer: text ↔ token ids for the vocabularies Llama-family GGUFs carry.
 *
 * tokenizer.ggml.model = "llama": SentencePiece-style (scores, byte fallback <0xXX>,
 * leading-space ▁ handling), matching llama.cpp's output exactly.
 * tokenizer.ggml.model = "gpt2": byte-level BPE (merges) with the pre-tokenizer split named
 * by tokenizer.ggml.pre (Llama 3 regex by default). */
#ifndef CMIF_CORE_TOKENIZER_H
#define CMIF_CORE_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "core/gguf.h"

struct gguf;
struct tokenizer;

enum tok_kind { TOK_SPM = 1, TOK_BPE = 2 };

/* Token types as in GGUF tokenizer.ggml.token_type. */
enum tok_type {
    TOK_T_UNDEFINED = GGUF_TOKEN_UNDEFINED, TOK_T_NORMAL = GGUF_TOKEN_NORMAL,
    TOK_T_UNKNOWN = GGUF_TOKEN_UNKNOWN, TOK_T_CONTROL = GGUF_TOKEN_CONTROL,
    TOK_T_USER_DEFINED = GGUF_TOKEN_USER_DEFINED, TOK_T_UNUSED = GGUF_TOKEN_UNUSED,
    TOK_T_BYTE = GGUF_TOKEN_BYTE,
};

/* g must stay open until tok_close: a large merge list (Llama 3's 280k) is put in its table
 * on a thread that reads g while the caller goes on, and the first encoding waits for it.
 * That table is not inherited by fork: a forked child must not encode with t. */
int tok_open(struct tokenizer **out, const struct gguf *g, char *err, size_t errlen);
void tok_close(struct tokenizer *t);

/* Encode len bytes of text. add_bos prepends BOS (when the vocabulary has one);
 * parse_special lets control/user-defined token texts in the input map to their ids
 * (template text only: never for user content). Writes at most max_ids ids; returns 0
 * and sets *n_out, or -1 with err set (invalid UTF-8 is tokenized through byte fallback,
 * not rejected; too many ids is an error). len + 3 ids always suffice.
 * Details (llama.cpp's behaviour unless said otherwise):
 * - add_bos also appends EOS when the vocabulary sets tokenizer.ggml.add_eos_token.
 * - SPM puts a ▁ before the text and after every special token (add_space_prefix), so the
 *   decoded text starts with a space: tok_piece_after drops it after BOS, as llama.cpp does.
 * - Without parse_special no token is matched by its text, user-defined ones included
 *   (llama.cpp matches user-defined tokens always); special texts are then plain text.
 *   Control/unknown tokens are never produced by merging plain text (SentencePiece's
 *   rule; llama.cpp could in principle), so user text can never yield one.
 * - Bytes that are not UTF-8 are kept and decode back unchanged (llama.cpp's BPE turns
 *   them into U+FFFD). Exception to "len + 3": an SPM vocabulary without a ▁ token may
 *   need up to 3 ids per space (then -1, as above). */
int tok_encode(const struct tokenizer *t, const char *text, size_t len, int add_bos,
               int parse_special, int32_t *ids, size_t max_ids, size_t *n_out, char *err,
               size_t errlen);

/* The bytes a token stands for when decoding (▁ → space, <0x0A> → '\n', GPT-2 byte map
 * undone). Control tokens decode to "" unless show_special. Returns the byte count (may
 * exceed cap: then the output is truncated). Not NUL-terminated unless room remains. */
size_t tok_piece(const struct tokenizer *t, int32_t id, int show_special, char *buf, size_t cap);
/* Streaming detokenization: the piece of id when it follows prev. SentencePiece puts a space
 * before the first word; as llama.cpp does, it is dropped when prev is BOS. Same contract as
 * tok_piece otherwise. prev < 0: no previous token. */
size_t tok_piece_after(const struct tokenizer *t, int32_t prev, int32_t id, int show_special,
                       char *buf, size_t cap);
/* The raw vocabulary string of a token (for reports and --pieces). */
const char *tok_text(const struct tokenizer *t, int32_t id, size_t *len);

int tok_kind(const struct tokenizer *t);
int32_t tok_n_vocab(const struct tokenizer *t);
int32_t tok_bos(const struct tokenizer *t);      /* -1 when none */
int32_t tok_eos(const struct tokenizer *t);      /* -1 when none */
int tok_add_bos(const struct tokenizer *t);      /* tokenizer.ggml.add_bos_token, default 1 for llama */
int tok_type(const struct tokenizer *t, int32_t id);
/* End of generation, the set llama.cpp builds from the vocabulary at open: EOS, EOT, EOM,
 * the fill-in-the-middle pad/repo/separator tokens, and every token whose text llama.cpp
 * names (<|eot_id|>, <|eom_id|>, <|end_of_text|>, <|im_end|>, <|endoftext|>, <end_of_turn>,
 * <|end|>, </s>, <EOT>, ...), which also become control tokens whatever the file says. */
int tok_is_eog(const struct tokenizer *t, int32_t id);
/* Id of a token whose vocabulary text is exactly s (special tokens like <|eot_id|>); -1. */
int32_t tok_find(const struct tokenizer *t, const char *s, size_t len);

/* Unicode helpers shared with core/words (the same tables the pre-tokenizer uses).
 * tok_utf8_next: length (1..4) of the well-formed UTF-8 sequence at s (n bytes available)
 * with its code point in *cp; 0 when the bytes there are not one (overlong, surrogate,
 * truncated, stray continuation byte) or n is 0.
 * tok_cp_class: the code point's class: letter (\p{L}), number (\p{N}), combining mark
 * (\p{M}), White_Space, or other (punctuation, symbols, unassigned). Unicode 15.1, the
 * version llama.cpp uses (core/tok_unicode.h, generated from the UCD). */
enum tok_cp_class { TOK_CP_OTHER = 0, TOK_CP_LETTER = 1, TOK_CP_NUMBER = 2, TOK_CP_MARK = 3,
                    TOK_CP_SPACE = 4 };
size_t tok_utf8_next(const char *s, size_t n, uint32_t *cp);
int tok_cp_class(uint32_t cp);

#endif
