import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isAstryError } from '../core/errors.ts';
import { BudgetMeter, MIN_OUTPUT_TOKENS } from '../models/budget.ts';
import { filterCitations } from '../models/citations.ts';
import { costUsd, priceOf } from '../models/prices.ts';

const MANIFEST = new Set(['doc-001.txt', 'doc-002.txt']);

describe('citations', () => {
  it('keeps manifest names and drops every other file-like citation from the text', () => {
    const out = filterCitations(
      'Hotels: 200 EUR [doc-001.txt]. Salaries [secret-salaries.xlsx] and [../../etc/passwd]. Both [doc-002.txt, doc-404.txt; doc-001.txt].',
      MANIFEST,
    );
    assert.deepEqual(out.citations, [{ name: 'doc-001.txt' }, { name: 'doc-002.txt' }]);
    assert.equal(out.text, 'Hotels: 200 EUR [doc-001.txt]. Salaries and. Both [doc-002.txt, doc-001.txt].');
  });

  it('leaves brackets that are not citations alone', () => {
    const out = filterCitations('See note [1] and [sic].', MANIFEST);
    assert.equal(out.text, 'See note [1] and [sic].');
    assert.deepEqual(out.citations, []);
  });
});

describe('prices', () => {
  it('knows the listed models and prices a call exactly', () => {
    assert.deepEqual(priceOf('openai/gpt-4o-mini'), { inputPerMTok: 0.15, outputPerMTok: 0.6 });
    assert.equal(priceOf('llama3.1').inputPerMTok, 0);
    assert.equal(costUsd(priceOf('gpt-4.1-mini'), 1_000_000, 500_000), 1.2);
  });

  it('refuses an unknown model unless a price is configured (fail closed)', () => {
    assert.throws(() => priceOf('mystery-model'), (err) => isAstryError(err, 'CONFIG_INVALID'));
    assert.throws(() => priceOf('toString'), (err) => isAstryError(err, 'CONFIG_INVALID'));
    assert.deepEqual(priceOf('mystery-model', { inputPerMTok: 1, outputPerMTok: 2 }), { inputPerMTok: 1, outputPerMTok: 2 });
    assert.throws(() => priceOf('m', { inputPerMTok: -1, outputPerMTok: 0 }), (err) => isAstryError(err, 'CONFIG_INVALID'));
  });
});

describe('budget meter', () => {
  it('never plans a call whose worst case exceeds the USD or token cap', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0.01, max: 50, noNaN: true }),
        fc.double({ min: 0.01, max: 80, noNaN: true }),
        fc.double({ min: 0, max: 2, noNaN: true }),
        fc.integer({ min: 0, max: 200_000 }),
        fc.array(fc.tuple(fc.integer({ min: 1, max: 20_000 }), fc.integer({ min: 0, max: 4_000 })), { maxLength: 6 }),
        (inPrice, outPrice, maxUsd, maxTokens, calls) => {
          const price = { inputPerMTok: inPrice, outputPerMTok: outPrice };
          const meter = new BudgetMeter({ maxUsd, maxTokens, maxToolCalls: 10, maxWallMs: 1000 }, price);
          for (const [prompt, wanted] of calls) {
            const plan = meter.planCall(prompt, 4096);
            if (!plan.ok) return;
            assert.ok(plan.maxOutputTokens >= MIN_OUTPUT_TOKENS && plan.maxOutputTokens <= 4096);
            // The model spends the whole prompt bound and as much output as it was allowed.
            meter.recordCall(prompt, Math.min(wanted, plan.maxOutputTokens));
            const { usd, inputTokens, outputTokens } = meter.usage;
            assert.ok(usd <= maxUsd, `spent ${usd} > cap ${maxUsd}`);
            assert.ok(inputTokens + outputTokens <= maxTokens);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
