/* tests/bench/bench_chat: the chat session over a context that fills.
 *   chat: a scripted session of 100 and of 1,000 short messages on the bundled model with a
 *         512-token context, messages/s at each and their ratio (the context is shifted,
 *         never replayed, when it fills, so the cost per message stays flat: ratio ≈ 1);
 *         and the time to refuse a 10 MB message (refused by its length, never tokenized). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/chat.h"
#include "app/engine.h"
#include "app/opts.h"
#include "core/core.h"
#include "gpu/decoder.h"
#include "tests/bench/bench.h"
#include "tests/tools/testrng.h"

#define CHAT_MODEL "assets/models/cmif-tiny.gguf"

static int open_chat(struct engine *e, int threads, char *err, size_t errlen)
{
    struct opts o;
    struct core_options co;
    opts_defaults(&o);
    core_defaults(&co);
    core_options_plain(&co);   /* the decoder's cost is measured, not the budget */
    o.ctx = 512;
    o.threads = threads;
    o.device = DEC_DEV_CPU;
    struct chat_params cp = {.n_predict = 16, .sp = o.sp};
    cp.sp.temp = 0;
    return engine_open(e, CHAT_MODEL, &o, &co, 0, err, errlen) ||
           engine_start_chat(e, NULL, &cp, err, errlen);
}

/* Messages/s of a session of n short messages (6 words from a small list each). */
static double session_rate(struct engine *e, int n, int *shifts, char *err, size_t errlen)
{
    static const char *const w[] = {"the", "cat", "sat", "on", "a", "mat", "Lily", "went",
                                    "to", "park", "happy", "dog", "big", "red", "ball"};
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    char msg[128];
    chat_clear(e->chat);
    double t0 = bench_now();
    for (int i = 0; i < n; i++) {
        size_t l = 0;
        for (int k = 0; k < 6; k++)
            l += (size_t)snprintf(msg + l, sizeof msg - l, "%s%s", k ? " " : "",
                                  w[testrng_next(&rng) % (sizeof w / sizeof w[0])]);
        if (chat_send(e->chat, msg, NULL, err, errlen) < 0) return -1;
    }
    double dt = bench_now() - t0;
    /* Turns the model no longer sees: what the context shift dropped. */
    size_t nent;
    chat_entries(e->chat, &nent);
    *shifts = (int)(nent / 2 - chat_nturns(e->chat));
    return n / dt;
}

static int bench_chat(struct bench *b)
{
    bench_title(b, "chat: scripted session on a 512-token context (bundled model, context shift)");
    if (access(CHAT_MODEL, R_OK) != 0) {
        bench_row(b, "skipped: %s not found (run from the source tree)", CHAT_MODEL);
        return 0;
    }
    char err[512] = "";
    struct engine e;
    memset(&e, 0, sizeof e);
    if (open_chat(&e, b->max_threads, err, sizeof err)) {
        fprintf(stderr, "chat: %s\n", err);
        engine_close(&e);
        return -1;
    }
    int counts[2] = {100, b->quick ? 200 : 1000}, dropped[2];
    double rate[2];
    bench_row(b, "%-10s %12s %14s", "messages", "messages/s", "turns dropped");
    for (int i = 0; i < 2; i++) {
        if ((rate[i] = session_rate(&e, counts[i], &dropped[i], err, sizeof err)) < 0) {
            fprintf(stderr, "chat: %s\n", err);
            engine_close(&e);
            return -1;
        }
        bench_row(b, "%-10d %12.1f %14d", counts[i], rate[i], dropped[i]);
    }
    bench_row(b, "rate at %d / rate at %d: %.2f (linear in the messages: about 1)", counts[1],
              counts[0], rate[1] / rate[0]);

    size_t big = 10u << 20;
    char *msg = malloc(big + 1);
    if (!msg) return -1;
    memset(msg, 'b', big);
    msg[big] = 0;
    double t0 = bench_now();
    int rc = chat_send(e.chat, msg, NULL, err, sizeof err);
    double dt = bench_now() - t0;
    free(msg);
    engine_close(&e);
    if (rc != -1 || !strstr(err, "message too long")) {
        fprintf(stderr, "chat: the 10 MB message was not refused (%s)\n", err);
        return -1;
    }
    bench_row(b, "10 MB message refused in %.3f ms: %s", dt * 1e3, err);
    return 0;
}
BENCH_SECTION(chat, "chat", "messages/s of a 100- and 1,000-message session on a 512-token context",
              60, bench_chat)
