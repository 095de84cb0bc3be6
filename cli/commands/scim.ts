/** `astry scim …`: provisioning tokens for the IdP, and clearance per directory group. */
import { SCIM_PREFIX } from '../../api/scim/routes.ts';
import { createScimToken, listScimTokens, revokeScimToken } from '../../api/scim/tokens.ts';
import { AstryError } from '../../core/errors.ts';
import { setGroupClearance } from '../../db/scim.ts';
import { MAX_CLEARANCE } from '../../identity/users.ts';
import type { CliContext } from '../context.ts';

/** `astry scim token create`: prints a new token once, with what to paste into Okta or Entra. */
export async function createToken(ctx: CliContext, opts: { name: string }): Promise<void> {
  const { id, token } = await createScimToken(ctx.pool, await ctx.workspaceId(), opts.name);
  const base = `http://${ctx.env.ASTRY_API_HOST}:${ctx.env.ASTRY_API_PORT}${SCIM_PREFIX}`;
  console.log(`SCIM token ${id} (${opts.name}) for workspace ${ctx.env.ASTRY_WORKSPACE}. It is shown only now:\n\n  ${token}\n`);
  console.log(`Okta: SCIM connector base URL ${base}, authentication mode "HTTP Header", the token above.`);
  console.log(`Entra: Tenant URL ${base}, Secret Token the token above.`);
  console.log(`(Use the API's public address instead of ${base} if the IdP reaches it elsewhere.)`);
}

/** `astry scim token list`: ids, names, last use, revocation; never the tokens. */
export async function listTokens(ctx: CliContext): Promise<void> {
  const tokens = await listScimTokens(ctx.pool, await ctx.workspaceId());
  if (tokens.length === 0) {
    console.log('no SCIM tokens: astry scim token create --name okta');
    return;
  }
  const when = (d: Date | null) => (d === null ? '-' : d.toISOString().replace(/\.\d+Z$/, 'Z'));
  console.log(['id', 'name', 'created', 'last used', 'revoked'].join('\t'));
  for (const t of tokens) console.log([t.id, t.name, when(t.createdAt), when(t.lastUsedAt), when(t.revokedAt)].join('\t'));
}

/** `astry scim token revoke <id>`: refused from the next request on. */
export async function revokeToken(ctx: CliContext, id: string): Promise<void> {
  if (!(await revokeScimToken(ctx.pool, await ctx.workspaceId(), id))) throw new AstryError('NOT_FOUND', `no live SCIM token ${id}`);
  console.log(`SCIM token ${id} revoked`);
}

/**
 * `astry scim group-clearance <group> <level|none>`: members of the provisioned group get at least
 * this clearance (the highest of the user's own and their groups' wins); `none` clears it.
 */
export async function groupClearance(ctx: CliContext, group: string, level: string): Promise<void> {
  const value = level === 'none' ? null : Number(level);
  if (value !== null && (!Number.isInteger(value) || value < 0 || value > MAX_CLEARANCE)) {
    throw new AstryError('CONFIG_INVALID', `clearance must be an integer within 0..${MAX_CLEARANCE}, or none`);
  }
  const updated = await setGroupClearance(ctx.pool, await ctx.workspaceId(), group, value);
  if (updated === 0) throw new AstryError('NOT_FOUND', `no provisioned group named ${JSON.stringify(group)}`);
  console.log(`group ${JSON.stringify(group)}: clearance ${value ?? 'cleared'} (${updated} group${updated === 1 ? '' : 's'})`);
}
