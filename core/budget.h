/* core/budget: the session's privacy accountant (sequential composition).
 *
 * A message of n sanitized tokens at ε per token costs n·ε; public and control tokens cost 0.
 * Spending only goes up: there is no refund and no reset (a new session is a new budget).
 * Costs are summed in double; a message fits when spent + cost <= total + 1e-9·total, the
 * tolerance absorbing binary rounding of decimal ε such as 0.1 (ten 0.1-tokens fit in 1.0). */
#ifndef CMIF_CORE_BUDGET_H
#define CMIF_CORE_BUDGET_H

#include <stddef.h>

struct budget;

/* Checks that x is a usable ε or budget: finite and > 0. what names it in the error. */
int budget_valid(double x, const char *what, char *err, size_t errlen);

int budget_open(struct budget **out, double total, char *err, size_t errlen);
void budget_close(struct budget *b);

/* Cost of a message of n_sanitized tokens at eps each (n·ε). */
double budget_cost(size_t n_sanitized, double eps);
/* 0 when cost fits in what is left; -1 with err saying what is left and what it would cost
 * (facts only: the caller words the advice, in the terms of its own interface). */
int budget_check(const struct budget *b, double cost, char *err, size_t errlen);
/* Check and, when it fits, record the cost. Nothing is recorded on refusal. cost 0 is fine. */
int budget_spend(struct budget *b, double cost, char *err, size_t errlen);

double budget_total(const struct budget *b);
double budget_spent(const struct budget *b);
double budget_remaining(const struct budget *b);
size_t budget_messages(const struct budget *b);   /* messages charged so far */

#endif
