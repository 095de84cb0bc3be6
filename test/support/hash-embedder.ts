import { createHash } from 'node:crypto';
import { EMBEDDING_DIMENSIONS, type Embedder } from '../../pipeline/embed.ts';

/**
 * A deterministic bag-of-words embedder for tests where the model is not what is under test
 * (authorization properties): texts sharing words are near each other, and it costs microseconds.
 */
export class HashEmbedder implements Embedder {
  embed(texts: readonly string[]): Promise<number[][]> {
    return Promise.resolve(
      texts.map((text) => {
        const v: number[] = Array.from({ length: EMBEDDING_DIMENSIONS }, () => 0);
        for (const word of text.toLowerCase().match(/[a-z0-9]+/g) ?? []) {
          const h = createHash('sha256').update(word).digest();
          v[h.readUInt16BE(0) % EMBEDDING_DIMENSIONS]! += 1;
        }
        if (!v.some((x) => x > 0)) v[0] = 1;
        const norm = Math.hypot(...v);
        return v.map((x) => x / norm);
      }),
    );
  }
}
