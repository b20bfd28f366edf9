/* core/ledger: the per-user privacy ledger that survives restarts. It records the ε spent
 * (each charge with its time) over a rolling 24-hour window, plus the lifetime total, so that
 * restarting cmif never silently renews the budget. The day limit is a setting the caller
 * passes in, not state.
 *
 * File (path chosen by the caller, e.g. $XDG_STATE_HOME/cmif/ledger; the parent directory is
 * created 0700 when missing): mode 0600, opened with O_NOFOLLOW (a symlink is refused; a
 * wider mode is narrowed to 0600), owned by the user. Binary, little-endian:
 *   "CMIFLDG1", u32 version (1), u32 n, f64 lifetime, n × (i64 unix seconds, f64 ε),
 *   32-byte keyed BLAKE2b (crypto_generichash) of everything before it,
 * under a per-user key: 32 random bytes in a 0600 key file (default: path + ".key"),
 * created with the ledger on first use. The lifetime total includes the charges of the
 * window; charges older than 24 hours are dropped from the list at the next write and stay
 * counted in the lifetime total only.
 *
 * Failing closed: a ledger that is damaged, truncated, tampered with, or checked with the
 * wrong key, a ledger whose key is missing, or a key whose ledger is missing, is refused
 * with a message naming the file; nothing is changed and nothing is charged. Only
 * ledger_reset (an explicit user action that forgets what was spent) starts a new one.
 *
 * Concurrency: every read-modify-write holds an exclusive flock on a lock file beside the
 * ledger (path + ".lock"; a lock on the ledger itself would not survive its atomic
 * replacement), re-reads and re-verifies the file, and writes path + ".tmp", fsyncs it and
 * renames it over the ledger, so two processes charging at once never lose a charge.
 *
 * Time: `now` is unix seconds, passed in (tests inject it). Today's spend is the sum of the
 * charges stamped in (now − 24 h, now]; a charge stamped after now (the clock was set back)
 * also counts as today's, so changing the clock never frees budget early. A charge fits
 * when today + cost <= limit + 1e-9·limit (the tolerance of core/budget). */
#ifndef CMIF_CORE_LEDGER_H
#define CMIF_CORE_LEDGER_H

#include <stddef.h>
#include <stdint.h>

#define LEDGER_WINDOW_S 86400 /* the rolling window: 24 hours */

struct ledger;

/* Opens (creating on first use: neither the ledger nor its key exists) the ledger at path
 * with its key at key_path (NULL: path + ".key"). Returns 0, or -1 with err set (and *out
 * NULL) when the ledger cannot be read or fails its integrity check. */
int ledger_open(struct ledger **out, const char *path, const char *key_path, char *err,
                size_t errlen);
void ledger_close(struct ledger *l);

/* Re-reads the file (another process may have charged). 0, or -1 with err set (fail closed:
 * the in-memory state is kept as it was). */
int ledger_refresh(struct ledger *l, char *err, size_t errlen);

/* ε spent in the 24 hours up to now, and in all time (as of the last open, refresh or
 * charge of this handle). */
double ledger_today(const struct ledger *l, int64_t now);
double ledger_lifetime(const struct ledger *l);

/* Whether cost fits under day_limit now, from the state as of the last read; does not write.
 * Returns 0 when it fits, -1 when not; *left (may be NULL) gets day_limit − today (>= 0). */
int ledger_check(const struct ledger *l, double cost, double day_limit, int64_t now,
                 double *left);

/* Records a charge of cost at now: under the lock, re-reads and verifies the file, refuses
 * when today + cost exceeds day_limit, else appends the charge, adds cost to the lifetime
 * total and writes the file atomically. cost 0 records nothing. Returns 0 when charged, 1
 * when refused for the limit (err says what is left today; nothing written), -1 on error
 * (err set; nothing charged). The handle's state is updated from the file either way. */
int ledger_charge(struct ledger *l, double cost, double day_limit, int64_t now, char *err,
                  size_t errlen);

/* When (unix seconds) enough of today's charges will have left the window for cost to fit
 * under day_limit: now when it fits already, -1 when it never can (cost > day_limit). For
 * "try again at HH:MM" messages. */
int64_t ledger_next_free(const struct ledger *l, double cost, double day_limit, int64_t now);

/* Explicit user action: forgets every charge and the lifetime total, with a new key, under
 * the lock. Works on a damaged or missing ledger (that is what it is for). Returns 0, or -1
 * with err set. */
int ledger_reset(const char *path, const char *key_path, char *err, size_t errlen);

#endif
