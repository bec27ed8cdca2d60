// The chat-template renderer under faults: a template that allocates without bound, and the renderer
// process killed mid-render. Each ends that render with a typed error; this process survives and the
// next render works (the renderer restarts).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { ChatTemplateRenderer } from '../../src/model/chat-template.js';
import { TokenmillError } from '../../src/util/errors.js';

const renderer = new ChatTemplateRenderer(20_000);
after(() => renderer.close());
const isCode = (code: string) => (e: unknown) => e instanceof TokenmillError && e.code === code;
const alive = async (): Promise<void> => {
  assert.equal(await renderer.render('{{ messages[0].content }}', { messages: [{ role: 'user', content: 'still alive' }] }), 'still alive');
};

test('a template that allocates without bound ends that render (chat_template_error), not the server', async () => {
  const rssBefore = process.memoryUsage().rss;
  // range(1e9) pushes into one array until the renderer's heap cap; under a worker thread's
  // resourceLimits this aborted the whole process.
  await assert.rejects(renderer.render('{% for i in range(1000000000) %}x{% endfor %}', { messages: [] }), isCode('chat_template_error'));
  await assert.rejects(
    renderer.render('{% set ns = namespace(l=[1]) %}{% for i in range(40) %}{% set ns.l = ns.l + ns.l %}{% endfor %}{{ ns.l | length }}', {
      messages: [],
    }),
    (e: unknown) => isCode('chat_template_error')(e) || isCode('chat_template_timeout')(e),
  );
  // The memory was the renderer's, not ours (generous: this process may grow for other reasons).
  assert.ok(
    process.memoryUsage().rss - rssBefore < 256 * 2 ** 20,
    `RSS grew by ${((process.memoryUsage().rss - rssBefore) / 2 ** 20).toFixed(0)} MiB`,
  );
  await alive();
});

test('the renderer killed mid-render: that render fails typed, the next one works', async () => {
  await alive(); // a renderer process is up
  const pid = renderer.pid;
  assert.ok(pid !== null);
  // Loops for hours in constant memory: only the kill can end it.
  const pending = renderer.render('{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}done', { messages: [] });
  process.kill(pid, 'SIGKILL');
  await assert.rejects(pending, (e: unknown) => isCode('chat_template_error')(e) && /exited \(SIGKILL/.test((e as Error).message));
  await alive();
  assert.notEqual(renderer.pid, pid);
});
