// The synthetic company of the query benchmark: a topic model in embedding space, documents whose
// text and vectors come from the same topics, ACL categories that give three askers ~0.5%, ~5% and
// ~50% of the chunks, and questions whose embedding lands on the topic their words name.
// Deterministic: the same seed gives the same company in every process (the worker child rebuilds
// the question embedder from the seed alone).
import { createHash } from 'node:crypto';
import type { PrincipalRef } from '../../connectors/types.ts';
import { EMAIL_DOMAIN } from '../../fixtures/slack/ids.ts';
import { mulberry32, sentence, type Rng } from '../../fixtures/slack/prng.ts';
import { words } from '../../models/keywords.ts';
import { EMBEDDING_DIMENSIONS, type Embedder } from '../../pipeline/embed.ts';

const DIMS = EMBEDDING_DIMENSIONS;
export const TOPICS = 300;
const SUPER_TOPICS = 30;
const WORDS_PER_TOPIC = 8;
/** Private groups (DM-like channels, small teams) none of the askers belongs to. */
export const PRIVATE_GROUPS = 400;
/** Chunks per document (fixed, so --docs N gives exactly 4N chunks). */
export const CHUNKS_PER_DOC = 4;
/** Sentences per chunk: ~150-200 model tokens, the pipeline's chunk size (pipeline/chunk.ts: 200). */
const SENTENCES_PER_CHUNK = 16;

// Noise scales, chosen so the geometry resembles sentence embeddings: unrelated texts at cosine
// ~0.1, a document's chunks at ~0.8 of each other, a topic's documents at ~0.5-0.6 (printed by the bench).
const SUPER_FROM_GLOBAL = 0.35;
const TOPIC_NOISE = 0.8;
const DOC_NOISE = 0.55;
const CHUNK_NOISE = 0.45;
const QUERY_NOISE = 0.7;
/**
 * Per-dimension standard deviation of all noise: variance ∝ 1/(i+10), a decaying spectrum like the
 * PCA spectrum of real embeddings (effective dimension ~130 of 384). Isotropic noise would make
 * every neighbour nearly equidistant, which is harder for HNSW than real text is.
 */
const SPECTRUM: Float64Array = (() => {
  const v = Float64Array.from({ length: DIMS }, (_, i) => 1 / (i + 10));
  const sum = v.reduce((a, b) => a + b, 0);
  return v.map((x) => Math.sqrt(x / sum));
})();

/** Who may read a category's documents, how many of them there are and what they are about. */
export interface Category {
  name: string;
  /** Principal granted on every document of the category; undefined: a random private group. */
  grant: PrincipalRef | undefined;
  share: number;
  /** Home topics [from, to): 80% of the category's documents are about one of them. */
  topics: readonly [number, number];
}

export const CATEGORIES: readonly Category[] = [
  { name: 'org-wide', grant: { kind: 'special', key: 'bench:members' }, share: 0.45, topics: [0, 150] },
  { name: 'partner channel', grant: { kind: 'group', key: 'bench:ch-partner' }, share: 0.005, topics: [150, 153] },
  { name: 'engineering', grant: { kind: 'group', key: 'bench:dept-eng' }, share: 0.045, topics: [153, 171] },
  { name: 'private', grant: undefined, share: 0.5, topics: [0, TOPICS] },
];

/** Nested: the platform team is a member of the engineering department. */
export const NESTED_GROUPS: readonly { group: PrincipalRef; member: PrincipalRef }[] = [
  { group: { kind: 'group', key: 'bench:dept-eng' }, member: { kind: 'group', key: 'bench:team-platform' } },
];

/** The three askers: canonical users of the test IdP, so the identity step can resolve them. */
export interface Asker {
  label: string;
  email: string;
  memberOf: readonly PrincipalRef[];
  /** Categories the asker reads (through memberOf and nesting). */
  categories: readonly string[];
}

export const ASKERS: readonly Asker[] = [
  { label: '0.5%', email: `gina@${EMAIL_DOMAIN}`, memberOf: [{ kind: 'group', key: 'bench:ch-partner' }], categories: ['partner channel'] },
  {
    label: '5%', email: `bob@${EMAIL_DOMAIN}`,
    memberOf: [{ kind: 'group', key: 'bench:team-platform' }, { kind: 'group', key: 'bench:ch-partner' }],
    categories: ['partner channel', 'engineering'],
  },
  {
    label: '50%', email: `alice@${EMAIL_DOMAIN}`,
    memberOf: [{ kind: 'group', key: 'bench:team-platform' }, { kind: 'group', key: 'bench:ch-partner' }, { kind: 'special', key: 'bench:members' }],
    categories: ['partner channel', 'engineering', 'org-wide'],
  },
];

export const privateGroup = (i: number): PrincipalRef => ({ kind: 'group', key: `bench:private-${i}` });

/** One generated document. */
export interface SyntheticDoc {
  index: number;
  category: string;
  topic: number;
  grants: PrincipalRef[];
  title: string;
  chunks: { text: string; embedding: Float32Array }[];
}

/** Standard normal draws (Box-Muller, the spare kept). */
function gaussian(rng: Rng): () => number {
  let spare: number | undefined;
  return () => {
    if (spare !== undefined) {
      const s = spare;
      spare = undefined;
      return s;
    }
    const u = 1 - rng.next();
    const r = Math.sqrt(-2 * Math.log(u));
    const t = 2 * Math.PI * rng.next();
    spare = r * Math.sin(t);
    return r * Math.cos(t);
  };
}

function normalize(v: Float32Array): Float32Array {
  let sum = 0;
  for (const x of v) sum += x * x;
  const inv = 1 / Math.sqrt(sum);
  for (let i = 0; i < v.length; i++) v[i]! *= inv;
  return v;
}

/** normalize(base * baseWeight + scale * anisotropic noise). */
function around(base: Float32Array | undefined, baseWeight: number, scale: number, normal: () => number): Float32Array {
  const v = new Float32Array(DIMS);
  for (let i = 0; i < DIMS; i++) v[i] = (base ? base[i]! * baseWeight : 0) + scale * SPECTRUM[i]! * normal();
  return normalize(v);
}

const SYLLABLES = ['ka', 'lo', 'mi', 'ru', 'ta', 've', 'zo', 'ni', 'pe', 'sa', 'du', 'fi', 'go', 'ha', 'ju', 'ke', 'ly', 'mo', 'nu', 'ri', 'so', 'ti', 'wa', 'xe'];
const TOPIC_VERBS = ['was approved', 'is at risk', 'needs an owner', 'moved to next quarter', 'shipped', 'is over budget', 'passed review', 'was escalated'];
const FACTS = ['the estimate is', 'the budget is', 'the deadline is', 'the owner count is', 'the error rate is'];

/** The shared topic model: centroids and vocabulary, cheap to rebuild from the seed. */
export class TopicModel {
  readonly seed: number;
  readonly centroids: Float32Array[];
  readonly vocabulary: string[][];
  readonly #topicOf = new Map<string, number>();

  constructor(seed: number) {
    this.seed = seed;
    const rng = mulberry32(seed);
    const normal = gaussian(rng);
    const global = around(undefined, 0, 1, normal);
    const supers = Array.from({ length: SUPER_TOPICS }, () => around(global, SUPER_FROM_GLOBAL, 1, normal));
    this.centroids = Array.from({ length: TOPICS }, (_, t) => around(supers[t % SUPER_TOPICS], 1, TOPIC_NOISE, normal));
    const used = new Set<string>();
    this.vocabulary = Array.from({ length: TOPICS }, (_, t) =>
      Array.from({ length: WORDS_PER_TOPIC }, () => {
        for (;;) {
          const w = Array.from({ length: rng.int(3, 4) }, () => rng.pick(SYLLABLES)).join('');
          if (!used.has(w)) {
            used.add(w);
            this.#topicOf.set(w, t);
            return w;
          }
        }
      }),
    );
  }

  /** The topic whose words a text uses most (lowest id on ties); undefined if none. */
  topicOf(text: string): number | undefined {
    const votes = new Map<number, number>();
    for (const w of words(text)) {
      const t = this.#topicOf.get(w);
      if (t !== undefined) votes.set(t, (votes.get(t) ?? 0) + 1);
    }
    let best: number | undefined;
    for (const [t, n] of votes) if (best === undefined || n > (votes.get(best) ?? 0) || (n === votes.get(best) && t < best)) best = t;
    return best;
  }

  /** A question vector about `topic`: shorter than a chunk, so further from its documents. */
  queryVector(topic: number, rng: Rng): Float32Array {
    return around(this.centroids[topic], 1, QUERY_NOISE, gaussian(rng));
  }

  /** A natural-language question about `topic`, using two of its words. */
  question(topic: number, rng: Rng): string {
    const vocab = this.vocabulary[topic] ?? [];
    const a = rng.pick(vocab);
    let b = rng.pick(vocab);
    while (b === a) b = rng.pick(vocab);
    const templates = [`What is the status of ${a} and ${b}?`, `Who owns the ${a} ${b} work?`, `What was decided about ${a} for ${b}?`, `When is the ${a} ${b} deadline?`];
    return rng.pick(templates);
  }

  /** Topics an asker's documents are mostly about. */
  homeTopics(asker: Asker): number[] {
    return CATEGORIES.filter((c) => asker.categories.includes(c.name)).flatMap((c) => range(c.topics[0], c.topics[1]));
  }
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

/** Generates the documents in order from one seeded stream (batches of any size give the same company). */
export class DocumentGenerator {
  readonly #model: TopicModel;
  readonly #rng: Rng;
  readonly #normal: () => number;
  #next = 0;

  constructor(model: TopicModel) {
    this.#model = model;
    this.#rng = mulberry32(model.seed ^ 0x5eed);
    this.#normal = gaussian(this.#rng);
  }

  next(): SyntheticDoc {
    const rng = this.#rng;
    const index = this.#next++;
    let pick = rng.next();
    const category = CATEGORIES.find((c) => (pick -= c.share) < 0) ?? CATEGORIES[CATEGORIES.length - 1]!;
    const [from, to] = category.topics;
    const topic = rng.chance(0.8) ? rng.int(from, to - 1) : rng.int(0, TOPICS - 1);
    const grants: PrincipalRef[] = [category.grant ?? privateGroup(rng.int(0, PRIVATE_GROUPS - 1))];
    // Most documents are also granted to a second, small group (a shared channel, a file share).
    if (rng.chance(0.6)) grants.push(privateGroup(rng.int(0, PRIVATE_GROUPS - 1)));
    const vocab = this.#model.vocabulary[topic] ?? [];
    const docVector = around(this.#model.centroids[topic], 1, DOC_NOISE, this.#normal);
    const chunks = Array.from({ length: CHUNKS_PER_DOC }, () => {
      const lines: string[] = [];
      for (let s = 0; s < SENTENCES_PER_CHUNK; s++) {
        if (s % 3 === 2) lines.push(sentence(rng));
        else if (s % 3 === 1) lines.push(`For ${rng.pick(vocab)}, ${rng.pick(FACTS)} ${rng.int(2, 990)}.`);
        else lines.push(`The ${rng.pick(vocab)} ${rng.pick(vocab)} item ${rng.pick(TOPIC_VERBS)}.`);
      }
      return { text: lines.join(' '), embedding: around(docVector, 1, CHUNK_NOISE, this.#normal) };
    });
    return { index, category: category.name, topic, grants, title: `${vocab[0] ?? 'notes'} ${vocab[1] ?? ''} notes ${index}`, chunks };
  }
}

/**
 * The question embedder the worker uses in place of the model: the question's words name a topic,
 * and the vector is that topic's centroid plus noise seeded by the question, like a real embedding
 * of a question about that topic. Stateless, so a separate worker process computes the same vector.
 */
export class TopicQuestionEmbedder implements Embedder {
  readonly #model: TopicModel;

  constructor(model: TopicModel) {
    this.#model = model;
  }

  embed(texts: readonly string[]): Promise<number[][]> {
    return Promise.resolve(
      texts.map((text) => {
        const digest = createHash('sha256').update(text).digest();
        const rng = mulberry32(digest.readUInt32BE(0));
        const topic = this.#model.topicOf(text) ?? digest.readUInt16BE(4) % TOPICS;
        return Array.from(this.#model.queryVector(topic, rng));
      }),
    );
  }
}

/**
 * pgvector text form in units of 1e-5 (`12345e-5`): integers format twice as fast as decimals, and
 * components are ~0.05, so the rounding is far below any effect on ranking.
 */
export function vectorLiteral(v: Float32Array): string {
  const parts: string[] = new Array<string>(v.length);
  for (let i = 0; i < v.length; i++) parts[i] = `${Math.round(v[i]! * 1e5)}e-5`;
  return `[${parts.join(',')}]`;
}
