// The HTML report: one page holding the five SVG charts and a table row per record, every label
// escaped, and nothing that reaches the network (no URLs, scripts or external resources).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildReportHtml, seriesKey } from '../../../src/metrics/report/report-html.js';
import { paretoFrontier } from '../../../src/metrics/report/pareto.js';
import { barChart, escapeXml, fmtTick, lineChart } from '../../../src/metrics/report/svg-plot.js';
import { distribution } from '../../../src/metrics/bench/percentiles.js';
import { fakeRecord } from './fixtures.js';

test('report: seven inline SVG charts, a table row per record, no network references', () => {
  const records = [
    fakeRecord(),
    fakeRecord({ concurrency: 8, tokPerS: 900, usdPer1MTok: 0.31 }),
    fakeRecord({ engine: 'llama.cpp', engineVersion: '3.22.1', tokPerS: 200 }),
    fakeRecord({ engine: 'llama.cpp', concurrency: 8, tokPerS: 700 }),
    fakeRecord({ engine: '<b>evil</b> & co', kind: 'serve', requestRate: 2, errors: { total: 1, byClass: { http_503: 1 } } }),
  ];
  const html = buildReportHtml(records, { sources: ['bench/results/x.json'], title: 'T & <T>' });
  assert.ok(html.startsWith('<!doctype html>'));
  assert.equal((html.match(/<svg /g) ?? []).length, 7);
  assert.equal((html.match(/<\/svg>/g) ?? []).length, 7);
  for (const t of [
    'Throughput vs concurrency',
    'Time to first token',
    'Inter-token latency',
    'Cost per 1M output tokens',
    'Latency vs throughput: inter-token p50',
    'Latency vs throughput: time to first token p99',
    'Peers side by side',
  ])
    assert.ok(html.includes(t), t);
  assert.equal((html.match(/<tr>/g) ?? []).length, records.length + 1); // header + one per record
  assert.ok(html.includes('256 [250..260]'), 'median [min..max] in the table');
  assert.ok(html.includes('$1.0800'));
  assert.ok(html.includes('http_503:1'));
  assert.ok(!html.includes('<b>evil'), 'labels are escaped');
  assert.ok(html.includes('&lt;b&gt;evil&lt;/b&gt; &amp; co'));
  assert.ok(html.includes('<title>T &amp; &lt;T&gt;</title>'));
  assert.ok(!/https?:\/\//i.test(html), 'no URLs');
  assert.ok(!/<script|<link|<img|<iframe|@import|url\(/i.test(html), 'no scripts or external resources');
  // The throughput chart has one polyline per series (tokenmill, llama.cpp, serve) with its points.
  const throughput = html.slice(html.indexOf('<svg '), html.indexOf('</svg>'));
  assert.equal((throughput.match(/class="series"/g) ?? []).length, 3);
  assert.ok(throughput.includes(escapeXml(seriesKey(records[0]!))));
});

test('charts: empty data, log axes drop non-positive values, bars for missing series', () => {
  assert.ok(lineChart([], { title: 'x', xLabel: 'a', yLabel: 'b' }).includes('no data'));
  const svg = lineChart(
    [
      {
        name: 's',
        points: [
          { x: 1, y: 0 },
          { x: 2, y: 10 },
          { x: 4, y: 100 },
        ],
      },
    ],
    { title: 't', xLabel: 'a', yLabel: 'b', logY: true },
  );
  assert.equal((svg.match(/<circle/g) ?? []).length, 2);
  const bars = barChart(
    [
      { label: 'g1', values: { a: 1, b: 2 } },
      { label: 'g2', values: { a: 3 } },
    ],
    ['a', 'b'],
    { title: 't', xLabel: 'x', yLabel: 'y' },
  );
  assert.equal((bars.match(/class="bar"/g) ?? []).length, 3);
  assert.deepEqual([fmtTick(0), fmtTick(1500), fmtTick(2.5e6), fmtTick(0.5), fmtTick(0.0001)], ['0', '1.5k', '2.5M', '0.5', '1.0e-4']);
});

test('markdown comparison: tokenmill next to each peer with the ratio and $/1M', async () => {
  const { comparisonMarkdown } = await import('../../../src/metrics/report/markdown-table.js');
  const md = comparisonMarkdown([
    fakeRecord({ tokPerS: 300, usdPer1MTok: 0.2 }),
    fakeRecord({ engine: 'llama.cpp', tokPerS: 200, usdPer1MTok: 0.3, tokPerSSpread: null }),
    fakeRecord({ concurrency: 8, tokPerS: 900 }),
  ]);
  const lines = md.split('\n').filter((l) => l.startsWith('| '));
  assert.equal(lines.length, 3); // header + two tokenmill rows
  assert.match(lines[0]!, /ratio vs llama\.cpp/);
  assert.match(lines[1]!, /\| 300 \[250–260\] \|.*\| \$0\.200 \| 200 \| \$0\.300 \| 1\.50× \|$/);
  assert.match(lines[2]!, /\| – \| – \| – \|$/, 'no peer at concurrency 8');
});

test('Pareto frontier: the points no other point beats on both throughput and latency', () => {
  const p = (throughput: number, latency: number) => ({ throughput, latency });
  // c=1..32 of one engine, plus a peer that is faster at low load and dominated at high load.
  const pts = [p(50, 10), p(300, 12), p(900, 20), p(1200, 45), p(1100, 60), p(80, 9), p(700, 25), p(Number.NaN, 1)];
  assert.deepEqual(paretoFrontier(pts), [p(80, 9), p(300, 12), p(900, 20), p(1200, 45)]);
  assert.deepEqual(paretoFrontier([p(10, 5), p(10, 5)]), [p(10, 5)]); // duplicates collapse
  assert.deepEqual(paretoFrontier([]), []);
});

test('latency-vs-throughput chart: curves walked by concurrency with c=N labels, and the frontier', () => {
  const records = [
    fakeRecord({ concurrency: 1, tokPerS: 100, itlMs: distribution([5]) }),
    fakeRecord({ concurrency: 8, tokPerS: 600, itlMs: distribution([8]) }),
    fakeRecord({ concurrency: 32, tokPerS: 500, itlMs: distribution([30]) }), // past saturation: slower and later
    fakeRecord({ engine: 'llama.cpp', concurrency: 1, tokPerS: 120, itlMs: distribution([4]) }),
  ];
  const html = buildReportHtml(records);
  const start = html.indexOf('Latency vs throughput: inter-token p50');
  const svg = html.slice(html.lastIndexOf('<svg ', start), html.indexOf('</svg>', start));
  for (const c of ['c=1', 'c=8', 'c=32']) assert.ok(svg.includes(`>${c}</text>`), c);
  assert.ok(svg.includes('Pareto frontier (every record)'));
  // 2 engines + the frontier; the frontier is llama.cpp c=1 then tokenmill c=8 (c=32 is dominated).
  assert.equal((svg.match(/class="series"/g) ?? []).length, 3);
  assert.ok(svg.includes('stroke="#111"'));
});
