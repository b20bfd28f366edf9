/* core/words: splits user text into words and decides, by a fixed public rule, how each word
 * is treated before it is sent. Which words are public is never decided by noise, so the DP
 * guarantee of the sanitized words is unaffected by this rule; the public rule itself is
 * published (assets/public-words.txt, embedded at build time).
 *
 * Units (byte offsets into the clean text, see words_split):
 *   WORDS_ALPHA   an optional single leading space (U+0020) + a maximal run of letters and
 *                 combining marks (\p{L}, \p{M}); an apostrophe (' or U+2019) between two
 *                 letters stays inside ("don't", "O'Neil").
 *   WORDS_NUMBER  the same run when it holds at least one digit (\p{N}): "1990", " 3rd",
 *                 "A12B" (letters and digits next to each other are one unit).
 *   WORDS_PUNCT   a maximal run of other non-space code points (punctuation, symbols, a
 *                 combining mark with no letter before it); each byte that is not
 *                 well-formed UTF-8 is a unit of its own.
 *   WORDS_SPACE   a maximal run of White_Space (a final U+0020 before a word goes to the word).
 *
 * Treatments:
 *   WORDS_PUBLIC    sent as typed, ε 0.
 *   WORDS_SANITIZE  replaced by the mechanism over its cluster; costs ε.
 *   WORDS_RANDOM    every letter replaced by a uniformly random ASCII letter of the same
 *                   case, every digit by a uniformly random digit, other characters kept
 *                   (words_randomize). All values of one shape give the same output
 *                   distribution: ε 0 against the value; the shape (length, case and digit
 *                   positions) is disclosed. Used for anything with a digit and for every
 *                   letter/digit unit inside an e-mail address or URL.
 *   WORDS_CONTROL   spaces and punctuation, sent as typed, ε 0 (in every mode, marked
 *                   spans included).
 *
 * Modes:
 *   WORDS_AUTO (default)  a letter word is PUBLIC iff its lowercase form is in the public
 *       list, it has no non-ASCII letter, and it is lowercase, or capitalized / all-caps at
 *       the start of a sentence (start of text, or the previous non-space unit ends in
 *       . ! ? : or a newline came between; opening quotes and brackets are skipped).
 *       "I" is public in any position (also "I'm", "I'll"). Contractions are public when
 *       their stem is: 's 't 're 've 'll 'd 'm, with n't on the stem ("don't" → "do",
 *       "can't", "won't", "ain't", "shan't"). Everything else with letters is SANITIZE:
 *       names and places inside a sentence, all-caps words of 2+ letters inside a sentence,
 *       mixed case, words outside the list. Numbers: RANDOM.
 *   WORDS_ALL     every letter word SANITIZE, numbers RANDOM.
 *   WORDS_MARKED  only marked spans are treated (letters SANITIZE, digits RANDOM), every
 *                 other word PUBLIC.
 *   In every mode: e-mail addresses and URLs are RANDOM, marked spans are never PUBLIC.
 *
 * Marked spans: the user writes {{ secret words }}. The markers are removed from the text
 * that is sent (the clean text); "{{" also swallows one space right after it and "}}" one
 * space right before it, so "my name is {{ Ann Lee }}." is sent as "my name is Ann Lee."
 * with "Ann" and "Lee" marked. A "{{" inside an open span is dropped; a "}}" with no open
 * span is ordinary text; an unclosed "{{" marks everything to the end of the text. A unit
 * that touches a marked byte is marked as a whole.
 *
 * E-mail / URL spans: a whitespace-delimited chunk, with opening ( < [ " ' and closing
 * . , ; : ! ? ) > ] " ' trimmed off its ends, is an address when it contains "://" or begins
 * with "www." (any case), or has an '@' with something before it and a '.' after it followed
 * by at least one more character.
 *
 * Nothing in this module allocates memory for user text: words_split writes into arrays the
 * caller owns (the core's guarded region). */
#ifndef CMIF_CORE_WORDS_H
#define CMIF_CORE_WORDS_H

#include <stddef.h>
#include <stdint.h>

enum words_cls { WORDS_ALPHA = 1, WORDS_NUMBER = 2, WORDS_PUNCT = 3, WORDS_SPACE = 4 };
enum words_treat { WORDS_PUBLIC = 1, WORDS_SANITIZE = 2, WORDS_RANDOM = 3, WORDS_CONTROL = 4 };
enum words_mode { WORDS_AUTO = 0, WORDS_ALL = 1, WORDS_MARKED = 2 };
/* Bits of words_unit.marked. */
enum { WORDS_MARK_USER = 1 /* inside {{ }} */, WORDS_MARK_ADDRESS = 2 /* e-mail or URL */ };
/* Case patterns (ASCII letters only; other letters are ignored). One uppercase letter alone
 * ("I", "A") is CAPITALIZED; UPPER needs two or more uppercase letters and no lowercase. */
enum words_case { WORDS_CASE_NONE = 0, WORDS_CASE_LOWER = 1, WORDS_CASE_CAPITALIZED = 2,
                  WORDS_CASE_UPPER = 3, WORDS_CASE_MIXED = 4 };

struct words_unit {
    size_t off, len; /* bytes in the clean text; ALPHA/NUMBER include the leading space */
    int cls;         /* enum words_cls */
    int treat;       /* enum words_treat */
    int marked;      /* WORDS_MARK_* bits */
};

/* The public word list: a hash set of lowercase ASCII words. */
struct words_list;

/* Opens the list from text (one word per line, '#' comment lines and blank lines skipped,
 * words folded to lowercase); text NULL opens the list embedded at build time
 * (assets/public-words.txt). Returns 0, or -1 with err set. */
int words_list_open(struct words_list **out, const char *text, size_t len, char *err,
                    size_t errlen);
void words_list_close(struct words_list *pl);
/* Number of words in the list. */
size_t words_list_size(const struct words_list *pl);
/* 1 when word (n bytes, ASCII case-insensitive) is in the list; 0 otherwise, and always 0
 * for a word with a non-ASCII byte. */
int words_list_has(const struct words_list *pl, const char *word, size_t n);

/* Splits len bytes of text (user text: may hold secrets) into units and decides each unit's
 * treatment under mode (enum words_mode). pl is needed for WORDS_AUTO (may be NULL for the
 * other modes). Writes the clean text (markers removed; at most len bytes; clean may be text
 * itself) to clean and its length to *clean_len, and at most max_units units to units
 * (max_units = len + 1 always suffices) with *n_units set. Returns 0, or -1 with err set
 * (bad mode, AUTO without a list, max_units too small). */
int words_split(const struct words_list *pl, int mode, const char *text, size_t len,
                struct words_unit *units, size_t max_units, size_t *n_units, char *clean,
                size_t *clean_len, char *err, size_t errlen);

/* Case pattern of a word (n bytes; the leading space and non-letters are ignored). */
int words_case_of(const char *word, size_t n);
/* Copies n bytes from src (a substitute, usually lowercase) to dst giving it the case
 * pattern: LOWER → lowercase, CAPITALIZED → first ASCII letter upper and the rest lower,
 * UPPER → uppercase; NONE and MIXED copy src unchanged. Non-ASCII bytes are copied as they
 * are. dst may be src. So a substitute takes the typed word's case: "Paris" → "London". */
void words_apply_case(char *dst, const char *src, size_t n, int pattern);

/* A uniform integer in [0, upper): libsodium's randombytes_uniform has this type (and no
 * modulo bias); tests pass a seeded generator. */
typedef uint32_t (*words_rand_fn)(const uint32_t upper);
/* Writes a random string of the same shape as in (n bytes) to out (room for n bytes; out
 * may be in): an ASCII uppercase letter → one of the 26 uppercase letters, any other letter
 * (\p{L}, one code point) → one of the 26 lowercase letters, a digit (\p{N}) → one of
 * '0'..'9', each drawn uniformly and independently; combining marks are dropped; every other
 * code point and every byte that is not UTF-8 is copied. Returns the bytes written (<= n;
 * equal to n for ASCII input). */
size_t words_randomize(const char *in, size_t n, char *out, words_rand_fn rnd);

/* Names for reports and options: "alpha"/"number"/"punct"/"space",
 * "public"/"sanitize"/"random"/"control", "auto"/"all"/"marked"; "?" when out of range. */
const char *words_cls_name(int cls);
const char *words_treat_name(int treat);
const char *words_mode_name(int mode);
/* The mode named by s ("auto", "all", "marked"), or -1. */
int words_mode_parse(const char *s);

#endif
