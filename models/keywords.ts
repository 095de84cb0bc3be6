/** Keywords of a question for the extractive answerer: lower-cased words, stopwords dropped. */

/** Function words and question scaffolding that say nothing about the topic. */
const STOPWORDS = new Set(
  `a about above after again against all also am an and any are aren't as at be because been before being below
between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down during each either
few find for from further get gets give got had hadn't has hasn't have haven't having he he'd he'll he's her here
here's hers herself him himself his how how's i i'd i'll i'm i've if in into is isn't it it's its itself just know
let's like may me might more most must mustn't my myself need no nor not now of off on once only or other ought our
many much ours ourselves out over own please same say says shall shan't she she'd she'll she's should shouldn't show so some
such tell than that that's the their theirs them themselves then there there's these they they'd they'll they're
they've this those through to too under until up us very was wasn't we we'd we'll we're we've were weren't what
what's when when's where where's which while who who's whom why why's will with won't would wouldn't you you'd
you'll you're you've your yours yourself yourselves`.split(/\s+/),
);

/** Most keywords one question contributes; the longest are kept (they are the most specific). */
export const MAX_KEYWORDS = 8;

/** The words of `text`, lower-cased, split on anything that is not a letter, digit or apostrophe. */
export function words(text: string): string[] {
  return text
    .toLowerCase()
    .split(/[^\p{L}\p{N}']+/u)
    .map((w) => w.replace(/^'+|'+$/g, ''))
    .filter((w) => w.length > 0);
}

/** Distinct keywords of a question, in question order; apostrophes dropped so grep finds them. */
export function keywords(question: string): string[] {
  const found: string[] = [];
  for (const w of words(question)) {
    if (STOPWORDS.has(w)) continue;
    const k = w.replace(/'s$/, '').replace(/'/g, '');
    if (k.length < 2) continue;
    if (!found.includes(k)) found.push(k);
  }
  if (found.length <= MAX_KEYWORDS) return found;
  const keep = new Set([...found].sort((a, b) => b.length - a.length || (a < b ? -1 : a > b ? 1 : 0)).slice(0, MAX_KEYWORDS));
  return found.filter((k) => keep.has(k));
}
