import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildPptx, buildXlsx } from '../fixtures/graph/files.ts';
import { MIME } from '../fixtures/graph/tenant.ts';
import { extractText } from '../pipeline/extract.ts';

const limits = { maxBytes: 1024 * 1024, timeoutMs: 10_000 };

describe('Excel and PowerPoint text extraction', () => {
  test('a workbook yields its cells, shared strings resolved, one row per line', async () => {
    const bytes = Buffer.from(buildXlsx('Budget', [['Item', 'Note'], ['Travel & hotels', 'GRAPH-XLSX-OTTER: capped']]));
    const text = await extractText({ fileName: 'budget.xlsx', mimeType: MIME.xlsx, bytes }, limits);
    assert.equal(text, 'Item\tNote\nTravel & hotels\tGRAPH-XLSX-OTTER: capped');
  });

  test('a deck yields each slide\'s text in order; a generic mime type defers to the extension', async () => {
    const bytes = Buffer.from(buildPptx([{ title: 'All-hands', lines: ['first <Tuesday>'] }, { title: 'Next', lines: ['GRAPH-PPTX-IBIS'] }]));
    const text = await extractText({ fileName: 'deck.pptx', mimeType: 'application/octet-stream', bytes }, limits);
    assert.equal(text, 'All-hands\nfirst <Tuesday>\n\nNext\nGRAPH-PPTX-IBIS');
  });

  test('a corrupt workbook is an extraction error, not a crash', async () => {
    const bytes = Buffer.from('PK\u0003\u0004 definitely not a zip');
    await assert.rejects(extractText({ fileName: 'bad.xlsx', mimeType: MIME.xlsx, bytes }, limits), (err: unknown) => err instanceof Error && 'code' in err && err.code === 'EXTRACT_FAILED');
  });
});
