/* ui/queue: hands events (streamed text, status, end of an answer) from the generation
 * thread to the UI thread. Every push writes a byte to a pipe, so the input loop can
 * poll(2) on stdin and queue_fd() together and wake as soon as a token arrives. */
#ifndef CMIF_UI_QUEUE_H
#define CMIF_UI_QUEUE_H

#include <stddef.h>

enum queue_ev {
    QUEUE_TEXT = 1,   /* a piece of the answer */
    QUEUE_INFO,       /* a notice for the transcript (context full, dropped turns, ...) */
    QUEUE_ERROR,      /* an error message */
    QUEUE_REPORT,     /* the privacy report of the message just sent is ready */
    QUEUE_DONE,       /* the answer ended; status holds the result code */
};

struct queue_item {
    int type;         /* enum queue_ev */
    int status;
    double value;     /* e.g. tokens/s for QUEUE_DONE */
    char *text;       /* owned by the item (NUL-terminated), may be NULL */
    size_t len;
    struct queue_item *next;
};

struct queue;

int queue_open(struct queue **out, char *err, size_t errlen);
void queue_close(struct queue *q);
/* Copies text. 0, or -1 when out of memory (the event is dropped). Thread-safe. */
int queue_push(struct queue *q, int type, int status, double value, const char *text, size_t len);
/* Oldest item or NULL; free it with queue_item_free. Drains the wake pipe. */
struct queue_item *queue_pop(struct queue *q);
void queue_item_free(struct queue_item *it);
/* Readable end of the wake pipe (non-blocking). */
int queue_fd(const struct queue *q);

#endif
