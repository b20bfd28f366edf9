/* tests/bench/bench_cl: the OpenCL backend next to the CPU backend, same run.
 *
 * Prompt and decode tokens/s for both, and decode bandwidth utilisation: bytes of weights
 * read per token × tokens/s ÷ the device's measured read bandwidth (a streaming-sum kernel
 * on the OpenCL device; the host's bench_read_bw for the CPU). CPU and OpenCL rounds are
 * interleaved and the best round of each is kept, so load from other processes hurts both
 * alike. On PoCL the target is decode ≥ 0.5× the CPU backend. */
#include "tests/bench/bench.h"

#include "gpu/cl_util.h"

#include <stdlib.h>
#include <string.h>

#include "gpu/decoder.h"

static const char bw_src[] =
    "kernel void bw_sum(global const float4 *a, ulong n, global float *out)\n"
    "{\n"
    "    size_t g = get_global_id(0), gs = get_global_size(0);\n"
    "    float4 s = (float4)(0.0f);\n"
    "    for (size_t i = g; i < n; i += gs) s += a[i];\n"
    "    out[g] = s.x + s.y + s.z + s.w;\n"
    "}\n"
    "kernel void bw_chunk(global const float4 *a, ulong n, global float *out)\n"
    "{\n"
    "    size_t g = get_global_id(0), per = n / get_global_size(0);\n"
    "    global const float4 *p = a + g * per;\n"
    "    float4 s0 = (float4)(0.0f), s1 = s0, s2 = s0, s3 = s0;\n"
    "    for (size_t i = 0; i + 4 <= per; i += 4) {\n"
    "        s0 += p[i]; s1 += p[i + 1]; s2 += p[i + 2]; s3 += p[i + 3];\n"
    "    }\n"
    "    float4 s = s0 + s1 + s2 + s3;\n"
    "    out[g] = s.x + s.y + s.z + s.w;\n"
    "}\n";

/* Read bandwidth of OpenCL device `dev` in GB/s (best of several passes), 0 on failure.
 * GPUs read grid-strided (neighbouring work-items, neighbouring addresses: coalesced);
 * CPU devices read one contiguous chunk per work-item (prefetch-friendly). */
static double cl_read_bw(struct bench *b, const struct clu_dev *dev)
{
    char err[1024];
    cl_int st;
    double best = 0;
    size_t bytes = b->quick ? ((size_t)128 << 20) : ((size_t)512 << 20);
    if (bytes > dev->max_alloc) bytes = (size_t)dev->max_alloc / 2;
    int gpu = (dev->type & (CL_DEVICE_TYPE_GPU | CL_DEVICE_TYPE_ACCELERATOR)) != 0;
    size_t n4 = bytes / 16, nthreads = gpu ? 65536 : (size_t)(dev->compute_units ? dev->compute_units : 1) * 8;
    cl_context ctx = clCreateContext(NULL, 1, &dev->device, NULL, NULL, &st);
    if (!ctx) {
        bench_row(b, "  clCreateContext: %s", clu_status_name(st));
        return 0;
    }
    cl_command_queue q = clCreateCommandQueue(ctx, dev->device, 0, &st);
    cl_program prog = NULL;
    cl_kernel k = NULL;
    cl_mem a = NULL, out = NULL;
    int cached;
    if (!q) {
        bench_row(b, "  clCreateCommandQueue: %s", clu_status_name(st));
        goto done;
    }
    if (clu_build(ctx, dev, bw_src, "", &prog, &cached, err, sizeof err)) {
        bench_row(b, "  %s", err);
        goto done;
    }
    k = clCreateKernel(prog, gpu ? "bw_sum" : "bw_chunk", &st);
    a = clCreateBuffer(ctx, CL_MEM_READ_ONLY, bytes, NULL, &st);
    if (!k || !a) {
        bench_row(b, "  bandwidth buffer/kernel: %s", clu_status_name(st));
        goto done;
    }
    out = clCreateBuffer(ctx, CL_MEM_WRITE_ONLY, nthreads * 4, NULL, &st);
    float one = 1.0f;
    if (!out || clEnqueueFillBuffer(q, a, &one, sizeof one, 0, bytes, 0, NULL, NULL) != CL_SUCCESS) {
        bench_row(b, "  bandwidth buffer: %s", clu_status_name(st));
        goto done;
    }
    cl_ulong n = n4;
    if (clSetKernelArg(k, 0, sizeof a, &a) || clSetKernelArg(k, 1, sizeof n, &n) ||
        clSetKernelArg(k, 2, sizeof out, &out)) {
        bench_row(b, "  clSetKernelArg failed");
        goto done;
    }
    for (int it = 0; it < (b->quick ? 3 : 6); it++) {
        double t0 = bench_now();
        st = clEnqueueNDRangeKernel(q, k, 1, NULL, &nthreads, NULL, 0, NULL, NULL);
        if (st == CL_SUCCESS) st = clFinish(q);
        if (st != CL_SUCCESS) {
            bench_row(b, "  bandwidth kernel: %s", clu_status_name(st));
            break;
        }
        double gbs = (double)bytes / (bench_now() - t0) / 1e9;
        if (it > 0 && gbs > best) best = gbs; /* pass 0 includes the kernel's JIT */
    }
done:
    if (out) clReleaseMemObject(out);
    if (a) clReleaseMemObject(a);
    if (k) clReleaseKernel(k);
    if (prog) clReleaseProgram(prog);
    if (q) clReleaseCommandQueue(q);
    clReleaseContext(ctx);
    return best;
}

static int bench_cl(struct bench *b)
{
    bench_title(b, "cl: OpenCL backend vs CPU backend (prompt, decode, decode bandwidth use)");
    struct clu_dev *devs;
    int ndev;
    char err[512];
    if (clu_devices(&devs, &ndev, err, sizeof err) || ndev == 0) {
        bench_row(b, "  skipped: %s", ndev == 0 && !err[0] ? "no OpenCL devices" : err);
        return 0;
    }
    int di = -1;
    for (int i = 0; i < ndev && di < 0; i++)
        if (devs[i].usable) di = i;
    if (di < 0) {
        bench_row(b, "  skipped: no usable OpenCL device");
        clu_devices_free(devs);
        return 0;
    }
    int threads = b->max_threads > 0 ? b->max_threads : 2;
    double cpu_bw = bench_read_bw(b, threads);
    double dev_bw = cl_read_bw(b, &devs[di]);
    bench_row(b, "  device cl:%d %s (%s, %s); read bandwidth %.1f GB/s; host %d threads %.1f GB/s",
              di, devs[di].name, devs[di].platform_name, clu_type_name(devs[di].type), dev_bw,
              threads, cpu_bw);
    int models_q[] = {BENCH_TINY};
    int models_f[] = {BENCH_110M_Q8_0, BENCH_110M_Q4_K};
    int *models = b->quick ? models_q : models_f;
    int nmodels = b->quick ? 1 : 2;
    int np = b->quick ? 16 : 128, nd = b->quick ? 4 : 32, rounds = b->quick ? 1 : 3;
    int rc = 0;
    bench_row(b, "  %-10s %-7s %10s %10s %9s %7s", "model", "backend", "prompt t/s",
              "decode t/s", "GB/s", "bw use");
    for (int mi = 0; mi < nmodels; mi++) {
        const char *path = bench_model_path(b, models[mi]);
        if (!path) {
            rc = -1;
            continue;
        }
        struct bench_engine ec, eg;
        if (bench_engine_open(&ec, path, threads, DEC_DEV_CPU, np + nd + 8)) {
            rc = -1;
            continue;
        }
        if (bench_engine_open(&eg, path, threads, DEC_DEV_CL, np + nd + 8)) {
            bench_engine_close(&ec);
            rc = -1;
            continue;
        }
        if (dec_fallback_note(eg.d))
            bench_row(b, "  note: %s", dec_fallback_note(eg.d));
        /* Warm-up: PoCL compiles each kernel on its first launch; CLBlast builds its GEMM
         * kernels on first use. Neither belongs in the figures. */
        bench_prompt_tps(&eg, np < 70 ? np : 70);
        bench_decode_tps(&eg, 2, np);
        bench_prompt_tps(&ec, 8);
        double cp = 0, cd = 0, gp = 0, gd = 0;
        for (int r = 0; r < rounds; r++) {
            double v;
            if ((v = bench_prompt_tps(&ec, np)) > cp) cp = v;
            if ((v = bench_prompt_tps(&eg, np)) > gp) gp = v;
            if ((v = bench_decode_tps(&ec, nd, np)) > cd) cd = v;
            if ((v = bench_decode_tps(&eg, nd, np)) > gd) gd = v;
        }
        double wb = (double)ec.weight_bytes / 1e9;
        bench_row(b, "  %-10s %-7s %10.1f %10.1f %9.2f %6.0f%%", bench_model_name(models[mi]),
                  "cpu", cp, cd, wb * cd, cpu_bw > 0 ? 100 * wb * cd / cpu_bw : 0);
        bench_row(b, "  %-10s %-7s %10.1f %10.1f %9.2f %6.0f%%", bench_model_name(models[mi]),
                  "opencl", gp, gd, wb * gd, dev_bw > 0 ? 100 * wb * gd / dev_bw : 0);
        bench_row(b, "  %-10s opencl/cpu: prompt %.2fx, decode %.2fx (PoCL target decode >= 0.5x)",
                  bench_model_name(models[mi]), cp > 0 ? gp / cp : 0, cd > 0 ? gd / cd : 0);
        bench_engine_close(&eg);
        bench_engine_close(&ec);
    }
    clu_devices_free(devs);
    return rc;
}

BENCH_SECTION(cl, "cl", "OpenCL backend prompt/decode tok/s and bandwidth use vs the CPU", 60,
              bench_cl)
