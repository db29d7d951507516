// C keywords and the type words a kernel parameter list uses; shared by the parameter and
// predicate parsers so a parameter can never be named like something the C compiler would read differently.

export const C_KEYWORDS: ReadonlySet<string> = new Set([
  'auto', 'break', 'case', 'char', 'const', 'continue', 'default', 'do', 'double', 'else', 'enum',
  'extern', 'float', 'for', 'goto', 'if', 'inline', 'int', 'long', 'register', 'restrict', 'return',
  'short', 'signed', 'sizeof', 'static', 'struct', 'switch', 'typedef', 'union', 'unsigned', 'void',
  'volatile', 'while', '_Alignas', '_Alignof', '_Atomic', '_Bool', '_Complex', '_Generic',
  '_Imaginary', '_Noreturn', '_Static_assert', '_Thread_local', 'asm', '__asm__', 'typeof',
  '__typeof__', '__attribute__', '__builtin_expect', '__extension__', '__restrict', '__restrict__',
  '__volatile__', '__const', '__inline',
]);

/** Words that start a C type: used to recognise (and reject) casts in predicates. */
export const TYPE_WORDS: ReadonlySet<string> = new Set([
  'char', 'const', 'double', 'enum', 'float', 'int', 'long', 'short', 'signed', 'struct', 'union',
  'unsigned', 'void', 'volatile', '_Bool', 'bool', 'u8', 'u16', 'u32', 'u64', 's8', 's16', 's32',
  's64', '__u8', '__u16', '__u32', '__u64', '__s8', '__s16', '__s32', '__s64', 'size_t', 'ssize_t',
  'loff_t', 'gfp_t', 'dev_t', 'umode_t', 'pid_t', 'uid_t', 'gid_t', 'sector_t', 'uint8_t',
  'uint16_t', 'uint32_t', 'uint64_t', 'int8_t', 'int16_t', 'int32_t', 'int64_t', 'uintptr_t',
]);

/** Type qualifiers kept in CType.qualifiers. */
export const QUALIFIERS: ReadonlySet<string> = new Set(['const', 'volatile', 'restrict', '__restrict']);

/**
 * Kernel source annotations (sparse address spaces, RCU markers) that appear in copied signatures.
 * They expand to nothing for the compiler, so they are accepted and dropped.
 */
export const KERNEL_ANNOTATIONS: ReadonlySet<string> = new Set([
  '__user', '__kernel', '__iomem', '__rcu', '__percpu', '__force', '__nocast', '__bitwise', '__must_check',
]);

/** Words that combine into the builtin integer types: `unsigned long long int`. */
export const BUILTIN_TYPE_WORDS: ReadonlySet<string> = new Set(['signed', 'unsigned', 'char', 'short', 'int', 'long', '_Bool', 'void']);

export const STRING_HELPERS: ReadonlySet<string> = new Set(['STRCMP', 'STRNCMP']);

const C_IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
export function isCIdentifier(text: string): boolean {
  return C_IDENTIFIER.test(text);
}

/**
 * Names the generated unit defines as macros (libbpf's headers, our runtime) or that C reserves:
 * a user identifier spelled like one would be rewritten by the preprocessor before clang sees it.
 */
// Lowercase function-like macros (bpf_core_read, bpf_printk) only expand before '(', which never follows a name here.
const MACRO_PREFIXES = ['KC_', 'kc_', 'PT_REGS_', 'BPF_', '__', 'SEC'] as const;
const MACRO_NAMES: ReadonlySet<string> = new Set([
  '_Pragma', 'asm', 'NULL', 'true', 'false', 'bool', 'offsetof', 'container_of', 'likely', 'unlikely', 'barrier',
  'READ_ONCE', 'WRITE_ONCE', 'ARRAY_SIZE', 'min', 'max', 'memcpy', 'memset', 'memcmp', 'SEC',
]);

/** Why `name` may not appear in a parameter type or member access, or null. */
export function reservedIdentifierProblem(name: string): string | null {
  if (MACRO_NAMES.has(name)) return `'${name}' is a macro or reserved word in the generated program and cannot be used as a name here`;
  const prefix = MACRO_PREFIXES.find((p) => name.startsWith(p));
  if (prefix) return `'${name}' starts with '${prefix}', which the generated program reserves for its own macros and helpers`;
  if (/^_[A-Z]/.test(name)) return `'${name}' is reserved by C (an underscore and a capital letter)`;
  return null;
}
