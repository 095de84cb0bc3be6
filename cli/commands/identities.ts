import type { Queryable } from '../../db/pool.ts';
import type { CliContext } from '../context.ts';

/** One source account and the principal it resolves to. */
export interface IdentityRow {
  connection: string;
  source: string;
  sourceUserId: string;
  displayName: string;
  email: string | null;
  kind: string;
  active: boolean;
  principal: string;
  /** True when the principal is a canonical `email:` user shared by the person's identities across sources. */
  linked: boolean;
}

/**
 * Source identities of a workspace. `unlinked`: only those whose principal is not a canonical
 * `email:` user — guests, externals, accounts without a verified email — which stay their own
 * principals and get exactly what their source grants them.
 */
export async function listIdentities(db: Queryable, workspaceId: string, opts: { unlinked: boolean }): Promise<IdentityRow[]> {
  const { rows } = await db.query<{
    connection: string; source: string; source_user_id: string; display_name: string; email: string | null; identity_kind: string; active: boolean; key: string;
  }>(
    `SELECT c.name AS connection, c.source, si.source_user_id, si.display_name, si.email, si.identity_kind, si.active, p.key
     FROM source_identities si
     JOIN connections c ON c.id = si.connection_id
     JOIN principals p ON p.id = si.principal_id
     WHERE si.workspace_id = $1 AND ($2::boolean = false OR p.key NOT LIKE 'email:%')
     ORDER BY c.name, si.display_name, si.source_user_id`,
    [workspaceId, opts.unlinked],
  );
  return rows.map((r) => ({
    connection: r.connection, source: r.source, sourceUserId: r.source_user_id, displayName: r.display_name, email: r.email,
    kind: r.identity_kind, active: r.active, principal: r.key, linked: r.key.startsWith('email:'),
  }));
}

/** `astry identities [--unlinked]`: one line per source account. */
export async function showIdentities(ctx: CliContext, opts: { unlinked?: boolean }): Promise<void> {
  const rows = await listIdentities(ctx.pool, await ctx.workspaceId(), { unlinked: opts.unlinked ?? false });
  if (rows.length === 0) {
    console.log(opts.unlinked ? 'every source identity is linked to a canonical user' : 'no source identities yet: sync a connection first');
    return;
  }
  console.table(
    rows.map((r) => ({
      connection: r.connection, source: r.source, id: r.sourceUserId, name: r.displayName, email: r.email ?? '-', kind: r.kind,
      active: r.active, principal: r.principal,
    })),
  );
}
