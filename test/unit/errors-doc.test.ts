// docs/errors.md must match the error registry (src/util/errors.ts). When this fails after adding a
// code, run `node --import tsx scripts/gen-errors-doc.ts` and commit docs/errors.md.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ERRORS_DOC_PATH, renderErrorsDoc } from '../../scripts/gen-errors-doc.js';
import { ERROR_CODES } from '../../src/util/errors.js';

test('docs/errors.md is generated from the current registry', () => {
  const actual = readFileSync(ERRORS_DOC_PATH, 'utf8');
  assert.ok(
    actual === renderErrorsDoc(),
    'docs/errors.md is out of date with src/util/errors.ts: run `node --import tsx scripts/gen-errors-doc.ts`',
  );
});

test('every code has a row with its status, type, fatal flag and a doc line', () => {
  const doc = renderErrorsDoc();
  for (const [code, spec] of Object.entries(ERROR_CODES)) {
    assert.ok(spec.doc.trim().length > 0, `${code} needs a doc line`);
    const row = doc.split('\n').find((l) => l.startsWith(`| \`${code}\` |`));
    assert.ok(row, `${code} has no row`);
    assert.ok(row.includes(`| ${spec.httpStatus} | ${spec.type} |`), `${code}: row ${row}`);
    const fatal = 'fatal' in spec && spec.fatal === true ? 'yes' : 'no';
    assert.ok(row.includes(`| ${fatal} |`), `${code}: fatal flag`);
  }
});
