import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import fc from 'fast-check';
import { env } from '../core/env.ts';
import { Chunker, type Chunk } from '../pipeline/chunk.ts';

let chunker: Chunker;
let countTokens: (text: string) => number;

before(async () => {
  chunker = await Chunker.load(env().ASTRY_MODEL_DIR, env().ASTRY_EMBED_MODEL);
  // The same tokenizer, uncached: the reference every chunk is checked against.
  const { AutoTokenizer } = await import('@huggingface/transformers');
  const tokenizer = await AutoTokenizer.from_pretrained(env().ASTRY_EMBED_MODEL);
  countTokens = (text) => tokenizer.encode(text, { add_special_tokens: false }).length;
});

const withoutSpace = (text: string) => text.replace(/\s+/g, '');

/** Chunks are ordered, trimmed, non-empty, within the limit, and report their exact token count. */
function assertWellFormed(chunks: Chunk[], maxTokens: number, count: (text: string) => number = countTokens): void {
  chunks.forEach((chunk, index) => {
    assert.equal(chunk.ordinal, index);
    assert.ok(chunk.text.length > 0);
    assert.equal(chunk.text, chunk.text.trim());
    assert.ok(chunk.text.isWellFormed(), 'no lone surrogates');
    assert.ok(chunk.tokenCount <= maxTokens, `chunk ${index} has ${chunk.tokenCount} > ${maxTokens} tokens`);
    assert.equal(chunk.tokenCount, count(chunk.text));
  });
}

/** Length of the longest prefix of `next` (ending at a space or its end) that `previous` ends with. */
function overlapLength(previous: string, next: string): number {
  for (let length = next.length; length > 0; length--) {
    if ((length === next.length || /\s/.test(next[length] ?? '')) && previous.endsWith(next.slice(0, length))) return length;
  }
  return 0;
}

/** Pseudo-random prose: distinct made-up words (so overlaps are unambiguous), sentences, paragraphs. */
function prose(seed: number, words: number): string {
  let state = seed;
  const random = () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648;
  };
  const syllables = ['ka', 'lo', 'mi', 'ren', 'tos', 'va', 'qui', 'zan', 'pe', 'dru'];
  let out = '';
  for (let i = 0; i < words; i++) {
    const length = 1 + Math.floor(random() * 3);
    for (let s = 0; s < length; s++) out += syllables[Math.floor(random() * syllables.length)];
    out += String(i);
    const r = random();
    out += r < 0.01 ? '.\n\n' : r < 0.08 ? '. ' : r < 0.1 ? ', ' : ' ';
  }
  return out;
}

describe('Chunker', () => {
  it('gives no chunks for empty or blank text', () => {
    for (const text of ['', ' ', '\n\n\t  \n', '\u00a0\u2003']) assert.deepEqual(chunker.chunk(text), []);
  });

  it('keeps a short text in one chunk, unchanged apart from trimming', () => {
    const chunks = chunker.chunk('  Hello, world! This is Astry.  \n');
    assert.deepEqual(chunks, [{ ordinal: 0, text: 'Hello, world! This is Astry.', tokenCount: countTokens('Hello, world! This is Astry.') }]);
  });

  it('never exceeds maxTokens on long prose, and consecutive chunks overlap', () => {
    const text = prose(7, 6000);
    for (const [maxTokens, overlapTokens] of [[200, 30], [64, 16], [254, 0], [32, 16]] as const) {
      const chunks = chunker.chunk(text, { maxTokens, overlapTokens });
      assert.ok(chunks.length > 10);
      assertWellFormed(chunks, maxTokens);
      for (let k = 1; k < chunks.length; k++) {
        const previous = chunks[k - 1]?.text ?? '';
        const next = chunks[k]?.text ?? '';
        const shared = overlapLength(previous, next);
        if (overlapTokens === 0) continue;
        assert.ok(shared > 0, `no overlap between chunks ${k - 1} and ${k}`);
        assert.ok(countTokens(next.slice(0, shared)) <= overlapTokens);
        assert.ok(shared < next.length, 'each chunk adds new text');
      }
    }
  });

  it('without overlap, the chunks are the whole text in order: nothing lost or repeated', () => {
    const text = prose(11, 3000);
    const chunks = chunker.chunk(text, { maxTokens: 100, overlapTokens: 0 });
    assert.equal(chunks.map((c) => withoutSpace(c.text)).join(''), withoutSpace(text));
  });

  it('with overlap, the chunks still cover the whole text in order', () => {
    const text = prose(13, 3000);
    const chunks = chunker.chunk(text);
    let rebuilt = chunks[0]?.text ?? '';
    for (let k = 1; k < chunks.length; k++) {
      const next = chunks[k]?.text ?? '';
      rebuilt += ' ' + next.slice(overlapLength(chunks[k - 1]?.text ?? '', next));
    }
    assert.equal(withoutSpace(rebuilt), withoutSpace(text));
  });

  it('ends chunks at paragraph breaks when the paragraphs fit', () => {
    const paragraphs = Array.from({ length: 12 }, (_, p) =>
      Array.from({ length: 6 }, (_, s) => `Sentence ${s} of paragraph ${p} covers revenue and hiring.`).join(' '),
    );
    const chunks = chunker.chunk(paragraphs.join('\n\n'));
    assertWellFormed(chunks, 200);
    for (const chunk of chunks) assert.ok(paragraphs.some((p) => chunk.text.endsWith(p)), `ends mid-paragraph: …${chunk.text.slice(-50)}`);
  });

  it('ends chunks at sentence ends inside a long paragraph, and overlaps by whole sentences', () => {
    const paragraph = Array.from({ length: 80 }, (_, s) => `Clause number ${s} explains the travel policy.`).join(' ');
    const chunks = chunker.chunk(paragraph);
    assert.ok(chunks.length > 2);
    assertWellFormed(chunks, 200);
    for (const chunk of chunks) {
      assert.match(chunk.text, /policy\.$/);
      assert.match(chunk.text, /^Clause number/);
    }
  });

  it('hard-splits a giant word, CJK text without spaces and base64 blobs', () => {
    const cases = [
      'x'.repeat(20_000),
      'supercalifragilistic'.repeat(300),
      '日本語の文章は空白なしで続きます'.repeat(400),
      Buffer.from(Array.from({ length: 30_000 }, (_, i) => (i * 31) % 256)).toString('base64'),
      'a.'.repeat(5_000),
    ];
    for (const text of cases) {
      const chunks = chunker.chunk(text, { maxTokens: 64, overlapTokens: 8 });
      assert.ok(chunks.length > 1);
      assertWellFormed(chunks, 64);
      for (const chunk of chunks) assert.ok(chunk.text.length <= 64 * 100);
      assert.equal(withoutSpace(chunker.chunk(text, { maxTokens: 64, overlapTokens: 0 }).map((c) => c.text).join('')), withoutSpace(text));
    }
  });

  it('is safe for emoji, combining marks and other scripts: graphemes are never cut', () => {
    const family = '👨‍👩‍👧‍👦';
    const flag = '🇺🇦';
    const accented = 'e\u0301\u0302\u0303';
    const text = `${family}${flag}${accented}`.repeat(2_000) + ' ' + 'שלום עולם مرحبا بالعالم नमस्ते दुनिया '.repeat(300);
    const chunks = chunker.chunk(text, { maxTokens: 32, overlapTokens: 4 });
    assertWellFormed(chunks, 32);
    const segmenter = new Intl.Segmenter('und', { granularity: 'grapheme' });
    const allowed = new Set([...segmenter.segment(text)].map((g) => g.segment));
    for (const chunk of chunks) {
      for (const { segment } of segmenter.segment(chunk.text)) assert.ok(allowed.has(segment), `cut grapheme ${JSON.stringify(segment)}`);
    }
  });

  it('replaces lone surrogates instead of passing them on', () => {
    const chunks = chunker.chunk('broken \ud83d half \udc00 surrogates');
    assertWellFormed(chunks, 200);
    assert.equal(chunks[0]?.text, 'broken \ufffd half \ufffd surrogates');
  });

  it('is deterministic, across calls and instances', async () => {
    const text = prose(3, 2000);
    const again = await Chunker.load(env().ASTRY_MODEL_DIR, env().ASTRY_EMBED_MODEL);
    assert.deepEqual(chunker.chunk(text), chunker.chunk(text));
    assert.deepEqual(again.chunk(text), chunker.chunk(text));
  });

  it('property: limits hold and nothing is lost for arbitrary text', () => {
    const piece = fc.oneof(
      fc.constantFrom(' ', '  ', '\n', '\n\n', '\t', '. ', '? ', ', ', '\u00a0', '\u200b', '\u200d', '\ufe0f', '\u0301'),
      fc.stringMatching(/^[a-z]{1,12}$/),
      fc.stringMatching(/^[A-Z][a-z]{0,8}[.!?]$/),
      fc.constantFrom('日本', '語', 'の', 'テキスト', '中文', '한국어', 'ไทย', 'Ελληνικά', 'кириллица', 'عربى'),
      fc.constantFrom('😀', '👍🏽', '👨‍👩‍👧‍👦', '🇫🇷', '#️⃣', 'Å', 'ﬁ', 'ß'),
      fc.string({ unit: 'grapheme', maxLength: 8 }),
      fc.string({ unit: 'binary', maxLength: 4 }),
      fc.stringMatching(/^[A-Za-z0-9+/]{100,400}$/),
    );
    fc.assert(
      fc.property(
        fc.array(piece, { maxLength: 400 }).map((pieces) => pieces.join('')),
        fc.integer({ min: 4, max: 256 }),
        fc.double({ min: 0, max: 0.5, noNaN: true }),
        (text, maxTokens, overlapShare) => {
          const overlapTokens = Math.floor(maxTokens * overlapShare);
          const chunks = chunker.chunk(text, { maxTokens, overlapTokens });
          assertWellFormed(chunks, maxTokens);
          if (text.trim() === '') assert.deepEqual(chunks, []);
          const plain = chunker.chunk(text, { maxTokens, overlapTokens: 0 });
          assert.equal(withoutSpace(plain.map((c) => c.text).join('')), withoutSpace(text));
        },
      ),
      { numRuns: 300, seed: 20240611 },
    );
  });

  it('keeps the limit with a tokenizer that merges across words (estimate too low)', () => {
    // Counts characters, spaces included: the sum over words always underestimates a chunk.
    const byChar = new Chunker((text) => [...text].length);
    const text = prose(5, 2000);
    for (const [maxTokens, overlapTokens] of [[50, 10], [200, 30], [12, 3]] as const) {
      const chunks = byChar.chunk(text, { maxTokens, overlapTokens });
      assertWellFormed(chunks, maxTokens, (t) => [...t].length);
      assert.equal(withoutSpace(byChar.chunk(text, { maxTokens, overlapTokens: 0 }).map((c) => c.text).join('')), withoutSpace(text));
    }
  });

  it('counts each distinct word once and each chunk once, not every candidate split', () => {
    let calls = 0;
    const counting = new Chunker((text) => {
      calls++;
      return countTokens(text);
    });
    const text = prose(17, 20_000);
    const chunks = counting.chunk(text);
    const distinct = new Set([...new Intl.Segmenter('und', { granularity: 'word' }).segment(text)].map((s) => s.segment)).size;
    assert.ok(calls <= distinct + chunks.length, `${calls} calls for ${distinct} distinct words and ${chunks.length} chunks`);
  });

  it('rejects invalid options', () => {
    for (const opts of [{ maxTokens: 0 }, { maxTokens: 1.5 }, { maxTokens: 10, overlapTokens: 10 }, { maxTokens: 10, overlapTokens: 6 }, { overlapTokens: -1 }, { overlapTokens: 2.5 }, { maxTokens: Number.NaN }]) {
      assert.throws(() => chunker.chunk('text', opts), RangeError);
    }
  });
});
