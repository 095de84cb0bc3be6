import type { SlackConnector } from '../../connectors/slack/connector.ts';
import type { SlackChannel } from '../../connectors/slack/schemas.ts';
import type { SourceDocument } from '../../connectors/types.ts';
import { isAstryError } from '../../core/errors.ts';
import { deleteDocuments, documentsInContainer } from '../../db/documents.ts';
import { addRunCounts, recordErrors } from '../../db/runs.ts';
import { ingestBatch, itemError } from '../../pipeline/ingest.ts';
import { FILES_CONTAINER } from './slack-principals.ts';
import type { ActivityDeps } from './deps.ts';

/**
 * Files: every file seen in this run plus every file already indexed is re-checked with files.info,
 * because a file's ACL is the union of the channels it is shared in and an unshare shows up nowhere
 * else. Files shared nowhere visible are deleted; ACL-only changes do not re-download or re-embed.
 */
export async function syncSlackFiles(
  deps: ActivityDeps,
  slack: SlackConnector,
  ids: { workspaceId: string; connectionId: string; runId: string },
  channels: readonly SlackChannel[],
  seen: readonly string[],
  heartbeat: (detail: unknown) => void,
): Promise<number> {
  const visible = new Map(channels.map((c) => [c.id, c]));
  const stored = (await documentsInContainer(deps.pool, ids.connectionId, FILES_CONTAINER)).map((d) => d.sourceId.replace(/^file:/, ''));
  const fileIds = [...new Set([...stored, ...seen])].sort();
  const batchSize = deps.batchSize ?? 32;
  let documents = 0;
  for (let start = 0; start < fileIds.length; start += batchSize) {
    const docs: SourceDocument[] = [];
    const gone: string[] = [];
    const errors = [];
    for (const fileId of fileIds.slice(start, start + batchSize)) {
      try {
        const doc = await slack.fileDocument(fileId, visible);
        if (doc === null) gone.push(`file:${fileId}`);
        else docs.push({ ...doc, containerId: FILES_CONTAINER });
      } catch (err) {
        if (!isAstryError(err) || isAstryError(err, 'SOURCE_AUTH_FAILED', 'SOURCE_RATE_LIMITED')) throw err;
        errors.push(itemError(`file:${fileId}`, err));
      }
    }
    const deleted = await deleteDocuments(deps.pool, ids.connectionId, gone);
    const result = await ingestBatch(deps, ids, docs);
    await addRunCounts(deps.pool, ids.runId, { ...result, deleted });
    await recordErrors(deps.pool, ids.runId, ids.connectionId, [...errors, ...result.errors]);
    documents += docs.length;
    heartbeat({ done: start + batchSize });
  }
  return documents;
}
