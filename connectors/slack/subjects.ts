/**
 * Who a Slack document concerns (its provenance for erasure), and leaving erased people out of it.
 * Pure. Why here and not in the pipeline: only the connector sees messages; the pipeline sees a
 * rendered text from which one person's lines cannot be reliably cut.
 */
import type { DocumentSubject } from '../types.ts';
import type { RenderContext } from './render.ts';
import type { SlackMessage } from './schemas.ts';

/** What a mention of an erased person renders as. */
export const ERASED_NAME = '[erased]';

const MENTION = /<@([UW][A-Z0-9]+)(?:\|[^>]*)?>/g;

/** The user ids a message's text mentions (`<@U…>`, `<@U…|label>`). */
export function mentionedUserIds(text: string): string[] {
  return [...text.matchAll(MENTION)].flatMap((m) => (m[1] === undefined ? [] : [m[1]]));
}

/** True when a suppressed person wrote the message: it is left out of every document. */
export function bySuppressed(message: SlackMessage, ctx: RenderContext): boolean {
  return message.user !== undefined && ctx.suppressed?.(message.user) === true;
}

/** `ctx` with every suppressed person mentioned in `messages` named `[erased]`. */
export function withoutSuppressed(ctx: RenderContext, messages: Iterable<SlackMessage>): RenderContext {
  const suppressed = ctx.suppressed;
  if (suppressed === undefined) return ctx;
  const names = new Map(ctx.names);
  for (const message of messages) {
    for (const id of mentionedUserIds(message.text)) if (suppressed(id)) names.set(id, ERASED_NAME);
  }
  return { ...ctx, names };
}

/** Authors and mentioned people of `messages`, suppressed people excluded (their traces are not rendered). */
export function subjectsOf(messages: readonly SlackMessage[], ctx: RenderContext): DocumentSubject[] {
  const subjects = new Map<string, DocumentSubject>();
  const add = (sourceUserId: string, role: DocumentSubject['role']): void => {
    if (ctx.suppressed?.(sourceUserId) === true) return;
    subjects.set(`${role}:${sourceUserId}`, { sourceUserId, role });
  };
  for (const message of messages) {
    if (message.user !== undefined) add(message.user, 'author');
    for (const id of mentionedUserIds(message.text)) add(id, 'mentioned');
  }
  return [...subjects.values()];
}
