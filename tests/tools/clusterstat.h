/* tests/tools/clusterstat: quality figures of a partition (core/cluster), for the tests and
 * the clusterq tool: how close members are to their seed, and how much of another
 * partition's clusters it keeps together. */
#ifndef CMIF_TESTS_TOOLS_CLUSTERSTAT_H
#define CMIF_TESTS_TOOLS_CLUSTERSTAT_H

struct cluster;

/* Mean cosine of each cluster's members to its seed (its lowest id: the greedy's seed). */
double clusterstat_seed_cos(const struct cluster *c);
/* Per cluster of ref, the share of its members found in c's cluster of its seed, averaged
 * over ref's clusters. */
double clusterstat_seed_recall(const struct cluster *ref, const struct cluster *c);
/* Share of ref's same-cluster pairs that c keeps together. */
double clusterstat_pair_recall(const struct cluster *ref, const struct cluster *c);

#endif
