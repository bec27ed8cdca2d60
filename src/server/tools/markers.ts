// Marker detection for the output parsers (<tool_call>, <think>, [TOOL_CALLS], <|python_tag|>):
// finds the earliest marker in buffered text and says how much trailing text must be held back
// because it could still become a marker. Where a marker is one token of the vocabulary, a text
// occurrence counts only when that token id was actually generated (a model spelling "<tool_call>"
// out of several ordinary tokens writes text, not a call). Never sees requests or HTTP.

export interface MarkerSpec {
  readonly text: string;
  /** The marker's single token id, when the vocabulary has one (then matching is gated on it). */
  readonly tokenId: number | null;
}

export interface MarkerHit {
  /** Index of the marker in the searched text. */
  readonly at: number;
  readonly marker: string;
}

/** Token id of text when it is exactly one token of the vocabulary. */
export type SingleTokenLookup = (text: string) => number | null;

export class MarkerSet {
  private readonly specs: readonly MarkerSpec[];
  /** Marker token ids generated whose text has not been matched yet, per marker text. */
  private readonly pending = new Map<string, number>();
  private readonly byId = new Map<number, string>();

  constructor(markers: readonly string[], lookup: SingleTokenLookup | null) {
    this.specs = markers.map((text) => ({ text, tokenId: lookup?.(text) ?? null }));
    for (const s of this.specs) {
      if (s.tokenId !== null) this.byId.set(s.tokenId, s.text);
      this.pending.set(s.text, 0);
    }
  }

  /** Count the marker tokens among newly generated ids (call before pushing their text). */
  noteIds(ids: readonly number[]): void {
    if (this.byId.size === 0) return;
    for (const id of ids) {
      const m = this.byId.get(id);
      if (m !== undefined) this.pending.set(m, this.pending.get(m)! + 1);
    }
  }

  private gated(m: MarkerSpec): boolean {
    return m.tokenId !== null;
  }

  private usable(m: MarkerSpec): boolean {
    return !this.gated(m) || this.pending.get(m.text)! > 0;
  }

  /** Earliest usable occurrence of one of `only` (default: all markers) in text at or after from. */
  find(text: string, from = 0, only?: readonly string[]): MarkerHit | null {
    let best: MarkerHit | null = null;
    for (const m of this.specs) {
      if (only && !only.includes(m.text)) continue;
      if (!this.usable(m)) continue;
      const at = text.indexOf(m.text, from);
      if (at >= 0 && (best === null || at < best.at)) best = { at, marker: m.text };
    }
    return best;
  }

  /** Mark a found marker as consumed (its token's count goes down). */
  consume(marker: string): void {
    const m = this.specs.find((s) => s.text === marker);
    if (m && this.gated(m)) this.pending.set(marker, Math.max(0, this.pending.get(marker)! - 1));
  }

  /**
   * How many trailing characters of text could begin one of `only` (default all) and must wait.
   * A gated marker whose token has not been generated cannot be starting, so it holds nothing.
   */
  holdLength(text: string, only?: readonly string[]): number {
    let hold = 0;
    for (const m of this.specs) {
      if (only && !only.includes(m.text)) continue;
      if (!this.usable(m)) continue;
      const max = Math.min(m.text.length - 1, text.length);
      for (let k = max; k > hold; k--) {
        if (m.text.startsWith(text.slice(text.length - k))) {
          hold = k;
          break;
        }
      }
    }
    return hold;
  }
}
