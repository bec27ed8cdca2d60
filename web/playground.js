// The playground: a multi-turn chat streamed from /v1/chat/completions (SSE read with fetch, so it
// carries the key), with the sampling settings, a Stop button (aborts the request: the server frees
// its KV at once) and, under each answer, its tokens, time to first token, speed and cost
// (usage.cost_usd from the final usage chunk).

const $ = (id) => document.getElementById(id);

function bubble(role, text) {
  const m = document.createElement('div');
  m.className = `msg ${role}`;
  const who = document.createElement('div');
  who.className = 'who';
  who.textContent = role;
  const body = document.createElement('div');
  body.className = 'text';
  body.textContent = text;
  const meta = document.createElement('div');
  meta.className = 'meta';
  m.append(who, body, meta);
  $('pg-log').append(m);
  $('pg-log').scrollTop = $('pg-log').scrollHeight;
  return { body, meta };
}

function numberOr(id, fallback) {
  const v = $(id).value.trim();
  return v === '' ? fallback : Number(v);
}

/** Parse an SSE byte stream into data payloads. */
async function* sseData(res) {
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      for (const line of block.split('\n')) if (line.startsWith('data: ')) yield line.slice(6);
    }
  }
}

export function startPlayground({ api, currentModel }) {
  const history = [];
  let ac = null;

  const setBusy = (busy) => {
    $('pg-send').disabled = busy;
    $('pg-stop').disabled = !busy;
  };

  $('pg-stop').addEventListener('click', () => ac?.abort());
  $('pg-clear').addEventListener('click', () => {
    history.length = 0;
    $('pg-log').replaceChildren();
  });

  $('pg-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const text = $('pg-input').value.trim();
    if (!text || ac) return;
    history.push({ role: 'user', content: text });
    bubble('user', text);
    $('pg-input').value = '';
    const out = bubble('assistant', '');
    const system = $('pg-system').value.trim();
    const seed = numberOr('pg-seed', null);
    const body = {
      model: currentModel() || undefined,
      messages: [...(system ? [{ role: 'system', content: system }] : []), ...history],
      stream: true,
      stream_options: { include_usage: true },
      temperature: numberOr('pg-temperature', 0.7),
      top_p: numberOr('pg-top-p', 1),
      max_tokens: numberOr('pg-max-tokens', 64),
      ...(seed === null ? {} : { seed }),
    };
    ac = new AbortController();
    setBusy(true);
    const t0 = performance.now();
    let tFirst = null;
    let answer = '';
    let usage = null;
    try {
      const res = await api('/v1/chat/completions', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: ac.signal,
      });
      for await (const data of sseData(res)) {
        if (data === '[DONE]') break;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new Error(chunk.error.message);
        if (chunk.usage) usage = chunk.usage;
        const delta = chunk.choices?.[0]?.delta;
        if (delta?.content) {
          if (tFirst === null) tFirst = performance.now();
          answer += delta.content;
          out.body.textContent = answer;
        }
      }
      history.push({ role: 'assistant', content: answer });
      const secs = (performance.now() - (tFirst ?? t0)) / 1000;
      if (usage) {
        const speed = usage.completion_tokens > 1 && secs > 0 ? ` · ${((usage.completion_tokens - 1) / secs).toFixed(1)} tok/s` : '';
        const ttft = tFirst === null ? '' : ` · first token ${(tFirst - t0).toFixed(0)} ms`;
        out.meta.textContent =
          `${usage.prompt_tokens} prompt + ${usage.completion_tokens} output tokens${ttft}${speed} · cost $` +
          `${usage.cost_usd.toFixed(8)}`;
        out.meta.dataset.costUsd = String(usage.cost_usd);
      }
    } catch (e) {
      out.meta.className = 'meta err';
      out.meta.textContent = e.name === 'AbortError' ? 'stopped' : String(e.message || e);
      if (answer) history.push({ role: 'assistant', content: answer });
    } finally {
      ac = null;
      setBusy(false);
    }
  });
}
