#include "gpu/probecache.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "gpu/cl_util.h"

extern char **environ;

#define RECORD "no-gpu v1 "

static void put(crypto_generichash_state *s, const void *p, size_t n)
{
    crypto_generichash_update(s, p, n);
    crypto_generichash_update(s, (const unsigned char *)"", 1);   /* keeps parts apart */
}

/* A file's first 64 KiB (an .icd file names a library; boot_id is one line). */
static void put_file(crypto_generichash_state *s, const char *path)
{
    char buf[65536];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf) : -1;
    if (fd >= 0) close(fd);
    put(s, path, strlen(path));
    put(s, buf, n > 0 ? (size_t)n : 0);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* dir's entries whose names start with prefix ("" for all), in name order, with their
 * inode and mtime; the contents too when with_data. */
static void put_dir(crypto_generichash_state *s, const char *dir, const char *prefix,
                    int with_data)
{
    put(s, dir, strlen(dir));
    DIR *d = opendir(dir);
    if (!d) return;
    char *names[256];
    size_t n = 0, plen = strlen(prefix);
    struct dirent *e;
    while ((e = readdir(d)) && n < sizeof names / sizeof names[0])
        if (e->d_name[0] != '.' && !strncmp(e->d_name, prefix, plen))
            if ((names[n] = strdup(e->d_name))) n++;
    closedir(d);
    qsort(names, n, sizeof names[0], name_cmp);
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        memset(&st, 0, sizeof st);
        (void)stat(path, &st);
        long long meta[3] = {(long long)st.st_ino, (long long)st.st_mtime, (long long)st.st_rdev};
        put(s, names[i], strlen(names[i]));
        put(s, meta, sizeof meta);
        if (with_data) put_file(s, path);
        free(names[i]);
    }
}

static int steers_gpus(const char *var)
{
    static const char *const pre[] = {"OCL_", "OPENCL_", "POCL_", "CUDA_", "NVIDIA_", "ROCR_",
                                      "HIP_", "GPU_", "RUSTICL_", "MESA_", "LD_LIBRARY_PATH="};
    for (size_t i = 0; i < sizeof pre / sizeof pre[0]; i++)
        if (!strncmp(var, pre[i], strlen(pre[i]))) return 1;
    return 0;
}

static void key_hex(char hex[65])
{
    unsigned char h[32];
    crypto_generichash_state s;
    crypto_generichash_init(&s, NULL, 0, sizeof h);
    put_file(&s, "/proc/sys/kernel/random/boot_id");
    put_dir(&s, "/etc/OpenCL/vendors", "", 1);
    put_dir(&s, "/dev/dri", "", 0);
    put_dir(&s, "/dev", "nvidia", 0);
    put_dir(&s, "/dev", "kfd", 0);
    for (char **v = environ; v && *v; v++)
        if (steers_gpus(*v)) put(&s, *v, strlen(*v));
    crypto_generichash_final(&s, h, sizeof h);
    sodium_bin2hex(hex, 65, h, sizeof h);
}

static void record_path(char *path, size_t n)
{
    char dir[4096];
    snprintf(path, n, "%s/gpu-probe", clu_cache_dir(dir, sizeof dir));
}

int probecache_no_gpu(void)
{
    char path[4200], want[sizeof RECORD + 65], got[sizeof want + 1];
    record_path(path, sizeof path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, got, sizeof got);
    close(fd);
    char hex[65];
    key_hex(hex);
    snprintf(want, sizeof want, RECORD "%s", hex);
    return n == (ssize_t)strlen(want) + 1 && !memcmp(got, want, strlen(want)) &&
           got[strlen(want)] == '\n';
}

void probecache_store(int no_gpu)
{
    char path[4200], tmp[4300], dir[4096];
    record_path(path, sizeof path);
    if (!no_gpu) {
        (void)unlink(path);
        return;
    }
    char hex[65], line[sizeof RECORD + 66];
    key_hex(hex);
    int len = snprintf(line, sizeof line, RECORD "%s\n", hex);
    clu_cache_dir(dir, sizeof dir);
    if (clu_mkdirs(dir) != 0) return;
    snprintf(tmp, sizeof tmp, "%s/.gpu-probe-XXXXXX", dir);
    int fd = mkstemp(tmp);
    if (fd < 0) return;
    int ok = write(fd, line, (size_t)len) == len;
    if (close(fd) != 0) ok = 0;
    if (!ok || rename(tmp, path) != 0) unlink(tmp);
}
