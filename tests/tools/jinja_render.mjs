// Renders the chat templates in tests/e2e/data/templates with @huggingface/jinja (the
// Jinja that transformers.js and llama.cpp's tooling use, found in $CMIF_LLAMACPP_DIR's
// node_modules) for the conversation given, and writes what cmif must match:
//   node jinja_render.mjs TEMPLATE_DIR OUT_DIR SYSTEM USER1 ANSWER USER2
// For each template NAME: NAME.turn1, the prompt for [system, user1] with the generation
// prompt; NAME.conv, the prompt for [system, user1, assistant ANSWER, user2]; NAME.answer,
// what the model generated in between (its end-of-generation token included), and
// NAME.system, "1", or "0" when the template moves the system prompt to the last user
// message (Mistral v0.3): then NAME.conv and NAME.answer are for the conversation without
// a system prompt, the only one whose second prompt extends the first. BOS is handled as
// llama.cpp does: with the vocabulary's add_bos the prompt starts with BOS (written as
// its text) whether or not the template wrote it.
import {readFileSync, writeFileSync} from "node:fs";
import {join} from "node:path";
import {pathToFileURL} from "node:url";

const dir = process.env.CMIF_LLAMACPP_DIR || "build/llamacpp";
const {Template} = await import(pathToFileURL(
    join(dir, "node_modules", "@huggingface", "jinja", "dist", "index.js")).href);

// The vocabulary each template comes with: BOS, EOS, whether llama.cpp adds BOS, and the
// token that ends an answer.
const models = [
    {name: "llama3", bos: "<|begin_of_text|>", eos: "<|eot_id|>", addBos: true, end: "<|eot_id|>"},
    {name: "llama2", bos: "<s>", eos: "</s>", addBos: true, end: "</s>"},
    {name: "mistral", bos: "<s>", eos: "</s>", addBos: true, end: "</s>"},
    {name: "zephyr", bos: "<s>", eos: "</s>", addBos: true, end: "</s>"},
    {name: "chatml", bos: "<s>", eos: "<|im_end|>", addBos: true, end: "<|im_end|>"},
];
const [tdir, out, system, user1, answer, user2] = process.argv.slice(2);
if (!user2) {
    console.error("usage: node jinja_render.mjs TEMPLATE_DIR OUT_DIR SYSTEM USER1 ANSWER USER2");
    process.exit(2);
}
for (const m of models) {
    const t = new Template(readFileSync(join(tdir, m.name + ".jinja"), "utf8"));
    const render = (messages) => {
        const s = t.render({messages, bos_token: m.bos, eos_token: m.eos,
                            add_generation_prompt: true});
        return m.addBos && !s.startsWith(m.bos) ? m.bos + s : s;
    };
    const sys = {role: "system", content: system};
    const u1 = {role: "user", content: user1}, u2 = {role: "user", content: user2};
    const a = {role: "assistant", content: answer};
    const turn1 = render([sys, u1]);
    let first = turn1, conv = render([sys, u1, a, u2]), withSystem = conv.startsWith(turn1);
    if (!withSystem) {
        first = render([u1]);
        conv = render([u1, a, u2]);
        if (!conv.startsWith(first)) throw new Error(`${m.name}: the second prompt does not extend the first`);
    }
    const end = conv.indexOf(m.end, first.length);
    if (end < 0) throw new Error(`${m.name}: no ${m.end} after the answer`);
    writeFileSync(join(out, m.name + ".turn1"), turn1);
    writeFileSync(join(out, m.name + ".conv"), conv);
    writeFileSync(join(out, m.name + ".answer"), conv.slice(first.length, end + m.end.length));
    writeFileSync(join(out, m.name + ".system"), withSystem ? "1\n" : "0\n");
}
