// EngineGrammar: the engine's side of constrained decoding: whether it can take a constraint (it
// needs the model's tokenizer), compiling it ahead of addRequest() (prepare), and a fresh
// SequenceGrammar per choice from the compiled grammar. One per Engine; the compiled-grammar cache
// it uses is shared by every engine over the same tokenizer (grammar-compiler.ts).
import { TokenmillError } from '../../util/errors.js';
import type { Constraint } from '../constraint.js';
import { checkConstraint } from './constraint-check.js';
import { grammarCompilerFor, type CompiledConstraint, type GrammarCompilerCache } from './grammar-compiler.js';
import type { GrammarVocabSource } from './grammar-vocab.js';
import { SequenceGrammar } from './sequence-grammar.js';

export class EngineGrammar {
  /** Loaded on the first prepare(). */
  private cache: GrammarCompilerCache | null = null;

  constructor(
    private readonly vocab: GrammarVocabSource | null,
    private readonly rowSize: number,
    private readonly stopTokenIds: readonly number[],
  ) {}

  /** The synchronous 400s: constraint shape and schema support, and a tokenizer to compile against. */
  check(c: Constraint): void {
    checkConstraint(c);
    this.requireVocab();
  }

  /** Load the grammar engine and vocabulary once, then compile c (or find it cached). */
  async prepare(c: Constraint): Promise<void> {
    this.check(c);
    this.cache ??= await grammarCompilerFor(this.requireVocab(), this.rowSize, this.stopTokenIds);
    await this.cache.compile(c);
  }

  /** The compiled grammar of c when prepare() has made it (null otherwise). */
  compiled(c: Constraint): CompiledConstraint | null {
    return this.cache?.lookup(c) ?? null;
  }

  /** A matcher state for one choice. */
  sequenceGrammar(compiled: CompiledConstraint): SequenceGrammar {
    return new SequenceGrammar(this.cache!, compiled, this.stopTokenIds);
  }

  private requireVocab(): GrammarVocabSource {
    if (this.vocab === null) {
      throw new TokenmillError(
        'unsupported_feature',
        "constrained decoding (response_format, tool grammars) needs the model's tokenizer, and this engine has none",
        { param: 'response_format' },
      );
    }
    return this.vocab;
  }
}
