// Greedy decoding by llama.cpp (node-llama-cpp's prebuilt CPU build) that records, at every
// step, the token chosen and the top logits, so that a divergence from cmif can be judged
// (tests/tools/greedycheck_main.c reads the output). Several models run in one process:
// starting node-llama-cpp costs seconds, more than a small model's whole run.
//   node llamacpp_steps.mjs N_TOKENS MODEL PROMPT_FILE OUT [MODEL PROMPT_FILE OUT ...]
// OUT gets one line per fact:
//   prompt ID...                       the prompt's ids, as llama.cpp's tools send them
//   step I TOKEN K ID:LOGIT...         the greedy token after I generated ones, top K logits
//   end I TOKEN                        an end-of-generation token chosen at step I (stops)
// and OUT.txt the prompt followed by the generated text. node-llama-cpp is loaded from
// $CMIF_LLAMACPP_DIR/node_modules, so this script runs from the source tree as it is.
import {readFileSync, writeFileSync} from "node:fs";
import {join} from "node:path";
import {pathToFileURL} from "node:url";

const dir = process.env.CMIF_LLAMACPP_DIR || "build/llamacpp";
const pkg = join(dir, "node_modules", "node-llama-cpp");
const {getLlama} = await import(pathToFileURL(join(pkg, JSON.parse(
    readFileSync(join(pkg, "package.json"), "utf8")).main)).href);

const TOP = 32;
const n = +process.argv[2];
const jobs = process.argv.slice(3);
if (!(n > 0) || jobs.length === 0 || jobs.length % 3 !== 0) {
    console.error("usage: node llamacpp_steps.mjs N_TOKENS MODEL PROMPT_FILE OUT [...]");
    process.exit(2);
}
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
for (let j = 0; j < jobs.length; j += 3) {
    const [path, promptFile, out] = jobs.slice(j, j + 3);
    const prompt = readFileSync(promptFile, "utf8");
    const model = await llama.loadModel({modelPath: path});
    // One thread: these models are small, and node-llama-cpp's default (more threads than
    // a loaded two-core machine has free) spins for seconds at every token.
    const ctx = await model.createContext({contextSize: 512, threads: 1});
    const seq = ctx.getSequence();
    // As llama.cpp's own tools send a prompt: BOS when the vocabulary asks for it, then
    // llama_tokenize without special tokens (SentencePiece's leading space included, which
    // LlamaCompletion's "trimLeadingSpace" would drop).
    const bos = model.tokens.shouldPrependBosToken ? model.tokens.bos : null;
    const ids = [...(bos != null ? [bos] : []), ...model.tokenize(prompt, false)];
    const lines = ["prompt " + ids.join(" ")];
    const gen = [];
    const next = {generateNext: {token: true, logits: {filter: {includeTop: TOP, includeSelected: true}},
                                 options: {temperature: 0}}};
    let input = [...ids.slice(0, -1), [ids[ids.length - 1], next]];
    for (let i = 0; i < n; i++) {
        const res = await seq.controlledEvaluate(input);
        const r = res[res.length - 1].next;
        const top = [...r.logits.entries()].slice(0, TOP);
        if (model.isEogToken(r.token)) {
            lines.push(`end ${i} ${r.token}`);
            break;
        }
        lines.push(`step ${i} ${r.token} ${top.length} ` +
                   top.map(([t, l]) => `${t}:${l.toPrecision(9)}`).join(" "));
        gen.push(r.token);
        input = [[r.token, next]];
    }
    writeFileSync(out, lines.join("\n") + "\n");
    writeFileSync(out + ".txt", prompt + model.detokenize(gen));
    await ctx.dispose();
    await model.dispose();
}
