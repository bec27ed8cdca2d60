// The dashboard in a real browser: Debian's chromium driven by playwright-core (never a browser
// download), against the real engine on the tiny model with API keys on. The page loads without a
// key, the key is entered, load is sent, the charts draw non-empty series, the playground streams an
// answer and shows its cost; no request leaves 127.0.0.1 and the console stays clean (CSP included).
// With a C compiler the server reads a stand-in libnvidia-ml (test/metrics/fake-nvml.ts) through the
// real native NVML path, so the GPU charts draw too; without one the page must say there is no GPU.
// Screenshots go to test-artifacts/dashboard/ (gitignored). Without chromium the test skips and
// says why, except under CI=true, where that is a failure.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { servingMachineInfo } from '../../src/cli/doctor.js';
import { GpuMonitor } from '../../src/metrics/gpu-monitor.js';
import { ApiKeyStore } from '../../src/server/auth.js';
import { disposeTinyModel } from '../engine/tiny-model.js';
import { buildFakeNvml } from '../metrics/fake-nvml.js';
import { startTinyServer } from '../metrics/tiny-server.js';

after(disposeTinyModel);

const CHROMIUM = process.env.TOKENMILL_CHROMIUM ?? '/usr/bin/chromium';
const KEY = 'sk-dashboard-test-9876';
const ARTIFACTS = resolve('test-artifacts', 'dashboard');
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const missing = existsSync(CHROMIUM) ? null : `chromium not found at ${CHROMIUM} (apt-get install -y chromium; .ci/run installs it)`;
if (missing !== null && process.env.CI === 'true') {
  describe('dashboard in chromium', () => {
    it('needs chromium under CI', () => assert.fail(missing));
  });
} else {
  describe('dashboard in chromium', { skip: missing ?? false }, () => {
    it('loads without a key, connects with one, charts live load, streams a priced answer', { timeout: 90_000 }, async () => {
      const { chromium } = await import('playwright-core');
      mkdirSync(ARTIFACTS, { recursive: true });
      const fake = buildFakeNvml();
      const t = await startTinyServer({
        usdPerHour: 2.5,
        gpu: new GpuMonitor(typeof fake === 'string' ? {} : { library: fake.library }),
        server: {
          apiKeys: new ApiKeyStore([KEY]),
          webDir: resolve('web'),
          seriesIntervalMs: 200,
          info: servingMachineInfo('cpu', 'cpu requested', '(tiny test model)'),
        },
      });
      const { url } = await t.server.listen({ port: 0 });
      const profile = mkdtempSync(join(tmpdir(), 'tm-chromium-'));
      // A fresh profile: playwright passes it as --user-data-dir.
      const ctx = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        args: ARGS,
        viewport: { width: 1400, height: 1000 },
      });
      const problems: string[] = [];
      const outside: string[] = [];
      try {
        const page = ctx.pages()[0] ?? (await ctx.newPage());
        page.on('console', (m) => {
          if (m.type() === 'error' && !/401/.test(m.text())) problems.push(m.text());
        });
        page.on('pageerror', (e) => problems.push(String(e)));
        await page.route('**/*', (route) => {
          const u = new URL(route.request().url());
          if (u.hostname !== '127.0.0.1') {
            outside.push(u.href);
            return route.abort();
          }
          return route.continue();
        });

        // No key: the page itself loads; its API calls are refused until a key is entered.
        const res = await page.goto(url + '/');
        assert.equal(res?.status(), 200);
        await page.locator('#conn', { hasText: 'key needed' }).waitFor({ timeout: 15_000 });
        assert.match(await page.locator('#status').innerText(), /API key/);
        await page.screenshot({ path: join(ARTIFACTS, '1-no-key.png') });

        await page.fill('#key', KEY);
        await page.click('#connect');
        await page.locator('#conn', { hasText: 'connected' }).waitFor({ timeout: 15_000 });
        await page.locator('#machine dd', { hasText: 'tiny' }).first().waitFor();

        // Load: 6 concurrent streams with the key, two rounds, while the page polls.
        const load = async (): Promise<void> => {
          for (let round = 0; round < 2; round++) {
            await Promise.all(
              Array.from({ length: 6 }, (_, i) =>
                fetch(`${url}/v1/completions`, {
                  method: 'POST',
                  headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
                  body: JSON.stringify({
                    model: 'tiny',
                    prompt: `Load ${round} ${i} once upon a time`,
                    max_tokens: 60 + 10 * i,
                    ignore_eos: true,
                    stream: true,
                  }),
                }).then((r) => r.text()),
              ),
            );
          }
        };
        await load();
        // Page-side checks run as strings: this file is typed without the DOM library.
        await page.waitForFunction(
          `(() => {
          const d = window.tokenmillDashboard;
          const c = d.grid.pointCounts();
          const tok = d.state.store.out_tok_s || [];
          return c.tok > 2 && c.ttft > 0 && c.itl > 0 && c.req > 2 && c.cost > 0 && c.util > 0 && tok.some((v) => v !== null && v > 0);
        })()`,
          undefined,
          { timeout: 20_000 },
        );
        const counts = (await page.evaluate('window.tokenmillDashboard.grid.pointCounts()')) as Record<string, number>;
        for (const id of ['tok', 'ttft', 'itl', 'req', 'kv', 'cost', 'util']) assert.ok(counts[id]! > 0, `chart ${id} drew no points`);
        assert.equal((await page.locator('.chart canvas').count()) >= 7, true);
        await page.locator('#keys td', { hasText: 'k1-9876' }).waitFor();
        if (typeof fake === 'string') {
          assert.match(await page.locator('#gpu-note').innerText(), /No GPU figures/);
        } else {
          await page.waitForFunction(
            `(() => { const c = window.tokenmillDashboard.grid.pointCounts(); return c.gmem > 0 && c.gpow > 0 && c.gtemp > 0; })()`,
            undefined,
            { timeout: 10_000 },
          );
          assert.equal(await page.locator('#gpu-note').innerText(), '');
        }

        // Playground: a streamed answer with its cost.
        await page.fill('#pg-input', 'Tell me a story');
        await page.fill('#pg-max-tokens', '24');
        await page.click('#pg-send');
        const meta = page.locator('.msg.assistant .meta[data-cost-usd]');
        await meta.waitFor({ timeout: 20_000 });
        const cost = Number(await meta.getAttribute('data-cost-usd'));
        assert.ok(cost > 0, `answer cost ${cost}`);
        assert.match(await meta.innerText(), /output tokens.*cost \$/);
        assert.ok((await page.locator('.msg.assistant .text').innerText()).length > 0);
        // The answer reaches the per-key table on a later poll: 12 load requests + this one.
        await page.locator('#keys td.n', { hasText: /^13$/ }).waitFor({ timeout: 10_000 });
        await page.evaluate('window.scrollTo(0, 0)');
        await page.screenshot({ path: join(ARTIFACTS, '2-dashboard.png'), fullPage: true });
        assert.deepEqual(outside, [], 'requests left 127.0.0.1');
        assert.deepEqual(problems, [], 'browser console errors');
      } finally {
        await ctx.close();
        await t.close();
        if (typeof fake !== 'string') fake.dispose();
        rmSync(profile, { recursive: true, force: true });
      }
    });
  });
}
