/** Slack files: their documents, and a bounded, authenticated download. */
import { AstryError, type AstryErrorCode } from '../../core/errors.ts';
import type { PrincipalRef, SourceDocument } from '../types.ts';
import type { SlackFile } from './schemas.ts';

/** Where a download may be sent with our bearer token. */
export interface DownloadTarget {
  /** url_private(_download) of the file. */
  url: string;
  token: string;
  /** Bodies larger than this abort with TOO_LARGE, without reading the rest. */
  maxBytes: number;
  /** Origins allowed to receive the token besides https://files.slack.com (the emulator's in tests). */
  allowedOrigins: ReadonlySet<string>;
  /** The file's declared MIME type, to spot Slack's sign-in page served instead of the file. */
  mimeType: string;
}

/** The channels (public and private) a file is currently shared in; DMs are ignored. */
export function sharedChannelIds(file: SlackFile): string[] {
  const ids = new Set([
    ...file.channels,
    ...file.groups,
    ...Object.keys(file.shares?.public ?? {}),
    ...Object.keys(file.shares?.private ?? {}),
  ]);
  for (const im of file.ims) ids.delete(im);
  return [...ids];
}

/** A file's document. `acl` must be non-empty (see acl.fileAcl); `fetch` downloads the bytes lazily. */
export function fileDocument(
  file: SlackFile,
  containerId: string,
  acl: PrincipalRef[],
  fetch: () => Promise<Buffer>,
): SourceDocument {
  const modified = file.updated ?? file.timestamp ?? file.created;
  const fileName = file.name ?? file.title ?? file.id;
  return {
    sourceId: `file:${file.id}`,
    containerId,
    kind: 'slack_file',
    title: file.title ?? fileName,
    url: file.permalink ?? file.url_private ?? '',
    // Why not a content hash: Slack bumps `updated` on every edit, and hashing would mean downloading.
    contentVersion: `${file.id}:${modified}:${file.size}`,
    updatedAt: new Date(modified * 1000),
    acl,
    content: { type: 'file', fileName, mimeType: file.mimetype, sizeBytes: file.size, fetch },
    subjects: file.user === undefined ? [] : [{ sourceUserId: file.user, role: 'author' }],
  };
}

function statusCode(status: number): AstryErrorCode {
  if (status === 401 || status === 403) return 'SOURCE_AUTH_FAILED';
  if (status === 404 || status === 410) return 'NOT_FOUND';
  if (status === 429) return 'SOURCE_RATE_LIMITED';
  return 'SOURCE_UNAVAILABLE';
}

function tooLarge(maxBytes: number): AstryError {
  return new AstryError('TOO_LARGE', `Slack file is larger than ${maxBytes} bytes`);
}

/**
 * Downloads a file with the bot token (https://docs.slack.dev/messaging/working-with-files#authenticating),
 * aborting as soon as more than `maxBytes` arrive. The token is only sent to Slack's file host or an
 * allowed origin: a url_private naming any other host is SOURCE_BAD_DATA.
 */
export async function downloadFile(target: DownloadTarget): Promise<Buffer> {
  let url: URL;
  try {
    url = new URL(target.url);
  } catch (cause) {
    throw new AstryError('SOURCE_BAD_DATA', 'Slack file url is not a URL', { cause });
  }
  const allowed =
    (url.protocol === 'https:' && url.hostname === 'files.slack.com') || target.allowedOrigins.has(url.origin);
  if (!allowed) throw new AstryError('SOURCE_BAD_DATA', `refusing to send the Slack token to ${url.origin}`);

  const abort = new AbortController();
  let response: Response;
  try {
    response = await fetch(url, { headers: { Authorization: `Bearer ${target.token}` }, signal: abort.signal });
  } catch (cause) {
    throw new AstryError('SOURCE_UNAVAILABLE', `Slack file download failed`, { cause });
  }
  try {
    if (!response.ok) throw new AstryError(statusCode(response.status), `Slack file download answered HTTP ${response.status}`);
    const declared = Number(response.headers.get('content-length') ?? Number.NaN);
    if (declared > target.maxBytes) throw tooLarge(target.maxBytes);
    // Why: without files:read, Slack answers 200 with its HTML sign-in page instead of the file.
    const type = response.headers.get('content-type') ?? '';
    if (type.startsWith('text/html') && !target.mimeType.startsWith('text/html')) {
      throw new AstryError('SOURCE_AUTH_FAILED', 'Slack served a sign-in page instead of the file: check the files:read scope');
    }
    if (response.body === null) return Buffer.alloc(0);
    const chunks: Uint8Array[] = [];
    let total = 0;
    for await (const chunk of response.body) {
      total += chunk.byteLength;
      if (total > target.maxBytes) throw tooLarge(target.maxBytes);
      chunks.push(chunk);
    }
    return Buffer.concat(chunks, total);
  } catch (err) {
    // Stop the transfer now: the rest of an oversized or failed body is never read.
    abort.abort();
    if (err instanceof AstryError) throw err;
    throw new AstryError('SOURCE_UNAVAILABLE', 'Slack file download failed while reading', { cause: err });
  }
}
