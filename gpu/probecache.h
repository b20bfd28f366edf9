/* gpu/probecache: the answer "this machine has no OpenCL GPU" kept between runs, so that
 * --device auto does not start a driver in a child at every start to learn it again (about
 * 0.1 s of a warm start with PoCL, on its critical path). The answer is keyed by what would
 * change it: the boot, the ICD registry (/etc/OpenCL/vendors: each file's name, contents
 * and inode), the GPU device nodes (/dev/dri, /dev/nvidia*, /dev/kfd) and the environment
 * variables that steer OpenCL loaders and drivers; any change makes the next start probe
 * again. Only "no GPU" is kept: a machine with one opens its driver anyway. */
#ifndef CMIF_GPU_PROBECACHE_H
#define CMIF_GPU_PROBECACHE_H

/* 1 when a run of this boot, with the same registry, devices and environment, found no GPU;
 * 0 otherwise (no record, another key, no cache folder). */
int probecache_no_gpu(void);
/* Records the probe's answer: no_gpu 1 writes the record, 0 removes it. Best effort. */
void probecache_store(int no_gpu);

#endif
