// The call-chain parser's public face: parse `parameters` and `predicate` text into the AST of ast.ts.
export { PredicateError } from './errors.js';
export { parseParameters, MAX_PARAMETERS } from './parameters.js';
export { parsePredicate, MAX_DEPTH } from './expression.js';
export { parseFrame, parseFailKernRequest, funcnameProblem, MAX_FUNCNAME_LENGTH, type FailKernRequestInput } from './frame.js';
export { MAX_SOURCE_LENGTH, MAX_STRING_LENGTH } from './lexer.js';
export type * from './ast.js';
