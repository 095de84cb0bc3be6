import { AutoTokenizer, env as hf } from '@huggingface/transformers';
import { env } from '../core/env.ts';

/** One embeddable piece of a document, in document order. */
export interface Chunk {
  ordinal: number;
  text: string;
  /** Tokens of `text` as the embedding model counts them, without [CLS]/[SEP]. */
  tokenCount: number;
}

/** How to cut a document. */
export interface ChunkOptions {
  /** Largest chunk in tokens, special tokens excluded (default 200; all-MiniLM-L6-v2 takes 256 including [CLS] and [SEP]). */
  maxTokens?: number;
  /** Tokens at the end of a chunk repeated at the start of the next one (default 30, at most maxTokens / 2). */
  overlapTokens?: number;
}

/** Number of tokens the model makes of `text`, special tokens excluded. */
export type TokenCounter = (text: string) => number;

const DEFAULT_MAX_TOKENS = 200;
const DEFAULT_OVERLAP_TOKENS = 30;
/** Longer "words" (base64, hashes, URLs) are cut into pieces, so no chunk is a megabyte of one token. */
const MAX_UNIT_CHARS = 100;
/** Per-word token counts are cached; natural text repeats words, so most lookups hit. */
const CACHE_LIMIT = 100_000;

/** Strength of the boundary after a unit; a chunk ends at the strongest one that keeps it half full. */
const JOINED = 0;
const SPACE = 1;
const SENTENCE = 2;
const PARAGRAPH = 3;

const words = new Intl.Segmenter('und', { granularity: 'word' });
const sentences = new Intl.Segmenter('und', { granularity: 'sentence' });
const graphemes = new Intl.Segmenter('und', { granularity: 'grapheme' });

/**
 * The document cut into words (and punctuation), with token counts and the boundary after each.
 * Arrays of numbers rather than objects: a 5 MB document has about a million units.
 */
interface Units {
  start: number[];
  end: number[];
  tokens: number[];
  /** Boundary strength between unit k and unit k+1. */
  after: number[];
}

/**
 * Token-aware chunker. Each word is counted once (cached), chunk sizes are summed from those counts,
 * and every chunk is then counted exactly once; if a tokenizer merges tokens across words so the sum
 * was too low, the chunk is shrunk until the exact count fits. So `maxTokens` always holds.
 */
export class Chunker {
  readonly #count: TokenCounter;
  readonly #cache = new Map<string, number>();

  /** A chunker over any token counter; production uses `Chunker.load`. */
  constructor(count: TokenCounter) {
    this.#count = count;
  }

  /** Loads the embedding model's own tokenizer from `<modelDir>/<modelName>/`; never downloads. */
  static async load(modelDir: string = env().ASTRY_MODEL_DIR, modelName: string = env().ASTRY_EMBED_MODEL): Promise<Chunker> {
    // Process-wide settings of transformers.js, set to the same values as the embedder's.
    hf.localModelPath = modelDir.endsWith('/') ? modelDir : `${modelDir}/`;
    hf.allowRemoteModels = false;
    hf.allowLocalModels = true;
    const tokenizer = await AutoTokenizer.from_pretrained(modelName);
    return new Chunker((text) => tokenizer.encode(text, { add_special_tokens: false }).length);
  }

  /** Cuts `text` into chunks of at most `maxTokens`, overlapping by up to `overlapTokens`; blank text gives []. */
  chunk(input: string, opts: ChunkOptions = {}): Chunk[] {
    // Lone surrogates become U+FFFD (same length): chunk text must survive UTF-8 storage intact.
    const text = input.toWellFormed();
    const maxTokens = opts.maxTokens ?? DEFAULT_MAX_TOKENS;
    const overlapTokens = opts.overlapTokens ?? DEFAULT_OVERLAP_TOKENS;
    if (!Number.isSafeInteger(maxTokens) || maxTokens < 1) throw new RangeError('maxTokens must be a positive integer');
    // At least half of every chunk is new text; more overlap would mostly re-embed the same words.
    if (!Number.isSafeInteger(overlapTokens) || overlapTokens < 0 || overlapTokens * 2 > maxTokens) {
      throw new RangeError('overlapTokens must be an integer from 0 to maxTokens / 2');
    }
    // New content per chunk; the overlap fills the rest.
    const budget = maxTokens - overlapTokens;
    const units = this.#units(text, budget);
    const n = units.start.length;
    const at = (array: number[], k: number) => array[k] ?? 0;
    const sums = [0];
    for (let k = 0; k < n; k++) sums.push(at(sums, k) + at(units.tokens, k));
    const tokensIn = (from: number, to: number) => at(sums, to) - at(sums, from);

    /** Boundary strength before unit k; the start of the text counts as a paragraph break. */
    const before = (k: number) => (k === 0 ? PARAGRAPH : at(units.after, k - 1));

    /** End (exclusive) of the chunk whose new content starts at unit `from`, spending at most `limit` tokens. */
    const cutAfter = (from: number, limit: number): number => {
      let end = from + 1;
      while (end < n && tokensIn(from, end + 1) <= limit) end++;
      if (end === n) return n;
      for (const strength of [PARAGRAPH, SENTENCE, SPACE]) {
        for (let k = end; k > from && tokensIn(from, k) >= limit / 2; k--) {
          if (before(k) >= strength) return k;
        }
      }
      return end;
    };

    /**
     * First unit of the overlap, taken from the previous chunk's new content: whole sentences if they
     * fill at least half of overlapTokens, else whole words, never more than overlapTokens.
     */
    const overlapFrom = (from: number, previousFrom: number): number => {
      let earliest = from;
      while (earliest > previousFrom && tokensIn(earliest - 1, from) <= overlapTokens) earliest--;
      for (let k = earliest; k < from && tokensIn(k, from) >= overlapTokens / 2; k++) {
        if (before(k) >= SENTENCE) return k;
      }
      for (let k = earliest; k < from; k++) {
        if (before(k) >= SPACE) return k;
      }
      return from;
    };

    const chunks: Chunk[] = [];
    let from = 0;
    let previousFrom = 0;
    while (from < n) {
      let first = overlapFrom(from, previousFrom);
      let limit = budget;
      for (;;) {
        const end = cutAfter(from, limit);
        const body = text.slice(at(units.start, first), at(units.end, end - 1)).trim();
        const tokenCount = this.#count(body);
        if (tokenCount <= maxTokens) {
          chunks.push({ ordinal: chunks.length, text: body, tokenCount });
          previousFrom = from;
          from = end;
          break;
        }
        // The summed estimate was low: take fewer units, then drop the overlap; one unit alone fits by construction.
        const estimate = tokensIn(from, end);
        if (end - from > 1) limit = Math.min(estimate - 1, Math.floor((estimate * maxTokens) / tokenCount));
        else if (first < from) first = from;
        else throw new Error(`a single unit of ${tokenCount} tokens exceeds maxTokens ${maxTokens}`);
      }
    }
    return chunks;
  }

  #units(text: string, budget: number): Units {
    const units: Units = { start: [], end: [], tokens: [], after: [] };
    for (const { segment, index } of words.segment(text)) {
      if (/\S/.test(segment)) this.#addUnit(units, segment, index, budget);
    }
    const sentenceStarts = new Set<number>();
    for (const { index } of sentences.segment(text)) sentenceStarts.add(index);
    for (let k = 0; k + 1 < units.start.length; k++) {
      const end = units.end[k] ?? 0;
      const next = units.start[k + 1] ?? 0;
      const gap = text.slice(end, next);
      if (/\n[^\S\n]*\n/.test(gap)) units.after[k] = PARAGRAPH;
      else if (sentenceStarts.has(next)) units.after[k] = SENTENCE;
      else if (gap !== '') units.after[k] = SPACE;
      else units.after[k] = JOINED;
    }
    return units;
  }

  /** Adds a word; one that is too long or has too many tokens is split between graphemes, halving until each piece fits. */
  #addUnit(units: Units, word: string, offset: number, budget: number): void {
    if (word.length <= MAX_UNIT_CHARS) {
      const tokens = this.#tokens(word);
      if (tokens <= budget) {
        units.start.push(offset);
        units.end.push(offset + word.length);
        units.tokens.push(tokens);
        return;
      }
    }
    const bounds = [...graphemes.segment(word)].map((g) => g.index);
    bounds.push(word.length);
    const split = (a: number, b: number): void => {
      const start = bounds[a] ?? 0;
      const end = bounds[b] ?? 0;
      const piece = word.slice(start, end);
      const tokens = piece.length <= MAX_UNIT_CHARS || b - a === 1 ? this.#tokens(piece) : Infinity;
      if (tokens <= budget || b - a === 1) {
        units.start.push(offset + start);
        units.end.push(offset + end);
        units.tokens.push(tokens);
        return;
      }
      const middle = (a + b) >> 1;
      split(a, middle);
      split(middle, b);
    };
    split(0, bounds.length - 1);
  }

  #tokens(word: string): number {
    let tokens = this.#cache.get(word);
    if (tokens === undefined) {
      tokens = this.#count(word);
      if (this.#cache.size >= CACHE_LIMIT) this.#cache.clear();
      this.#cache.set(word, tokens);
    }
    return tokens;
  }
}
