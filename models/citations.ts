/**
 * Citations in a model's answer: `[doc-001.txt]` or `[doc-001.txt, doc-002.txt]`. Only names of the
 * sandbox manifest survive; any other file-like citation is removed from the text as well, so an
 * answer never names (or hints at) a file the asker may not read.
 */
import type { Citation } from './types.ts';

const BRACKETS = /([ \t]*)\[([^[\]\n]{1,300})\]/g;
/** Looks like a file or path: has a slash, or ends in a short extension. */
const FILE_LIKE = /[/\\]|^\S+\.[A-Za-z0-9]{1,10}$/;

function unquote(part: string): string {
  return part.trim().replace(/^[`'"“”]+|[`'"“”]+$/g, '');
}

/** `text` with unknown citations removed, and the manifest citations it keeps, in order of first use. */
export function filterCitations(text: string, manifest: ReadonlySet<string>): { text: string; citations: Citation[] } {
  const cited: string[] = [];
  const cleaned = text.replace(BRACKETS, (whole: string, space: string, inner: string) => {
    const parts = inner.split(/[,;]/).map(unquote);
    const citationLike = parts.filter((p) => manifest.has(p) || FILE_LIKE.test(p));
    if (citationLike.length === 0) return whole; // "[1]", "[sic]": not a citation
    const kept = citationLike.filter((p) => manifest.has(p));
    for (const name of kept) if (!cited.includes(name)) cited.push(name);
    return kept.length === 0 ? '' : `${space}[${kept.join(', ')}]`;
  });
  return {
    text: cleaned.trim(),
    citations: cited.map((name) => ({ name })),
  };
}
