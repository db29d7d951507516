/**
 * A rejected `parameters`, `predicate` or `funcname`: `position` is the 0-based column (offset)
 * in that field's text; `field` is the path below failKernRequest when known
 * (`callchain[0].predicate`), empty otherwise.
 */
export class PredicateError extends Error {
  constructor(
    message: string,
    readonly position: number,
    readonly field: string = '',
  ) {
    super(message);
    this.name = 'PredicateError';
  }

  /** The message with its column, as validation reports it: `expected ')' (column 12)`. */
  describe(): string {
    return `${this.message} (column ${this.position})`;
  }

  withField(field: string): PredicateError {
    return new PredicateError(this.message, this.position, field);
  }
}
