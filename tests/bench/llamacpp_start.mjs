// llama.cpp's start-up on a GGUF, through node-llama-cpp's prebuilt CPU binaries, for the
// `startup` section of `make bench` (tests/bench/bench_startup.c):
//   node llamacpp_start.mjs MODEL THREADS
// Prints one JSON line: {"load_ms": ..., "first_token_ms": ...}: the model load (mapping,
// tensors), then load + context + the first token (one forward pass of one prompt token and
// a greedy pick), timed from before the load. Must sit next to node_modules/node-llama-cpp
// (the bench copies it into $CMIF_LLAMACPP_DIR) so the import resolves.
import {getLlama} from "node-llama-cpp";

const [path, threads] = [process.argv[2], +(process.argv[3] ?? 2)];
if (!path || !(threads > 0)) {
  console.error("usage: node llamacpp_start.mjs MODEL THREADS");
  process.exit(2);
}
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const t0 = performance.now();
const model = await llama.loadModel({modelPath: path});
const t1 = performance.now();
const ctx = await model.createContext({contextSize: 512, threads, batchSize: 16});
const seq = ctx.getSequence();
for await (const tok of seq.evaluate([100])) { void tok; break; }
const t2 = performance.now();
console.log(JSON.stringify({load_ms: t1 - t0, first_token_ms: t2 - t0}));
await ctx.dispose();
await model.dispose();
