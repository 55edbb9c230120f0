#!/usr/bin/env node
// Prints the base64 of a ZIP of a directory: the `code` field of POST /api/v1/functions/{name}/versions.
// Usage: node scripts/pack.ts <directory>
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { zipSync } from 'fflate';

const root = process.argv[2];
if (root === undefined || !statSync(root, { throwIfNoEntry: false })?.isDirectory()) {
  console.error('Usage: node scripts/pack.ts <directory>');
  process.exit(2);
}

const files: Record<string, Uint8Array> = {};
const walk = (directory: string): void => {
  for (const entry of readdirSync(directory, { withFileTypes: true })) {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) walk(path);
    else if (entry.isFile()) files[relative(root, path).split(sep).join('/')] = readFileSync(path);
  }
};
walk(root);
process.stdout.write(Buffer.from(zipSync(files, { level: 6 })).toString('base64'));
