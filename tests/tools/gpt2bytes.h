/* tests/tools/gpt2bytes: GPT-2's byte -> printable character map, as byte-level BPE
 * vocabularies spell their tokens (space is U+0120 'Ġ', newline U+010A, ...). Written here
 * independently of core/tokenizer so tests and benchmarks that build BPE vocabularies do
 * not take the map from the code under test. Header-only. */
#ifndef CMIF_TESTS_GPT2BYTES_H
#define CMIF_TESTS_GPT2BYTES_H

#include <stddef.h>
#include <stdint.h>

/* Bytes that GPT-2 keeps as their own character. */
static inline int gpt2bytes_printable(unsigned b)
{
    return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
}

/* Writes the UTF-8 (1 or 2 bytes, no NUL) of byte b's character to out; returns its length.
 * The others map, in byte order, to U+0100 onwards. */
static inline size_t gpt2bytes_map(uint8_t b, char *out)
{
    uint32_t cp = b;
    if (!gpt2bytes_printable(b)) {
        uint32_t k = 0;
        for (unsigned x = 0; x < b; x++)
            if (!gpt2bytes_printable(x)) k++;
        cp = 256 + k;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xC0 | cp >> 6);
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

#endif
