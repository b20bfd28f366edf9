// llama.cpp's prompt and decode speed on a GGUF, through node-llama-cpp's prebuilt CPU
// binaries, for `make bench` (tests/bench/bench_llamacpp.c) to set beside cmif's.
//   node llamacpp.mjs MODEL THREADS N_PROMPT N_DECODE
// Prints one JSON line: {"prompt_tok_s": ..., "decode_tok_s": ...}. The prompt is one batch
// of N_PROMPT fixed token ids from position 0 (run once to warm up, then timed); decode is
// N_DECODE single-token steps after it. Must sit next to node_modules/node-llama-cpp
// (the bench copies it into $CMIF_LLAMACPP_DIR) so the import resolves.
import {getLlama} from "node-llama-cpp";

const [path, threads, nPrompt, nDecode] =
    [process.argv[2], +(process.argv[3] ?? 2), +(process.argv[4] ?? 64), +(process.argv[5] ?? 16)];
if (!path || !(threads > 0) || !(nPrompt > 0) || !(nDecode > 0)) {
  console.error("usage: node llamacpp.mjs MODEL THREADS N_PROMPT N_DECODE");
  process.exit(2);
}
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const model = await llama.loadModel({modelPath: path});
const ctx = await model.createContext({contextSize: 512, threads, batchSize: nPrompt});
const seq = ctx.getSequence();
const prompt = Array.from({length: nPrompt}, (_, i) => 100 + i);

// One pass: the prompt batch, then single-token steps (fixed ids: the forward passes alone,
// as cmif's bench times them; node-llama-cpp adds a per-step overhead of its own, which the
// bench estimates on its tiny model).
async function pass() {
  await seq.clearHistory();
  const t0 = performance.now();
  await seq.evaluateWithoutGeneratingNewTokens(prompt);
  const t1 = performance.now();
  for (let i = 0; i < nDecode; i++) await seq.evaluateWithoutGeneratingNewTokens([200 + i]);
  const t2 = performance.now();
  return {prompt_tok_s: nPrompt / ((t1 - t0) / 1000), decode_tok_s: nDecode / ((t2 - t1) / 1000)};
}

await pass();   // warm-up: faults the mapping in, sizes llama.cpp's buffers
const r = await pass();
console.log(JSON.stringify(r));
await ctx.dispose();
await model.dispose();
