import type { Company } from '../../fixtures/slack/types.ts';

/**
 * The documents a correct sync of `company` holds, computed from the fixture alone (independent of
 * the connector): one per thread, one per UTC day of loose top-level messages in each channel the bot
 * is a member of (never DMs), and one per file shared into such a channel.
 */
export function expectedSourceIds(company: Company): Set<string> {
  const visible = company.channels.filter((c) => !c.is_im && !c.is_mpim && c.members.includes(company.botUserId));
  const ids = new Set<string>();
  const fileIds = new Set<string>();
  for (const channel of visible) {
    for (const m of company.messages[channel.id] ?? []) {
      for (const f of m.file_ids ?? []) fileIds.add(f);
      if (m.thread_ts && m.thread_ts !== m.ts) continue;
      // Events (joins, leaves, renames, tombstones) carry nothing to index.
      if (m.subtype !== undefined && m.subtype !== 'file_share' && m.subtype !== 'thread_broadcast') continue;
      if ((m.reply_count ?? 0) > 0) ids.add(`thread:${channel.id}:${m.ts}`);
      else ids.add(`day:${channel.id}:${new Date(Number(m.ts) * 1000).toISOString().slice(0, 10)}`);
    }
  }
  for (const f of fileIds) ids.add(`file:${f}`);
  return ids;
}
