/** Which entry names a code package may hold, and the path each one extracts to. */

/** Why an entry name is unsafe to extract (absolute, backslashes, `..`), or null when it is fine. */
export const pathProblem = (name: string): string | null => {
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) return `"${name}" is an absolute path`;
  if (name.includes('\\')) return `"${name}" contains a backslash`;
  if (name.split('/').includes('..')) return `"${name}" contains a ".." segment`;
  return null;
};

/** The path an entry extracts to, so that `a/b.js`, `./a/b.js` and `a//b.js` count as the same file. */
export const normalisedPath = (name: string): string =>
  name
    .split('/')
    .filter((segment) => segment !== '' && segment !== '.')
    .join('/');
