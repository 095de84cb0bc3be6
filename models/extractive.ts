/**
 * The offline default provider: no language model. It answers through the same tools a model would
 * use (list, grep the question's keywords, read the best files) and quotes the most relevant
 * sentences with their citations. Deterministic: the same files and question give the same answer.
 */
import type { SandboxTools } from '../sandbox/tools.ts';
import { answerSignal, raceAbort } from './abort.ts';
import { type BudgetStop, BudgetMeter, describeStop } from './budget.ts';
import { keywords, words } from './keywords.ts';
import type { Answer, AnswerRequest, Citation, ModelProvider } from './types.ts';

/** Options of {@link ExtractiveProvider}. */
export interface ExtractiveProviderOptions {
  /** Jurisdiction of processing: it runs in the worker itself; default 'local'. */
  region?: string;
  /** Files read in full after ranking by grep hits; default 3. */
  maxFiles?: number;
  /** Passages quoted in the answer; default 5. */
  maxPassages?: number;
}

export const EXTRACTIVE_LABEL = 'Extractive answer (no language model)';
/** Characters per read call, and the most read of one file. */
const READ_CHUNK_CHARS = 16_000;
const MAX_FILE_CHARS = 64_000;
/** Grep hits asked for per keyword: enough to rank files. */
const GREP_HITS_PER_KEYWORD = 500;
/** Longest passage quoted, in characters. */
const MAX_PASSAGE_CHARS = 400;

interface Passage {
  name: string;
  text: string;
  score: number;
  /** Rank of its file (0 = best), then position inside it: the deterministic tie-breakers. */
  fileRank: number;
  position: number;
}

class Stopped extends Error {
  readonly stop: BudgetStop;
  constructor(stop: BudgetStop) {
    super(stop);
    this.stop = stop;
  }
}

function clip(text: string): string {
  return text.length <= MAX_PASSAGE_CHARS ? text : `${text.slice(0, MAX_PASSAGE_CHARS - 1).trimEnd()}…`;
}

/** Sentences of a text: split at line breaks and at sentence-ending punctuation. */
function sentences(text: string): string[] {
  return text
    .split(/\r?\n/)
    .flatMap((line) => line.split(/(?<=[.!?])\s+/))
    .map((s) => s.replace(/\s+/g, ' ').trim())
    .filter((s) => s.length > 0);
}

/** The summed weight of the keywords `text` contains (a word starting with a keyword counts). */
function scoreText(text: string, weights: ReadonlyMap<string, number>): number {
  const ws = words(text).map((w) => w.replace(/'/g, ''));
  let score = 0;
  for (const [k, weight] of weights) if (ws.some((w) => w.startsWith(k))) score += weight;
  return score;
}

function byRelevance(a: Passage, b: Passage): number {
  return b.score - a.score || a.fileRank - b.fileRank || a.position - b.position;
}

/** Answers from the sandbox without a language model. */
export class ExtractiveProvider implements ModelProvider {
  readonly name = 'extractive';
  readonly model = 'extractive';
  readonly region: string;
  readonly #maxFiles: number;
  readonly #maxPassages: number;

  constructor(options: ExtractiveProviderOptions = {}) {
    this.region = options.region ?? 'local';
    this.#maxFiles = Math.max(1, Math.floor(options.maxFiles ?? 3));
    this.#maxPassages = Math.max(1, Math.floor(options.maxPassages ?? 5));
  }

  async answer(request: AnswerRequest): Promise<Answer> {
    const meter = new BudgetMeter(request.budget, { inputPerMTok: 0, outputPerMTok: 0 });
    const { timer, signal } = answerSignal(request.budget.maxWallMs, request.signal);
    const tools: SandboxTools = request.tools;
    /** One tool call, counted against the budget and abandoned when time is up. */
    const call = async <T>(work: () => Promise<T>): Promise<T> => {
      if (!meter.canCallTool()) throw new Stopped('budget_tool_calls');
      if (signal.aborted) throw new Stopped('budget_time');
      meter.recordToolCall();
      try {
        return await raceAbort(work(), signal);
      } catch (err) {
        if (request.signal?.aborted) throw request.signal.reason;
        if (timer.aborted) throw new Stopped('budget_time');
        throw err;
      }
    };

    const weights = new Map<string, number>();
    const hitLines: Passage[] = [];
    const texts = new Map<string, string>();
    let ranked: string[] = [];
    let stopped: BudgetStop | undefined;
    try {
      const manifest = await call(() => tools.list());
      const names = new Set(manifest.map((f) => f.name));
      const counts = new Map<string, Map<string, number>>();
      const kws = keywords(request.question);
      for (const k of kws) {
        // Keywords are letters and digits only: the same pattern as a literal and as a regex.
        const hits = (await call(() => tools.grep(k, { ignoreCase: true, maxHits: GREP_HITS_PER_KEYWORD }))).filter(
          (h) => names.has(h.name),
        );
        const perFile = new Map<string, number>();
        for (const h of hits) perFile.set(h.name, (perFile.get(h.name) ?? 0) + 1);
        counts.set(k, perFile);
        weights.set(k, perFile.size === 0 ? 0 : Math.log(1 + names.size / perFile.size));
        hitLines.push(
          ...hits.map((h) => ({ name: h.name, text: clip(h.text.replace(/\s+/g, ' ').trim()), score: 0, fileRank: 0, position: h.line })),
        );
      }
      const fileScore = new Map<string, number>();
      for (const [k, perFile] of counts) {
        for (const [name, n] of perFile) fileScore.set(name, (fileScore.get(name) ?? 0) + (weights.get(k) ?? 0) * (1 + Math.log(n)));
      }
      ranked = [...fileScore.entries()]
        .filter(([, s]) => s > 0)
        .sort(([a, sa], [b, sb]) => sb - sa || (a < b ? -1 : a > b ? 1 : 0))
        .map(([name]) => name);
      for (const name of ranked.slice(0, this.#maxFiles)) {
        let text = '';
        for (let offset = 0; offset < MAX_FILE_CHARS; ) {
          const slice = await call(() => tools.read(name, { offset, length: READ_CHUNK_CHARS }));
          const got = slice.text.slice(0, READ_CHUNK_CHARS);
          text += got;
          texts.set(name, text);
          if (!slice.truncated || got.length === 0) break;
          offset += got.length;
        }
      }
    } catch (err) {
      if (!(err instanceof Stopped)) throw err;
      stopped = err.stop;
    }

    const passages = this.#passages(ranked, texts, weights);
    // Stopped before any file was read: the grep hit lines are what was found.
    const chosen = passages.length > 0 ? passages : this.#rankHits(hitLines, ranked, weights);
    return this.#compose(chosen, stopped, request, meter);
  }

  #passages(ranked: readonly string[], texts: ReadonlyMap<string, string>, weights: ReadonlyMap<string, number>): Passage[] {
    const all: Passage[] = [];
    for (const [name, text] of texts) {
      const fileRank = ranked.indexOf(name);
      sentences(text).forEach((s, position) => {
        const score = scoreText(s, weights);
        if (score > 0) all.push({ name, text: clip(s), score, fileRank, position });
      });
    }
    return this.#top(all);
  }

  #rankHits(hits: readonly Passage[], ranked: readonly string[], weights: ReadonlyMap<string, number>): Passage[] {
    return this.#top(
      hits.map((h) => ({ ...h, score: scoreText(h.text, weights), fileRank: ranked.indexOf(h.name) })).filter((h) => h.score > 0),
    );
  }

  #top(candidates: Passage[]): Passage[] {
    const seen = new Set<string>();
    const out: Passage[] = [];
    for (const p of [...candidates].sort(byRelevance)) {
      const key = p.text.toLowerCase();
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(p);
      if (out.length === this.#maxPassages) break;
    }
    return out;
  }

  #compose(passages: readonly Passage[], stopped: BudgetStop | undefined, request: AnswerRequest, meter: BudgetMeter): Answer {
    const quoted = passages.map((p) => `- ${p.text} [${p.name}]`).join('\n');
    let body: string;
    if (stopped) {
      const head = `${EXTRACTIVE_LABEL}, partial: stopped because ${describeStop(stopped, request.budget)} was exhausted before all the files were searched.`;
      body = passages.length > 0
        ? `${head}\nThe passages found so far in the files you can read that best match your question:\n\n${quoted}`
        : `${head}\nNothing relevant had been found in the files you can read yet.`;
    } else {
      body = passages.length > 0
        ? `${EXTRACTIVE_LABEL}: these passages from the files you can read best match your question.\n\n${quoted}`
        : `${EXTRACTIVE_LABEL}: nothing relevant to your question was found in the files you can read.`;
    }
    const citations: Citation[] = [];
    for (const p of passages) if (!citations.some((c) => c.name === p.name)) citations.push({ name: p.name, quote: p.text });
    return {
      text: body,
      citations,
      mode: 'extractive',
      model: this.model,
      provider: this.name,
      stop: stopped ?? 'completed',
      partial: stopped !== undefined,
      usage: meter.usage,
    };
  }
}
