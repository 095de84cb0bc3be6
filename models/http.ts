/** The one HTTP exchange both chat protocols make: POST JSON, read a bounded body, validate it with zod. */
import type { z } from 'zod';
import { ModelError, codeForStatus } from './errors.ts';

/** Largest response body accepted from a model server, in bytes. */
const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;
/** Characters of an error body quoted in a ModelError. */
const MAX_ERROR_CHARS = 300;

async function readBounded(res: Response): Promise<string> {
  if (!res.body) return '';
  const decoder = new TextDecoder();
  let size = 0;
  let text = '';
  for await (const chunk of res.body) {
    size += chunk.byteLength;
    if (size > MAX_RESPONSE_BYTES) {
      await res.body.cancel().catch(() => undefined);
      throw new ModelError('MODEL_BAD_RESPONSE', `response larger than ${MAX_RESPONSE_BYTES} bytes`, { status: res.status });
    }
    text += decoder.decode(chunk, { stream: true });
  }
  return text + decoder.decode();
}

/**
 * POSTs `body` to `url` and returns the validated JSON answer. Expected failures are ModelErrors;
 * an abort propagates as the signal's reason, so the caller can tell a timeout from a failure.
 */
export async function postJson<S extends z.ZodType>(
  url: string,
  headers: Record<string, string>,
  body: unknown,
  schema: S,
  signal: AbortSignal,
  label: string,
): Promise<z.output<S>> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', ...headers },
      body: JSON.stringify(body),
      signal,
      // A redirect could carry the api-key header to another host: refuse it.
      redirect: 'error',
    });
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    throw new ModelError('MODEL_UNAVAILABLE', `${label}: request failed`, { cause: err });
  }
  let text: string;
  try {
    text = await readBounded(res);
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    if (err instanceof ModelError) throw err;
    throw new ModelError('MODEL_UNAVAILABLE', `${label}: response interrupted`, { cause: err, status: res.status });
  }
  if (!res.ok) {
    const detail = text.replace(/\s+/g, ' ').slice(0, MAX_ERROR_CHARS);
    throw new ModelError(codeForStatus(res.status), `${label} answered HTTP ${res.status}: ${detail}`, { status: res.status });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ModelError('MODEL_BAD_RESPONSE', `${label} answered with a body that is not JSON`, { cause: err, status: res.status });
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues
      .slice(0, 3)
      .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
      .join('; ');
    throw new ModelError('MODEL_BAD_RESPONSE', `${label} answered an unexpected shape: ${problems}`, {
      cause: parsed.error,
      status: res.status,
    });
  }
  return parsed.data;
}
