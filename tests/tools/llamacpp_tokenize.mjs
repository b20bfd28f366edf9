// Token ids that llama.cpp (node-llama-cpp's prebuilt CPU build, from `make bench-deps`)
// gives each input of a test file in llama.cpp's test-tokenizer-0 format: inputs separated
// by "\n__ggml_vocab_test__\n"; one output line per input, the ids separated by spaces,
// without BOS and with special-token texts read as plain text (as cmif encodes user text).
// The vocabulary is loaded alone (vocabOnly), so a vocab-only GGUF will do. The script must
// sit next to node_modules/node-llama-cpp for its import to resolve:
//   cp tests/tools/llamacpp_tokenize.mjs build/llamacpp/
//   node build/llamacpp/llamacpp_tokenize.mjs ../shared/models/llama3-vocab.gguf \
//       tests/data/llama3-tok.inp > tests/data/llama3-tok.out
import {readFileSync} from "node:fs";
import {getLlama} from "node-llama-cpp";

const [vocab, inp] = process.argv.slice(2);
const sep = "\n__ggml_vocab_test__\n";
const texts = readFileSync(inp, "utf8").split(sep);
if (texts.pop() !== "") throw new Error(`${inp} must end with the separator`);
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const model = await llama.loadModel({modelPath: vocab, vocabOnly: true});
let out = "";
for (const t of texts) out += Array.from(model.tokenize(t, false)).join(" ") + "\n";
process.stdout.write(out);
await model.dispose();
await llama.dispose();
