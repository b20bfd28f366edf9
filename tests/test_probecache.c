/* gpu/probecache: "no GPU here" is kept for later starts only while what could change it
 * stays the same (here: the environment that steers OpenCL loaders), a damaged record is
 * no record, and a found GPU removes it. */
#include "tests/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gpu/probecache.h"

static void test_record_follows_its_key(void **state)
{
    (void)state;
    char *dir = tu_tmpdir(), path[4200];
    assert_int_equal(setenv("XDG_CACHE_HOME", dir, 1), 0);
    unsetenv("OCL_ICD_VENDORS");
    snprintf(path, sizeof path, "%s/cmif/gpu-probe", dir);
    assert_int_equal(probecache_no_gpu(), 0);          /* nothing recorded yet */
    probecache_store(1);
    assert_int_equal(probecache_no_gpu(), 1);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0077, 0);
    /* Another ICD registry in the environment: probe again. */
    assert_int_equal(setenv("OCL_ICD_VENDORS", "/nonexistent", 1), 0);
    assert_int_equal(probecache_no_gpu(), 0);
    unsetenv("OCL_ICD_VENDORS");
    assert_int_equal(probecache_no_gpu(), 1);
    /* A changed byte of the key is another key. */
    FILE *f = fopen(path, "r+");
    assert_non_null(f);
    assert_int_equal(fseek(f, 12, SEEK_SET), 0);
    int c = fgetc(f);
    assert_int_equal(fseek(f, 12, SEEK_SET), 0);
    fputc(c == '0' ? '1' : '0', f);
    fclose(f);
    assert_int_equal(probecache_no_gpu(), 0);
    /* A GPU found: the record goes. */
    probecache_store(1);
    assert_int_equal(probecache_no_gpu(), 1);
    probecache_store(0);
    assert_int_equal(probecache_no_gpu(), 0);
    assert_int_equal(stat(path, &st), -1);
    tu_rmtree(dir);
}

TU_MAIN(cmocka_unit_test(test_record_follows_its_key))
