// The text corpus the byte-level BPE is checked on: hand-written cases plus seeded random strings.
// Characters whose class differs between JavaScript's regex and the HF/.NET one (U+0085 and U+FEFF in \s) are
// left out; see README.md here for the known differences.
"use strict";

const handWritten = [
  "",
  "Hello, world!",
  "The quick brown fox jumps over the lazy dog. It's 5 o'clock; we'll see, they've said, I'm sure, he'd go.",
  "SHOUTING IT'S FINE WE'LL WE'VE I'M HE'D",
  "a  b   c    d",
  "   leading and trailing spaces   ",
  "tabs\tand\t\tmore\ttabs\n",
  "line one\nline two\r\nline three\n\n\nend\n",
  " \n \n\t \r\n ",
  "1 12 123 1234 12345 1234567890 3.14159 -42 1e10 0x1F",
  "Numbers: ١٢٣٤٥ ١٢٣ and fullwidth １２３４",
  "中文测试：你好，世界！这是一个分词器。",
  "日本語のテキスト、ひらがなとカタカナ。漢字もあります。",
  "한국어 텍스트입니다.",
  "Mixed 中文 and English 混合 text123中文",
  "emoji 😀👍🏽 ok",
  "a😀b",
  "family: 👨‍👩‍👧‍👦 flag: 🇫🇷 🏳️‍🌈 heart: ❤️ skin: 👋🏿👋🏻",
  "keycaps 1️⃣ #️⃣ and text ☺︎ vs ☺️",
  "café naïve résumé Ångström",
  "cafe\u0301 nai\u0308ve A\u030angstro\u0308m",
  "e\u0301\u0302\u0303 stacked marks and Hangul jamo \u1100\u1161\u11a8",
  "<think>\nLet me think about 2+2.\n</think>\nThe answer is 4.",
  "<｜begin▁of▁sentence｜><｜User｜>What is 7*8?<｜Assistant｜><think>\n7*8=56\n</think>\n\\boxed{56}<｜end▁of▁sentence｜>",
  "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nHello!<|im_end|>",
  "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
  "text<|endoftext|>more text<|endoftext|>",
  "partial specials: <|im_start <think <｜User <|eot_id| </think",
  "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
  "for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }  // dot product\n",
  "const x = {\"key\": [1, 2, 3], 'other': null};\nconsole.log(x?.key ?? []);",
  "SELECT id, name FROM users WHERE age >= 18 AND name LIKE '%son';",
  "$$\\int_0^\\infty e^{-x^2}\\,dx = \\frac{\\sqrt{\\pi}}{2}$$ and \\(a^2 + b^2 = c^2\\)",
  "\\begin{align} f(x) &= \\sum_{k=0}^{n} \\binom{n}{k} x^k \\\\ &\\approx 1 \\end{align}",
  "https://example.com/path?query=1&b=two#frag user@example.org",
  "!!!??? ... --- ___ *** ### @@@ ''' \"\"\" ``` ~~~",
  "'s 't 're 've 'm 'll 'd 'S 'T 'RE 'Ve 'LL",
  "don't won't can't shouldn't y'all",
  "\u00a0non-breaking\u00a0space and\u3000ideographic\u3000space and\u2003em space",
  "zero\u200bwidth\u200cjoiner\u200dtest",
  "math 𝐀𝐁𝐂 𝑥𝑦𝑧 𝟎𝟏𝟐 and CJK ext B 𠀀𠀁𠀂 and old italic 𐌀𐌁",
  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
  "Pneumonoultramicroscopicsilicovolcanoconiosis antidisestablishmentarianism",
  "Ελληνικά κείμενα και русский текст и العربية والعبرית עברית",
  "हिन्दी पाठ और বাংলা লেখা",
  "\u0000\u0001\u0002\u001f\u007f control chars",
  "lone high \ud800 and lone low \udc00 surrogates, reversed \udc00\ud800 pair",
  "\ud83d",
  "trailing high surrogate \ud83d",
];

// Mulberry32: a tiny seeded PRNG, so the random part of the corpus is the same on every run.
function mulberry32(seed) {
  return function () {
    seed |= 0; seed = (seed + 0x6D2B79F5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Code point ranges drawn from (all assigned long before the Unicode versions of Node and .NET in use).
const pools = [
  [0x20, 0x7e], [0x20, 0x7e], [0x20, 0x7e], [0x61, 0x7a], [0x30, 0x39],
  [0x09, 0x0a], [0x0d, 0x0d], [0x20, 0x20], [0x20, 0x20],
  [0xa1, 0xff], [0x100, 0x17f], [0x300, 0x36f], [0x391, 0x3c9], [0x410, 0x44f], [0x5d0, 0x5ea],
  [0x627, 0x64a], [0x660, 0x669], [0x905, 0x939], [0x2010, 0x2027], [0x2030, 0x205e], [0x3000, 0x3000],
  [0x3041, 0x3096], [0x30a1, 0x30fa], [0x4e00, 0x4fff], [0x9f00, 0x9fa5], [0xac00, 0xad00], [0xff01, 0xff5e],
  [0x1f600, 0x1f64f], [0x1f3fb, 0x1f3ff], [0x200d, 0x200d], [0xfe0f, 0xfe0f], [0x1d400, 0x1d433],
  [0x1d7ce, 0x1d7ff], [0x20000, 0x2003f], [0x10300, 0x1031e], [0xd800, 0xdfff],
];

function randomString(rng) {
  const length = 1 + Math.floor(rng() * 40);
  let s = "";
  for (let i = 0; i < length; i++) {
    const [lo, hi] = pools[Math.floor(rng() * pools.length)];
    const cp = lo + Math.floor(rng() * (hi - lo + 1));
    s += cp >= 0xd800 && cp <= 0xdfff ? String.fromCharCode(cp) : String.fromCodePoint(cp);
  }
  return s;
}

function corpus(seed = 20261207, randomCount = 300) {
  const rng = mulberry32(seed);
  const random = [];
  for (let i = 0; i < randomCount; i++) random.push(randomString(rng));
  return handWritten.concat(random);
}

module.exports = { corpus, handWritten };
