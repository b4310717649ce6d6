/* Proof-of-work for minting a device id (streaming/interaction/proof.py): find a decimal nonce such that
   SHA-256("<challenge>:<nonce>") starts with `bits` zero bits. ES5 only; SHA-256 written out (FIPS 180-4)
   because HbbTV 1.x browsers have no WebCrypto. Works in slices so the TV keeps answering keys. */
var onairProof = (function () {
  'use strict';

  var K = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
  ];
  var W = new Array(64);

  function rotr(x, n) { return (x >>> n) | (x << (32 - n)); }

  /* the first 32-bit word of SHA-256(text); `text` is ASCII (a challenge, a colon, digits) */
  function firstWord(text) {
    var n = text.length, blocks = ((n + 8) >> 6) + 1, words = new Array(blocks * 16), i, j, t;
    var h = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
    var a, b, c, d, e, f, g, hh, s0, s1, ch, maj, t1, t2;
    for (i = 0; i < words.length; i++) { words[i] = 0; }
    for (i = 0; i < n; i++) { words[i >> 2] |= (text.charCodeAt(i) & 0xff) << (24 - (i % 4) * 8); }
    words[n >> 2] |= 0x80 << (24 - (n % 4) * 8);
    words[words.length - 1] = n * 8;
    for (j = 0; j < words.length; j += 16) {
      for (i = 0; i < 64; i++) {
        if (i < 16) { W[i] = words[j + i] | 0; } else {
          s0 = rotr(W[i - 15], 7) ^ rotr(W[i - 15], 18) ^ (W[i - 15] >>> 3);
          s1 = rotr(W[i - 2], 17) ^ rotr(W[i - 2], 19) ^ (W[i - 2] >>> 10);
          W[i] = (W[i - 16] + s0 + W[i - 7] + s1) | 0;
        }
      }
      a = h[0]; b = h[1]; c = h[2]; d = h[3]; e = h[4]; f = h[5]; g = h[6]; hh = h[7];
      for (i = 0; i < 64; i++) {
        s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
        ch = (e & f) ^ (~e & g);
        t1 = (hh + s1 + ch + K[i] + W[i]) | 0;
        s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
        maj = (a & b) ^ (a & c) ^ (b & c);
        t2 = (s0 + maj) | 0;
        hh = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
      }
      t = [a, b, c, d, e, f, g, hh];
      for (i = 0; i < 8; i++) { h[i] = (h[i] + t[i]) | 0; }
    }
    return h[0] >>> 0;
  }

  /* calls done(nonce) once a nonce is found; `bits` up to 28 */
  function solve(challenge, bits, done) {
    var nonce = 0, prefix = challenge + ':';
    function slice() {
      var end = nonce + 2000;
      for (; nonce < end; nonce++) {
        if (bits === 0 || (firstWord(prefix + nonce) >>> (32 - bits)) === 0) { done(String(nonce)); return; }
      }
      setTimeout(slice, 0);
    }
    slice();
  }

  return { solve: solve, firstWord: firstWord };
}());
