import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import JSZip from 'jszip';
import { isAstryError } from '../core/errors.ts';
import { extractText, normalizeText } from '../pipeline/extract.ts';

const limits = { maxBytes: 1024 * 1024, timeoutMs: 10_000 };
const PDF_MIME = 'application/pdf';
const DOCX_MIME = 'application/vnd.openxmlformats-officedocument.wordprocessingml.document';

function rejectsWith(code: string) {
  return (err: unknown) => isAstryError(err) && err.code === code;
}

/** A minimal valid PDF, one page per string, each drawn with a Helvetica text object; xref offsets computed. */
function buildPdf(pages: string[]): Buffer {
  const fontId = 3 + pages.length * 2;
  const objects: string[] = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    `<< /Type /Pages /Kids [${pages.map((_, i) => `${3 + i * 2} 0 R`).join(' ')}] /Count ${pages.length} >>`,
  ];
  pages.forEach((text, i) => {
    const escaped = text.replace(/[\\()]/g, (c) => `\\${c}`);
    const stream = `BT /F1 18 Tf 72 720 Td (${escaped}) Tj ET`;
    objects.push(
      `<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents ${4 + i * 2} 0 R /Resources << /Font << /F1 ${fontId} 0 R >> >> >>`,
      `<< /Length ${Buffer.byteLength(stream, 'latin1')} >>\nstream\n${stream}\nendstream`,
    );
  });
  objects.push('<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>');
  let pdf = '%PDF-1.4\n';
  const offsets: number[] = [];
  objects.forEach((body, i) => {
    offsets.push(Buffer.byteLength(pdf, 'latin1'));
    pdf += `${i + 1} 0 obj\n${body}\nendobj\n`;
  });
  const xref = Buffer.byteLength(pdf, 'latin1');
  pdf += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`;
  pdf += offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n \n`).join('');
  pdf += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(pdf, 'latin1');
}

/** A minimal valid .docx (the three parts Word needs), one w:p per paragraph. */
async function buildDocx(paragraphs: string[]): Promise<Buffer> {
  const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const zip = new JSZip();
  zip.file(
    '[Content_Types].xml',
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>' +
      '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">' +
      '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>' +
      '<Default Extension="xml" ContentType="application/xml"/>' +
      '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>' +
      '</Types>',
  );
  zip.file(
    '_rels/.rels',
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>' +
      '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">' +
      '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/>' +
      '</Relationships>',
  );
  zip.file(
    'word/document.xml',
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>' +
      '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>' +
      paragraphs.map((p) => `<w:p><w:r><w:t xml:space="preserve">${escape(p)}</w:t></w:r></w:p>`).join('') +
      '</w:body></w:document>',
  );
  return zip.generateAsync({ type: 'nodebuffer' });
}

describe('extractText', () => {
  it('reads plain text as UTF-8 and drops a BOM', async () => {
    const bytes = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('Grüße aus Köln 👋\nzweite Zeile', 'utf8')]);
    assert.equal(await extractText({ fileName: 'notes.txt', mimeType: 'text/plain', bytes }, limits), 'Grüße aus Köln 👋\nzweite Zeile');
  });

  it('keeps markdown as written', async () => {
    const md = '# Title\n\n- item *one*\n- item two\n\n| a | b |\n|---|---|\n| 1 | 2 |';
    assert.equal(await extractText({ fileName: 'README.md', mimeType: 'text/markdown', bytes: Buffer.from(md) }, limits), md);
  });

  it('turns HTML into text without script, style or template content', async () => {
    const html = `<!doctype html><html><head><title>T</title>
      <style>.secret-style { color: red }</style>
      <script>var secretScript = "do not index";</script></head>
      <body><h1>Quarterly Plan</h1><p>Revenue &amp; costs <a href="https://x.example/">here</a>.</p>
      <script type="module">import "secret-module";</script><noscript>enable js</noscript>
      <template><p>secret template</p></template>
      <table><tr><th>Region</th><th>Lead</th></tr><tr><td>EMEA</td><td>Ana</td></tr></table></body></html>`;
    const text = await extractText({ fileName: 'page.html', mimeType: 'text/html; charset=utf-8', bytes: Buffer.from(html) }, limits);
    assert.match(text, /Quarterly Plan/);
    assert.match(text, /Revenue & costs here\./);
    assert.match(text, /EMEA\s+Ana/);
    for (const hidden of ['secret', 'color', 'do not index', 'enable js', 'x.example']) {
      assert.ok(!text.includes(hidden), `${hidden} leaked into ${JSON.stringify(text)}`);
    }
  });

  it('extracts the text of a hand-built PDF, all pages merged', async () => {
    const bytes = buildPdf(['Hello from the Astry PDF (page one)', 'Second page text']);
    const text = await extractText({ fileName: 'report.pdf', mimeType: PDF_MIME, bytes }, limits);
    assert.match(text, /Hello from the Astry PDF \(page one\)/);
    assert.match(text, /Second page text/);
  });

  it('extracts the paragraphs of a .docx', async () => {
    const bytes = await buildDocx(['First paragraph of the memo.', 'Second one, with <angle> & ampersand.']);
    const text = await extractText({ fileName: 'memo.docx', mimeType: DOCX_MIME, bytes }, limits);
    assert.equal(text, 'First paragraph of the memo.\n\nSecond one, with <angle> & ampersand.');
  });

  it('fails a corrupt or truncated PDF with EXTRACT_FAILED', async () => {
    const valid = buildPdf(['some text']);
    for (const bytes of [randomBytes(2048), Buffer.from('%PDF-1.7\n'), Buffer.alloc(0), valid.subarray(0, 40)]) {
      await assert.rejects(extractText({ fileName: 'bad.pdf', mimeType: PDF_MIME, bytes }, limits), rejectsWith('EXTRACT_FAILED'));
    }
  });

  it('fails random bytes or a zip without a document named .docx with EXTRACT_FAILED', async () => {
    await assert.rejects(
      extractText({ fileName: 'fake.docx', mimeType: DOCX_MIME, bytes: randomBytes(4096) }, limits),
      rejectsWith('EXTRACT_FAILED'),
    );
    const emptyZip = await new JSZip().file('hello.txt', 'hi').generateAsync({ type: 'nodebuffer' });
    await assert.rejects(
      extractText({ fileName: 'empty.docx', mimeType: 'application/octet-stream', bytes: emptyZip }, limits),
      rejectsWith('EXTRACT_FAILED'),
    );
  });

  it('refuses a file over maxBytes before parsing it', async () => {
    // Garbage that would fail as EXTRACT_FAILED if it were parsed.
    const bytes = randomBytes(2001);
    await assert.rejects(
      extractText({ fileName: 'big.pdf', mimeType: PDF_MIME, bytes }, { maxBytes: 2000, timeoutMs: 10_000 }),
      rejectsWith('TOO_LARGE'),
    );
    const exact = Buffer.alloc(2000, 'a');
    assert.equal((await extractText({ fileName: 'a.txt', mimeType: 'text/plain', bytes: exact }, { maxBytes: 2000, timeoutMs: 10_000 })).length, 2000);
  });

  it('refuses extracted text over maxTextChars instead of truncating it', async () => {
    const bytes = Buffer.from('x'.repeat(101));
    await assert.rejects(
      extractText({ fileName: 'a.txt', mimeType: 'text/plain', bytes }, { ...limits, maxTextChars: 100 }),
      rejectsWith('TOO_LARGE'),
    );
    assert.equal((await extractText({ fileName: 'a.txt', mimeType: 'text/plain', bytes }, { ...limits, maxTextChars: 101 })).length, 101);
  });

  it('refuses images, archives and unknown types with UNSUPPORTED_TYPE', async () => {
    const png = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
    const cases: Array<[string, string]> = [
      ['photo.png', 'image/png'],
      ['photo.png', 'application/octet-stream'],
      ['photo.png', ''],
      ['archive.zip', 'application/zip'],
      ['data.bin', 'application/octet-stream'],
      ['no-extension', ''],
      ['renamed.txt', 'image/png'],
      ['constructor', '__proto__'],
      ['x.toString', 'application/octet-stream'],
    ];
    for (const [fileName, mimeType] of cases) {
      await assert.rejects(extractText({ fileName, mimeType, bytes: png }, limits), rejectsWith('UNSUPPORTED_TYPE'), `${fileName} ${mimeType}`);
    }
  });

  it('chooses the type by mime type first, then by extension', async () => {
    const pdf = buildPdf(['typed by mime']);
    assert.match(await extractText({ fileName: 'misnamed.txt', mimeType: PDF_MIME, bytes: pdf }, limits), /typed by mime/);
    assert.match(await extractText({ fileName: 'Report.PDF', mimeType: 'application/octet-stream', bytes: pdf }, limits), /typed by mime/);
    const html = Buffer.from('<p>para</p><script>hidden()</script>');
    assert.equal(await extractText({ fileName: 'page.HTM', mimeType: '', bytes: html }, limits), 'para');
    assert.equal(await extractText({ fileName: 'page.bin', mimeType: 'TEXT/HTML', bytes: html }, limits), 'para');
  });

  it('times out a slow extraction with EXTRACT_FAILED, then extracts the next file normally', async () => {
    // pdf.js works through 400 pages in promise jobs that starve an in-process timer; only a killable
    // worker makes a 1 ms budget hold.
    const bytes = buildPdf(Array.from({ length: 400 }, (_, i) => `page ${i}`));
    const started = performance.now();
    await assert.rejects(extractText({ fileName: 'long.pdf', mimeType: PDF_MIME, bytes }, { ...limits, timeoutMs: 1 }), rejectsWith('EXTRACT_FAILED'));
    assert.ok(performance.now() - started < 5000, "the 1 ms budget cut the 400-page parse short");
    assert.match(await extractText({ fileName: 'long.pdf', mimeType: PDF_MIME, bytes }, limits), /page 399/);
  });

  it('runs extractions concurrently and gives each caller its own text', async () => {
    const inputs = Array.from({ length: 8 }, (_, i) => buildPdf([`document number ${i}`]));
    const texts = await Promise.all(inputs.map((bytes, i) => extractText({ fileName: `${i}.pdf`, mimeType: PDF_MIME, bytes }, limits)));
    texts.forEach((text, i) => assert.equal(text, `document number ${i}`));
  });

  it('normalizes: NFC, newlines, control characters, blank-line runs', async () => {
    const raw = '\ufeffCafe\u0301\r\nline\u0000two\u0007\ttab\r\r\n\n\n   \n\nnext   \fpage\u2028end\ud800';
    const bytes = Buffer.from(raw, 'utf8');
    const text = await extractText({ fileName: 'n.txt', mimeType: 'text/plain', bytes }, limits);
    assert.equal(text, 'Café\nlinetwo\ttab\n\nnext\npage\nend\ufffd');
    assert.equal(normalizeText('  \n\n  '), '');
  });
});
