import { extname } from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { AstryError } from '../core/errors.ts';

/** A downloaded source file. */
export interface ExtractInput {
  fileName: string;
  mimeType: string;
  bytes: Buffer;
}

/** Bounds of one extraction. */
export interface ExtractLimits {
  /** Largest file accepted, in bytes; checked before any parsing. */
  maxBytes: number;
  /** Wall-clock budget of the parser, in milliseconds. */
  timeoutMs: number;
  /** Largest extracted text accepted, in UTF-16 code units (default 5 Mi, about 1.3 M tokens). */
  maxTextChars?: number;
}

/** Default cap on extracted text; see `extractText` for why exceeding it is an error. */
export const DEFAULT_MAX_TEXT_CHARS = 5 * 1024 * 1024;

type Kind = 'txt' | 'md' | 'html' | 'pdf' | 'docx' | 'xlsx' | 'pptx';

// Maps, not object literals: a hostile "constructor" or "__proto__" type must not hit a prototype.
const KIND_BY_MIME = new Map<string, Kind>([
  ['text/plain', 'txt'],
  ['text/markdown', 'md'],
  ['text/x-markdown', 'md'],
  ['text/html', 'html'],
  ['application/xhtml+xml', 'html'],
  ['application/pdf', 'pdf'],
  ['application/vnd.openxmlformats-officedocument.wordprocessingml.document', 'docx'],
  ['application/vnd.openxmlformats-officedocument.spreadsheetml.sheet', 'xlsx'],
  ['application/vnd.openxmlformats-officedocument.presentationml.presentation', 'pptx'],
]);

const KIND_BY_EXTENSION = new Map<string, Kind>([
  ['txt', 'txt'],
  ['text', 'txt'],
  ['md', 'md'],
  ['markdown', 'md'],
  ['html', 'html'],
  ['htm', 'html'],
  ['xhtml', 'html'],
  ['pdf', 'pdf'],
  ['docx', 'docx'],
  ['xlsx', 'xlsx'],
  ['pptx', 'pptx'],
]);

/** Mime types that say nothing about the content, so the file extension decides. */
const GENERIC_MIME = new Set(['', 'application/octet-stream', 'binary/octet-stream', 'application/unknown']);

/**
 * The kind of a file: a known mime type wins; a generic or missing one defers to the extension.
 * A specific but unsupported mime type (image/png) is refused even if the name ends in .txt,
 * so a mislabelled binary is never indexed as text.
 */
function kindOf(fileName: string, mimeType: string): Kind {
  const mime = mimeType.split(';')[0]?.trim().toLowerCase() ?? '';
  const byMime = KIND_BY_MIME.get(mime);
  if (byMime) return byMime;
  const byExtension = GENERIC_MIME.has(mime) ? KIND_BY_EXTENSION.get(extname(fileName).slice(1).toLowerCase()) : undefined;
  if (byExtension) return byExtension;
  throw new AstryError('UNSUPPORTED_TYPE', `cannot extract text from ${mime || 'unknown type'} (${extname(fileName) || 'no extension'})`);
}

/**
 * Extracts normalized plain text from a txt, md, html, pdf, docx, xlsx or pptx file.
 *
 * Throws UNSUPPORTED_TYPE for other kinds, TOO_LARGE when the file exceeds `maxBytes` (before parsing)
 * or the text exceeds `maxTextChars`, EXTRACT_FAILED when the parser fails or runs out of time.
 * Oversized text is an error rather than silently truncated: a partly indexed document would answer
 * "not found" for its tail with no one knowing, while an item error shows up in sync health.
 *
 * Parsing (html, pdf, docx) runs in a worker thread that is killed at `timeoutMs`.
 */
export async function extractText(input: ExtractInput, limits: ExtractLimits): Promise<string> {
  const maxTextChars = limits.maxTextChars ?? DEFAULT_MAX_TEXT_CHARS;
  if (input.bytes.length > limits.maxBytes) {
    throw new AstryError('TOO_LARGE', `${input.fileName} is ${input.bytes.length} bytes; the limit is ${limits.maxBytes}`);
  }
  const kind = kindOf(input.fileName, input.mimeType);
  let raw: string;
  try {
    // Decoding UTF-8 cannot hang; real parsers run in a worker thread that a timeout can kill.
    raw = kind === 'txt' || kind === 'md' ? decodeUtf8(input.bytes) : await parseInWorker(kind, input.bytes, limits.timeoutMs);
  } catch (cause) {
    if (cause instanceof AstryError) throw cause;
    throw new AstryError('EXTRACT_FAILED', `could not extract text from ${input.fileName} (${kind})`, { cause });
  }
  if (raw.length > maxTextChars) {
    throw new AstryError('TOO_LARGE', `${input.fileName} holds ${raw.length} characters of text; the limit is ${maxTextChars}`);
  }
  return normalizeText(raw);
}

/**
 * Parser threads. pdf.js, mammoth and html-to-text run synchronous code on hostile input: in-process,
 * a crafted file could block the event loop (and Temporal heartbeats) for good, which no timer can
 * interrupt, or exhaust the heap. A worker is terminated on timeout and has its own heap limit.
 * Idle workers are reused: starting one and loading a parser costs 100-300 ms.
 */
const WORKER_MARKER = 'astry-extract-worker';
/** Heap ceiling of a parser thread: a decompression bomb kills the thread, not the process. */
const WORKER_HEAP_MB = 1024;
const MAX_IDLE_WORKERS = 4;
const idleWorkers: Worker[] = [];

type ParsedKind = Exclude<Kind, 'txt' | 'md'>;
interface ParseJob {
  kind: ParsedKind;
  bytes: Uint8Array;
}

function parseInWorker(kind: ParsedKind, bytes: Buffer, timeoutMs: number): Promise<string> {
  const worker =
    idleWorkers.pop() ??
    new Worker(new URL(import.meta.url), { workerData: WORKER_MARKER, resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB } });
  worker.ref();
  return new Promise<string>((resolve, reject) => {
    const settle = (reusable: boolean) => {
      clearTimeout(timer);
      worker.off('message', onMessage).off('error', onError).off('exit', onExit);
      if (reusable && idleWorkers.length < MAX_IDLE_WORKERS) {
        worker.unref();
        idleWorkers.push(worker);
      } else {
        void worker.terminate();
      }
    };
    const onMessage = (reply: unknown) => {
      settle(true);
      const text = typeof reply === 'object' && reply !== null && 'text' in reply ? reply.text : undefined;
      const error = typeof reply === 'object' && reply !== null && 'error' in reply ? reply.error : 'malformed reply';
      if (typeof text === 'string') resolve(text);
      else reject(new Error(String(error)));
    };
    const onError = (err: Error) => {
      settle(false);
      reject(err);
    };
    const onExit = (code: number) => {
      settle(false);
      reject(new Error(`extraction worker exited with code ${code}`));
    };
    const timer = setTimeout(() => {
      settle(false);
      reject(new AstryError('EXTRACT_FAILED', `extraction timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    worker.on('message', onMessage).on('error', onError).on('exit', onExit);
    // An exact copy, transferred: posting `bytes` itself would clone its whole backing ArrayBuffer.
    const copy = new Uint8Array(bytes.length);
    copy.set(bytes);
    const job: ParseJob = { kind, bytes: copy };
    worker.postMessage(job, [copy.buffer]);
  });
}

if (!isMainThread && workerData === WORKER_MARKER && parentPort) {
  const port = parentPort;
  port.on('message', (job: ParseJob) => {
    // Structured clone delivers a Uint8Array; mammoth wants a Buffer (this one shares the memory).
    const bytes = Buffer.from(job.bytes.buffer, job.bytes.byteOffset, job.bytes.byteLength);
    parse(job.kind, bytes).then(
      (text) => port.postMessage({ text }),
      (err: unknown) => port.postMessage({ error: err instanceof Error ? err.message : String(err) }),
    );
  });
}

/** Runs in the worker; parsers are imported on first use so each thread loads only what it needs. */
async function parse(kind: ParsedKind, bytes: Buffer): Promise<string> {
  switch (kind) {
    case 'html': {
      const { convert } = await import('html-to-text');
      return convert(decodeUtf8(bytes), {
        wordwrap: false,
        // The byte limit already bounds input; the library's own cap would truncate silently.
        limits: { maxInputLength: Number.MAX_SAFE_INTEGER },
        selectors: [
          { selector: 'script', format: 'skip' },
          { selector: 'style', format: 'skip' },
          { selector: 'noscript', format: 'skip' },
          { selector: 'template', format: 'skip' },
          { selector: 'img', format: 'skip' },
          { selector: 'a', options: { ignoreHref: true } },
          { selector: 'table', format: 'dataTable', options: { uppercaseHeaderCells: false } },
          ...['h1', 'h2', 'h3', 'h4', 'h5', 'h6'].map((selector) => ({ selector, options: { uppercase: false } })),
        ],
      });
    }
    case 'pdf':
      return parsePdf(bytes);
    case 'docx': {
      const { default: mammoth } = await import('mammoth');
      return (await mammoth.extractRawText({ buffer: bytes })).value;
    }
    case 'xlsx':
    case 'pptx':
      return parseOoxml(kind, bytes);
  }
}

/** XML text with its five entities and numeric character references decoded. */
function xmlText(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#\d+|lt|gt|amp|quot|apos);/gi, (_, e: string) => {
    const named: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };
    if (e[0] !== '#') return named[e.toLowerCase()] ?? '';
    const code = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
    return Number.isFinite(code) && code <= 0x10ffff ? String.fromCodePoint(code) : '';
  });
}

/** Parts named `<prefix><n>.xml`, in numeric order (sheet2 before sheet10). */
function numberedParts(names: string[], prefix: string): string[] {
  const n = (name: string) => Number(/(\d+)\.xml$/.exec(name)?.[1] ?? 0);
  return names.filter((name) => name.startsWith(prefix) && /\d+\.xml$/.test(name)).sort((a, b) => n(a) - n(b));
}

/**
 * Excel: each sheet's cells (shared strings resolved, inline strings, values), one row per line,
 * tab-separated. PowerPoint: each slide's text runs, one paragraph per line, slides in order.
 */
async function parseOoxml(kind: 'xlsx' | 'pptx', bytes: Buffer): Promise<string> {
  const { default: JSZip } = await import('jszip');
  const zip = await JSZip.loadAsync(bytes);
  const read = async (name: string) => (await zip.file(name)?.async('string')) ?? '';
  const names = Object.keys(zip.files);
  if (kind === 'pptx') {
    const slides = await Promise.all(numberedParts(names, 'ppt/slides/slide').map(read));
    return slides
      .map((xml) => [...xml.matchAll(/<a:p\b[^>]*>([\s\S]*?)<\/a:p>/g)].map((p) => [...(p[1] ?? '').matchAll(/<a:t\b[^>]*>([^<]*)<\/a:t>/g)].map((t) => xmlText(t[1] ?? '')).join('')).join('\n'))
      .join('\n\n');
  }
  const shared = [...(await read('xl/sharedStrings.xml')).matchAll(/<si\b[^>]*>([\s\S]*?)<\/si>/g)].map((si) =>
    [...(si[1] ?? '').matchAll(/<t\b[^>]*>([^<]*)<\/t>/g)].map((t) => xmlText(t[1] ?? '')).join(''),
  );
  const sheets = await Promise.all(numberedParts(names, 'xl/worksheets/sheet').map(read));
  return sheets
    .map((xml) =>
      [...xml.matchAll(/<row\b[^>]*>([\s\S]*?)<\/row>/g)]
        .map((row) =>
          [...(row[1] ?? '').matchAll(/<c\b([^>]*?)(?:\/>|>([\s\S]*?)<\/c>)/g)]
            .map((cell) => {
              const type = /\bt="([^"]+)"/.exec(cell[1] ?? '')?.[1];
              const body = cell[2] ?? '';
              if (type === 'inlineStr') return [...body.matchAll(/<t\b[^>]*>([^<]*)<\/t>/g)].map((t) => xmlText(t[1] ?? '')).join('');
              const value = xmlText(/<v>([^<]*)<\/v>/.exec(body)?.[1] ?? '');
              return type === 's' ? (shared[Number(value)] ?? '') : value;
            })
            .join('\t'),
        )
        .join('\n'),
    )
    .join('\n\n');
}

async function parsePdf(bytes: Buffer): Promise<string> {
  const { extractText: extractPdfText, getDocumentProxy } = await import('unpdf');
  // pdf.js refuses Buffer; a plain view over the worker's own copy is enough.
  const pdf = await getDocumentProxy(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), {
    verbosity: 0,
    disableFontFace: true,
    useSystemFonts: false,
    isOffscreenCanvasSupported: false,
  });
  try {
    return (await extractPdfText(pdf, { mergePages: true })).text;
  } finally {
    await pdf.loadingTask.destroy();
  }
}

/**
 * UTF-8 with a leading BOM dropped; invalid sequences become U+FFFD rather than failing the file.
 * Markdown is kept as written: its markup (#, -, |) is light and carries structure.
 */
function decodeUtf8(bytes: Buffer): string {
  return new TextDecoder('utf-8').decode(bytes);
}

/**
 * Lone surrogates become U+FFFD; NFC; CR, CRLF, VT, FF, NEL and U+2028/2029 become \n; NUL, other
 * C0/C1 controls and BOMs are dropped (\t stays); trailing spaces go; runs of blank lines become one.
 */
export function normalizeText(text: string): string {
  return text
    .toWellFormed()
    .normalize('NFC')
    .replace(/\r\n?|[\v\f\u0085\u2028\u2029]/g, '\n')
    // eslint-disable-next-line no-control-regex -- removing control characters is the point
    .replace(/[\u0000-\u0008\u000e-\u001f\u007f-\u009f\ufeff]/g, '')
    .replace(/[^\S\n]+$/gm, '')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}
