/** Drive files -> documents. Pure: which files are indexed, how their text is read, their version. */
import type { DocumentSubject, Grant, SourceDocument } from '../types.ts';
import type { DriveFile } from './schemas.ts';

export const FOLDER_MIME = 'application/vnd.google-apps.folder';

/**
 * Google-native types and the text format each exports to (files.export, 10 MB cap). Sheets only
 * export CSV (of the first sheet), Docs and Slides plain text.
 * https://developers.google.com/workspace/drive/api/guides/ref-export-formats
 */
export const EXPORT_AS: ReadonlyMap<string, string> = new Map([
  ['application/vnd.google-apps.document', 'text/plain'],
  ['application/vnd.google-apps.presentation', 'text/plain'],
  ['application/vnd.google-apps.spreadsheet', 'text/csv'],
]);

/** Binary types whose text pipeline/extract.ts reads. */
const DOWNLOADED = new Set([
  'application/pdf',
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  'text/plain',
  'text/markdown',
  'text/x-markdown',
  'text/html',
]);

/** How a file's text is read, or null when it is not indexed (folders, shortcuts, images, ...). */
export function readMode(file: Pick<DriveFile, 'mimeType'>): 'export' | 'download' | null {
  if (EXPORT_AS.has(file.mimeType)) return 'export';
  return DOWNLOADED.has(file.mimeType) ? 'download' : null;
}

/** Where documents of a scope live: the shared drive id, or `mydrive`. */
export function containerOf(file: Pick<DriveFile, 'driveId'>): string {
  return file.driveId ?? 'mydrive';
}

/** Lowercased addresses of the people a file names: its owners (My Drive) and its last modifier. */
export function subjectEmails(file: Pick<DriveFile, 'owners' | 'lastModifyingUser'>): string[] {
  const emails = [...file.owners, ...(file.lastModifyingUser ? [file.lastModifyingUser] : [])].flatMap((u) => (u.emailAddress ? [u.emailAddress.trim().toLowerCase()] : []));
  return [...new Set(emails)];
}

/**
 * The people a file concerns, as its provenance: owners and last modifier, all authors, named by
 * directory user id (as SourceIdentity.sourceUserId). Drive's `User` carries only an address, so
 * `directoryId` maps it to the directory's id; an address the directory does not know (someone
 * outside the customer) is left out. Earlier editors are not listed: we do not read revisions.
 */
export function fileSubjects(file: Pick<DriveFile, 'owners' | 'lastModifyingUser'>, directoryId: (email: string) => string | undefined): DocumentSubject[] {
  const ids = subjectEmails(file).flatMap((email) => directoryId(email) ?? []);
  return [...new Set(ids)].map((sourceUserId) => ({ sourceUserId, role: 'author' }));
}

/**
 * A file's document. Content version: the md5 of a binary file's bytes, or the modification time
 * of a Google-native one. Why not Drive's `version`: it also moves on sharing changes, which must
 * update grants without re-embedding.
 */
export function fileDocument(file: DriveFile, acl: Grant[], subjects: DocumentSubject[], fetch: () => Promise<Buffer>): SourceDocument {
  const exported = EXPORT_AS.get(file.mimeType);
  return {
    sourceId: `file:${file.id}`,
    containerId: containerOf(file),
    kind: 'drive_file',
    title: file.name || file.id,
    url: file.webViewLink ?? `https://drive.google.com/open?id=${file.id}`,
    contentVersion: file.md5Checksum ? `md5:${file.md5Checksum}` : `mod:${file.modifiedTime}`,
    updatedAt: new Date(file.modifiedTime),
    acl,
    subjects,
    content: {
      type: 'file',
      // Exports are text (CSV included): extracted as plain text.
      fileName: exported ? `${file.name || file.id}.txt` : file.name || file.id,
      mimeType: exported ? 'text/plain' : file.mimeType,
      sizeBytes: Number(file.size ?? 0),
      fetch,
    },
  };
}
