// Greedy completion by llama.cpp (node-llama-cpp's prebuilt CPU build), for comparing
// cmif's output with a reference engine: node llamacpp_greedy.mjs MODEL PROMPT N_TOKENS
import {getLlama, LlamaCompletion} from "node-llama-cpp";

const [path, prompt, n] = [process.argv[2], process.argv[3], +process.argv[4]];
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const model = await llama.loadModel({modelPath: path});
const ctx = await model.createContext({contextSize: 512});
const comp = new LlamaCompletion({contextSequence: ctx.getSequence()});
const out = await comp.generateCompletion(prompt, {maxTokens: n, temperature: 0});
process.stdout.write(prompt + out);
