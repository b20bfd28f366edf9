/* core/budget: sequential-composition accountant (see budget.h). */
#include "core/budget.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

struct budget {
    double total, spent;
    size_t messages;
};

int budget_valid(double x, const char *what, char *err, size_t errlen)
{
    if (isnan(x)) { snprintf(err, errlen, "%s is NaN; give a positive finite number", what); return -1; }
    if (isinf(x)) { snprintf(err, errlen, "%s is infinite; give a positive finite number", what); return -1; }
    if (x < 0) { snprintf(err, errlen, "%s is negative (%g); give a positive number", what, x); return -1; }
    if (x == 0) { snprintf(err, errlen, "%s is zero; give a positive number", what); return -1; }
    return 0;
}

int budget_open(struct budget **out, double total, char *err, size_t errlen)
{
    *out = NULL;
    if (budget_valid(total, "privacy budget", err, errlen)) return -1;
    struct budget *b = calloc(1, sizeof *b);
    if (!b) { snprintf(err, errlen, "budget: out of memory"); return -1; }
    b->total = total;
    *out = b;
    return 0;
}

void budget_close(struct budget *b) { free(b); }

double budget_cost(size_t n_sanitized, double eps) { return (double)n_sanitized * eps; }

static int fits(const struct budget *b, double cost)
{
    return b->spent + cost <= b->total + 1e-9 * b->total;
}

int budget_check(const struct budget *b, double cost, char *err, size_t errlen)
{
    if (isnan(cost) || cost < 0 || isinf(cost)) {
        snprintf(err, errlen, "invalid message cost %g", cost);
        return -1;
    }
    if (fits(b, cost)) return 0;
    double left = b->total - b->spent;
    if (left < 0) left = 0;
    snprintf(err, errlen,
             "privacy budget exceeded: this message would cost ε = %g but only %g of the "
             "session budget %g is left (spent %g)", cost, left, b->total, b->spent);
    return -1;
}

int budget_spend(struct budget *b, double cost, char *err, size_t errlen)
{
    if (budget_check(b, cost, err, errlen)) return -1;
    b->spent += cost;          /* cost >= 0: spending only goes up */
    b->messages++;
    return 0;
}

double budget_total(const struct budget *b) { return b->total; }
double budget_spent(const struct budget *b) { return b->spent; }
double budget_remaining(const struct budget *b)
{
    double r = b->total - b->spent;
    return r > 0 ? r : 0;
}
size_t budget_messages(const struct budget *b) { return b->messages; }
