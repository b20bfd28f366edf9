/* Mutex-protected FIFO with a self-pipe for wake-ups; see ui/queue.h. */
#include "ui/queue.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

struct queue {
    pthread_mutex_t mu;
    struct queue_item *head, *tail;
    int rfd, wfd;
};

int queue_open(struct queue **out, char *err, size_t errlen)
{
    *out = NULL;
    struct queue *q = calloc(1, sizeof *q);
    if (!q) {
        snprintf(err, errlen, "queue: out of memory");
        return -1;
    }
    int fds[2];
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
        snprintf(err, errlen, "queue: pipe: %s", strerror(errno));
        free(q);
        return -1;
    }
    q->rfd = fds[0];
    q->wfd = fds[1];
    pthread_mutex_init(&q->mu, NULL);
    *out = q;
    return 0;
}

void queue_close(struct queue *q)
{
    if (!q) return;
    struct queue_item *it;
    while ((it = queue_pop(q))) queue_item_free(it);
    close(q->rfd);
    close(q->wfd);
    pthread_mutex_destroy(&q->mu);
    free(q);
}

int queue_push(struct queue *q, int type, int status, double value, const char *text, size_t len)
{
    struct queue_item *it = calloc(1, sizeof *it);
    if (!it) return -1;
    it->type = type;
    it->status = status;
    it->value = value;
    if (text) {
        it->text = malloc(len + 1);
        if (!it->text) {
            free(it);
            return -1;
        }
        memcpy(it->text, text, len);
        it->text[len] = 0;
        it->len = len;
    }
    pthread_mutex_lock(&q->mu);
    if (q->tail) q->tail->next = it;
    else q->head = it;
    q->tail = it;
    pthread_mutex_unlock(&q->mu);
    /* A full pipe already means "wake up": EAGAIN is fine. */
    char b = 1;
    ssize_t w;
    do w = write(q->wfd, &b, 1);
    while (w < 0 && errno == EINTR);
    return 0;
}

struct queue_item *queue_pop(struct queue *q)
{
    char buf[256];
    while (read(q->rfd, buf, sizeof buf) > 0) {}
    pthread_mutex_lock(&q->mu);
    struct queue_item *it = q->head;
    if (it) {
        q->head = it->next;
        if (!q->head) q->tail = NULL;
        it->next = NULL;
    }
    pthread_mutex_unlock(&q->mu);
    return it;
}

void queue_item_free(struct queue_item *it)
{
    if (!it) return;
    /* Items carry answer pieces and notes that may quote the user: wiped before reuse. */
    if (it->text) sodium_memzero(it->text, it->len);
    free(it->text);
    free(it);
}

int queue_fd(const struct queue *q) { return q->rfd; }
