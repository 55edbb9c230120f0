/**
 * Module resolution over a code package's files, after Node's algorithm. `createResolver` is self-contained
 * (no imports, no outer variables) because its source text also runs inside the isolate, for `require`.
 */

export type ModuleFormat = 'commonjs' | 'module' | 'json';
export type ResolveMode = 'require' | 'import';

export interface ModuleSources {
  has(path: string): boolean;
  get(path: string): string | undefined;
}

export interface Resolver {
  /** The package path (`src/lib.js`) a specifier names from the referrer's file, or null when it names nothing. */
  resolve(specifier: string, referrer: string, mode: ResolveMode): string | null;
  format(path: string): ModuleFormat;
}

export function createResolver(sources: ModuleSources): Resolver {
  const packageJsons = new Map<string, Record<string, unknown> | null>();

  const dirname = (path: string): string => {
    const slash = path.lastIndexOf('/');
    return slash === -1 ? '' : path.slice(0, slash);
  };
  const join = (dir: string, relative: string): string | null => {
    const segments = dir === '' ? [] : dir.split('/');
    for (const segment of relative.split('/')) {
      if (segment === '' || segment === '.') continue;
      if (segment === '..') {
        if (segments.length === 0) return null;
        segments.pop();
      } else {
        segments.push(segment);
      }
    }
    return segments.join('/');
  };
  const isRecord = (value: unknown): value is Record<string, unknown> =>
    typeof value === 'object' && value !== null && !Array.isArray(value);
  const readPackageJson = (dir: string): Record<string, unknown> | null => {
    const cached = packageJsons.get(dir);
    if (cached !== undefined) return cached;
    const text = sources.get(dir === '' ? 'package.json' : `${dir}/package.json`);
    let parsed: Record<string, unknown> | null = null;
    if (text !== undefined) {
      try {
        const value: unknown = JSON.parse(text);
        parsed = isRecord(value) ? value : {};
      } catch {
        parsed = {};
      }
    }
    packageJsons.set(dir, parsed);
    return parsed;
  };

  const asFile = (path: string): string | null => {
    for (const candidate of [path, `${path}.js`, `${path}.json`]) {
      if (candidate !== '' && sources.has(candidate)) return candidate;
    }
    return null;
  };
  const asDirectory = (dir: string): string | null => {
    const main = readPackageJson(dir)?.main;
    if (typeof main === 'string') {
      const mainPath = join(dir, main);
      const found = mainPath === null ? null : (asFile(mainPath) ?? asIndex(mainPath));
      if (found !== null) return found;
    }
    return asIndex(dir);
  };
  const asIndex = (dir: string): string | null => asFile(dir === '' ? 'index' : `${dir}/index`);
  const asFileOrDirectory = (path: string): string | null => asFile(path) ?? asDirectory(path);

  const conditionsFor = (mode: ResolveMode): string[] => [mode, 'node', 'default'];
  const target = (value: unknown, mode: ResolveMode, star: string): string | null => {
    if (typeof value === 'string') return value.replaceAll('*', star);
    if (Array.isArray(value)) {
      for (const item of value) {
        const found = target(item, mode, star);
        if (found !== null) return found;
      }
      return null;
    }
    if (isRecord(value)) {
      const conditions = conditionsFor(mode);
      for (const [key, nested] of Object.entries(value)) {
        if (!conditions.includes(key)) continue;
        const found = target(nested, mode, star);
        if (found !== null) return found;
      }
    }
    return null;
  };
  const exportsTarget = (exports: unknown, subpath: string, mode: ResolveMode): string | null => {
    const isSubpathMap = isRecord(exports) && Object.keys(exports).some((key) => key.startsWith('.'));
    if (!isSubpathMap) return subpath === '.' ? target(exports, mode, '') : null;
    const entries = Object.entries(exports);
    const exact = entries.find(([key]) => key === subpath);
    if (exact) return target(exact[1], mode, '');
    for (const [key, value] of entries) {
      const star = key.indexOf('*');
      if (star === -1) continue;
      const [prefix, suffix] = [key.slice(0, star), key.slice(star + 1)];
      if (subpath.startsWith(prefix) && subpath.endsWith(suffix) && subpath.length >= key.length - 1) {
        return target(value, mode, subpath.slice(prefix.length, subpath.length - suffix.length));
      }
    }
    return null;
  };
  const asPackage = (specifier: string, referrerDir: string, mode: ResolveMode): string | null => {
    const parts = specifier.split('/');
    const nameLength = specifier.startsWith('@') ? 2 : 1;
    if (parts.length < nameLength || parts.slice(0, nameLength).some((part) => part === '')) return null;
    const name = parts.slice(0, nameLength).join('/');
    const rest = parts.slice(nameLength).join('/');
    for (let dir: string | null = referrerDir; dir !== null; dir = dir === '' ? null : dirname(dir)) {
      if (dir.split('/').at(-1) === 'node_modules') continue;
      const packageDir = dir === '' ? `node_modules/${name}` : `${dir}/node_modules/${name}`;
      const manifest = readPackageJson(packageDir);
      if (manifest !== null && manifest.exports !== undefined) {
        const exported = exportsTarget(manifest.exports, rest === '' ? '.' : `./${rest}`, mode);
        const exportedPath = exported === null ? null : join(packageDir, exported);
        if (exportedPath !== null && sources.has(exportedPath)) return exportedPath;
        if (exported !== null) return null;
      }
      const found = rest === '' ? asDirectory(packageDir) : asFileOrDirectory(`${packageDir}/${rest}`);
      if (found !== null) return found;
    }
    return null;
  };

  return {
    resolve(specifier, referrer, mode) {
      if (specifier.startsWith('./') || specifier.startsWith('../') || specifier === '.' || specifier === '..') {
        const path = join(dirname(referrer), specifier);
        return path === null ? null : asFileOrDirectory(path);
      }
      if (specifier === '' || specifier.startsWith('/') || specifier.includes(':') || specifier.includes('\\')) {
        return null;
      }
      return asPackage(specifier, dirname(referrer), mode);
    },
    format(path) {
      if (path.endsWith('.json')) return 'json';
      if (path.endsWith('.mjs')) return 'module';
      if (path.endsWith('.cjs')) return 'commonjs';
      for (let dir: string | null = dirname(path); dir !== null; dir = dir === '' ? null : dirname(dir)) {
        const manifest = readPackageJson(dir);
        if (manifest !== null) return manifest.type === 'module' ? 'module' : 'commonjs';
      }
      return 'commonjs';
    },
  };
}
