// How a model directory says its embeddings are pooled: a sentence-transformers layout
// (modules.json naming a Pooling module, whose config.json sets pooling_mode_lasttoken or
// pooling_mode_mean_tokens), as Qwen3-Embedding and gte-Qwen2 ship. Reads files; decides nothing else.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export type PoolingType = 'last' | 'mean';

interface StModule {
  readonly path?: unknown;
  readonly type?: unknown;
}

/** The pooling a model directory declares, or null when it declares none we can honour. */
export function declaredPooling(dir: string): PoolingType | null {
  const modulesFile = join(dir, 'modules.json');
  let cfgFile = join(dir, '1_Pooling', 'config.json');
  try {
    if (existsSync(modulesFile)) {
      const modules = JSON.parse(readFileSync(modulesFile, 'utf8')) as StModule[];
      const pool = Array.isArray(modules) ? modules.find((m) => typeof m.type === 'string' && m.type.endsWith('.Pooling')) : undefined;
      if (pool !== undefined && typeof pool.path === 'string') cfgFile = join(dir, pool.path, 'config.json');
    }
    if (!existsSync(cfgFile)) return null;
    const cfg = JSON.parse(readFileSync(cfgFile, 'utf8')) as Record<string, unknown>;
    if (cfg.pooling_mode_lasttoken === true) return 'last';
    if (cfg.pooling_mode_mean_tokens === true) return 'mean';
    return null;
  } catch {
    return null; // a malformed sentence-transformers file declares nothing; the caller's default applies
  }
}
