// docs/cli.md must document every command and every flag its `--help` shows, and name no flag a
// command does not have. Each command has a section headed by its path (`## serve`,
// `### bench engine`); the section's own text (up to the next heading of any level) must name exactly
// that command's flags. `--help`, `--version` and `--debug` are the global options: documented once
// under `## Global options` and allowed (not required) in any section. When this fails after adding
// a flag, document it in the command's section of docs/cli.md.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { buildProgram } from '../../src/cli/program.js';

const CLI_DOC = join(import.meta.dirname, '..', '..', 'docs', 'cli.md');
const GLOBAL = new Set(['--help', '--version', '--debug']);
const FLAG_RE = /(?<![\w-])--[a-z][a-z0-9-]*/g;

interface Section {
  readonly heading: string;
  readonly text: string;
}

/** Sections of a Markdown file: heading text (backticks stripped) -> its own text. Ignores code-fence lines that look like headings. */
export function sectionsOf(md: string): Section[] {
  const out: Section[] = [];
  let cur: { heading: string; lines: string[] } | null = null;
  let inFence = false;
  for (const line of md.split('\n')) {
    if (/^\s*```/.test(line)) inFence = !inFence;
    const h = inFence ? null : /^#{1,6}\s+(.*)$/.exec(line);
    if (h) {
      if (cur) out.push({ heading: cur.heading, text: cur.lines.join('\n') });
      cur = { heading: h[1]!.replace(/`/g, '').trim(), lines: [] };
    } else if (cur) cur.lines.push(line);
  }
  if (cur) out.push({ heading: cur.heading, text: cur.lines.join('\n') });
  return out;
}

function flagsIn(text: string): Set<string> {
  return new Set(text.match(FLAG_RE) ?? []);
}

/** Every command (root first) with its path and the long flags its --help lists. */
function commandsOf(root: Command): { path: string; flags: Set<string>; help: string }[] {
  const out: { path: string; flags: Set<string>; help: string }[] = [];
  const walk = (c: Command, path: string[]): void => {
    const help = c.createHelp();
    const flags = new Set(
      help
        .visibleOptions(c)
        .map((o) => o.long)
        .filter((l): l is string => l !== undefined),
    );
    out.push({ path: path.join(' '), flags, help: c.helpInformation() });
    for (const sub of c.commands) walk(sub, [...path, sub.name()]);
  };
  walk(root, []);
  return out;
}

const program = await buildProgram(['node', 'tokenmill']);
const commands = commandsOf(program);
const sections = sectionsOf(readFileSync(CLI_DOC, 'utf8'));
const sectionFor = (heading: string): Section | undefined => sections.find((s) => s.heading === heading);

test('the command tree is what this test expects to walk (all subcommands registered)', () => {
  const paths = commands.map((c) => c.path);
  for (const p of ['generate', 'serve', 'bench engine', 'bench serve', 'bench report', 'convert to-gguf', 'doctor', 'plan']) {
    assert.ok(paths.includes(p), `missing command ${p} (have ${paths.join(', ')})`);
  }
  for (const c of commands) for (const f of c.flags) assert.ok(c.help.includes(f), `${c.path || 'tokenmill'} --help does not print ${f}`);
});

test('docs/cli.md documents the global options', () => {
  const s = sectionFor('Global options');
  assert.ok(s, 'docs/cli.md needs a "## Global options" section');
  const root = commands.find((c) => c.path === '')!;
  const doc = flagsIn(s.text);
  for (const f of root.flags) assert.ok(doc.has(f), `Global options: ${f} is not documented`);
  for (const f of doc) assert.ok(root.flags.has(f), `Global options: ${f} is not a global option`);
});

for (const c of commands.filter((x) => x.path !== '')) {
  test(`docs/cli.md: \`${c.path}\` and its --help name the same flags`, () => {
    const s = sectionFor(c.path);
    assert.ok(s, `docs/cli.md has no section headed \`${c.path}\``);
    const doc = flagsIn(s.text);
    const missing = [...c.flags].filter((f) => !GLOBAL.has(f) && !doc.has(f));
    const extra = [...doc].filter((f) => !GLOBAL.has(f) && !c.flags.has(f));
    assert.deepEqual(missing, [], `${c.path}: flags in --help but not documented in its section`);
    assert.deepEqual(extra, [], `${c.path}: flags in its docs/cli.md section that the command does not have`);
  });
}

test('every flag docs/cli.md names anywhere belongs to some command', () => {
  const all = new Set(commands.flatMap((c) => [...c.flags]));
  const unknown = [...flagsIn(readFileSync(CLI_DOC, 'utf8'))].filter((f) => !all.has(f));
  assert.deepEqual(unknown, [], 'flags in docs/cli.md that no command has');
});

test('sectionsOf splits on headings outside code fences', () => {
  const s = sectionsOf('# a\nx --one\n```sh\n# not a heading --two\n```\n## `b c`\n--three\n');
  assert.deepEqual(
    s.map((x) => x.heading),
    ['a', 'b c'],
  );
  assert.deepEqual([...flagsIn(s[0]!.text)].sort(), ['--one', '--two']);
  assert.deepEqual([...flagsIn(s[1]!.text)], ['--three']);
});
