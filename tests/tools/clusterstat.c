/* tests/tools/clusterstat: see clusterstat.h. */
#include "tests/tools/clusterstat.h"

#include "core/cluster.h"

double clusterstat_seed_cos(const struct cluster *c)
{
    double sum = 0;
    long n = 0;
    for (int32_t cl = 0; cl < cluster_count(c); cl++) {
        const int32_t *m;
        int sz = cluster_members(c, cl, &m), ns;
        const float *s = cluster_sims(c, m[0], &ns);
        for (int i = 1; i < sz; i++, n++) sum += s[i];
    }
    return n ? sum / (double)n : 0;
}

double clusterstat_seed_recall(const struct cluster *ref, const struct cluster *c)
{
    double rec = 0;
    for (int32_t cl = 0; cl < cluster_count(ref); cl++) {
        const int32_t *m;
        int sz = cluster_members(ref, cl, &m), hit = 0;
        for (int i = 0; i < sz; i++) hit += cluster_of(c, m[i]) == cluster_of(c, m[0]);
        rec += (double)hit / sz;
    }
    return cluster_count(ref) ? rec / cluster_count(ref) : 0;
}

double clusterstat_pair_recall(const struct cluster *ref, const struct cluster *c)
{
    long pairs = 0, kept = 0;
    for (int32_t cl = 0; cl < cluster_count(ref); cl++) {
        const int32_t *m;
        int sz = cluster_members(ref, cl, &m);
        for (int i = 0; i < sz; i++)
            for (int j = i + 1; j < sz; j++, pairs++) kept += cluster_of(c, m[i]) == cluster_of(c, m[j]);
    }
    return pairs ? (double)kept / (double)pairs : 0;
}
