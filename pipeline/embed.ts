import { env as hf, pipeline, type FeatureExtractionPipeline } from '@huggingface/transformers';

/** Dimension of all-MiniLM-L6-v2 sentence embeddings (schema: vector(384)). */
export const EMBEDDING_DIMENSIONS = 384;

/** Turns texts into unit-length sentence embeddings with a local ONNX model. */
export interface Embedder {
  embed(texts: readonly string[]): Promise<number[][]>;
}

/** Options of the local embedder; every field has a working default from core/env.ts. */
export interface LocalEmbedderOptions {
  /** Directory holding `<model>/config.json`, `tokenizer.json` and `onnx/model_quantized.onnx`. */
  modelDir: string;
  /** Model folder name inside modelDir. */
  model: string;
  /** Texts per forward pass (default 32): larger batches amortize overhead, padding wastes work. */
  batchSize?: number;
}

/** all-MiniLM-L6-v2 (int8 ONNX) run by @huggingface/transformers on onnxruntime-node; never downloads. */
export class LocalEmbedder implements Embedder {
  readonly #extractor: FeatureExtractionPipeline;
  readonly #batchSize: number;

  private constructor(extractor: FeatureExtractionPipeline, batchSize: number) {
    this.#extractor = extractor;
    this.#batchSize = batchSize;
  }

  /** Loads the model from the local directory; fails if any file is missing rather than fetching it. */
  static async load(options: LocalEmbedderOptions): Promise<LocalEmbedder> {
    hf.localModelPath = options.modelDir.endsWith('/') ? options.modelDir : `${options.modelDir}/`;
    hf.allowRemoteModels = false;
    hf.allowLocalModels = true;
    const extractor = await pipeline('feature-extraction', options.model, { dtype: 'q8' });
    return new LocalEmbedder(extractor, options.batchSize ?? 32);
  }

  async embed(texts: readonly string[]): Promise<number[][]> {
    const vectors: number[][] = [];
    // Sorting by length keeps padding per batch small; results are put back in input order.
    const order = texts.map((text, index) => ({ text, index })).sort((a, b) => a.text.length - b.text.length);
    const sorted: number[][] = [];
    for (let start = 0; start < order.length; start += this.#batchSize) {
      const batch = order.slice(start, start + this.#batchSize).map((item) => item.text);
      const output = await this.#extractor(batch, { pooling: 'mean', normalize: true });
      sorted.push(...(output.tolist() as number[][]));
    }
    order.forEach((item, position) => {
      const vector = sorted[position];
      if (!vector || vector.length !== EMBEDDING_DIMENSIONS) throw new Error(`embedding ${item.index} has the wrong shape`);
      vectors[item.index] = vector;
    });
    return vectors;
  }
}
