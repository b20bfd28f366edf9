/* app/train/bpe_train: learns a byte-fallback BPE vocabulary in SentencePiece form, so that
 * core/tokenizer's SPM encoder ("llama" model) segments text the way it was learned.
 *
 * Layout: <unk>, <s>, </s>, <|im_start|>, <|im_end|> (control), the 256 byte tokens
 * <0x00>..<0xFF>, the corpus's characters, then merged pieces. A merge's score is minus
 * its rank, so the encoder (highest-scoring pair first) replays the merges in order.
 * Words are runs of characters with an optional leading space (▁), as the encoder sees
 * them with add_space_prefix off; newlines are left to byte fallback. */
#ifndef CMIF_APP_TRAIN_BPE_TRAIN_H
#define CMIF_APP_TRAIN_BPE_TRAIN_H

#include <stddef.h>
#include <stdint.h>

struct gguf_out;

enum { BPE_UNK = 0, BPE_BOS = 1, BPE_EOS = 2, BPE_IM_START = 3, BPE_IM_END = 4,
       BPE_BYTE0 = 5, BPE_MIN_VOCAB = BPE_BYTE0 + 256 + 8,
       BPE_MAX_VOCAB = 8192 /* the pair table is (vocab - 261)^2 counters */ };

struct bpe_vocab {
    int n;
    char **pieces;       /* NUL-terminated UTF-8 */
    float *scores;
    int32_t *types;      /* enum tok_type values */
    int n_chars, n_merges;
};

/* Learns at most vocab_size tokens (BPE_MIN_VOCAB .. BPE_MAX_VOCAB) from text; the special
 * token texts in it are boundaries, not learned. 0, or -1 with err set. */
int bpe_train(const char *text, size_t len, int vocab_size, struct bpe_vocab **out,
              char *err, size_t errlen);
void bpe_vocab_free(struct bpe_vocab *v);

/* Writes the tokenizer.* metadata (SPM "llama" model, ids, ChatML chat template). */
void bpe_vocab_to_gguf(const struct bpe_vocab *v, struct gguf_out *w);

/* The ChatML template string written into tokenizer.chat_template. */
extern const char bpe_chatml_template[];

#endif
