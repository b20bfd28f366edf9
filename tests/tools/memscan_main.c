/* memscan: counts the copies of a string in another process's memory (tests of what the
 * chat leaves behind). Reads /proc/PID/mem through every readable mapping of
 * /proc/PID/maps (root, or a tracer, is needed for a non-dumpable process) and prints one
 * line per copy: the mapping's name, the address, the form (bytes, or UTF-32 as wide-char
 * buffers hold it) and some context. Mappings that cannot be read (memfd_secret, guard
 * pages) are counted, not fatal. Exit 0 after the scan (copies found or not), 2 when the
 * process cannot be read at all.
 *   memscan PID STRING */
#include <ctype.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void context(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) putchar(isprint(p[i]) ? p[i] : '.');
}

static size_t scan(const char *name, uintptr_t base, const uint8_t *buf, size_t len,
                   const uint8_t *pat, size_t pn, const char *form)
{
    size_t hits = 0;
    const uint8_t *p = buf, *end = buf + len;
    while (p < end && (p = memmem(p, (size_t)(end - p), pat, pn))) {
        size_t off = (size_t)(p - buf);
        size_t a = off > 24 ? off - 24 : 0, b = off + pn + 24 < len ? off + pn + 24 : len;
        printf("%s 0x%lx %s ", name[0] ? name : "[anon]", (unsigned long)(base + off), form);
        context(buf + a, b - a);
        putchar('\n');
        hits++;
        p += pn;
    }
    return hits;
}

int main(int argc, char **argv)
{
    if (argc != 3 || !argv[2][0]) {
        fprintf(stderr, "usage: memscan PID STRING\n");
        return 2;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/%s/maps", argv[1]);
    FILE *maps = fopen(path, "r");
    snprintf(path, sizeof path, "/proc/%s/mem", argv[1]);
    int fd = open(path, O_RDONLY);
    if (!maps || fd < 0) {
        fprintf(stderr, "memscan: cannot open /proc/%s/maps or mem\n", argv[1]);
        return 2;
    }
    const uint8_t *pat = (const uint8_t *)argv[2];
    size_t pn = strlen(argv[2]);
    uint8_t *wide = calloc(pn, 4);       /* UTF-32LE of an ASCII string */
    if (!wide) return 2;
    for (size_t i = 0; i < pn; i++) wide[4 * i] = pat[i];
    char line[4096];
    size_t total = 0, readable = 0, unreadable = 0;
    while (fgets(line, sizeof line, maps)) {
        unsigned long lo, hi;
        char perms[8];
        int off = 0;
        if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %n", &lo, &hi, perms, &off) < 3) continue;
        if (perms[0] != 'r') continue;
        char *name = line + off;
        name[strcspn(name, "\n")] = 0;
        if (strcmp(name, "[vvar]") == 0 || strcmp(name, "[vsyscall]") == 0) continue;
        size_t len = hi - lo;
        uint8_t *buf = malloc(len);
        if (!buf) continue;
        ssize_t got = 0;
        size_t have = 0;
        while (have < len && (got = pread(fd, buf + have, len - have, (off_t)(lo + have))) > 0)
            have += (size_t)got;
        if (have == 0) {
            unreadable++;
        } else {
            readable++;
            total += scan(name, lo, buf, have, pat, pn, "bytes");
            total += scan(name, lo, buf, have, wide, 4 * pn, "utf32");
        }
        free(buf);
    }
    printf("total %zu copies (%zu mappings read, %zu unreadable)\n", total, readable, unreadable);
    return readable ? 0 : 2;
}
