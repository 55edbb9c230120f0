/**
 * The one table of runtimes: name, the driver that runs it, the handler format and the files a handler
 * may live in. Adding a runtime is adding a row here (and a driver in runners/).
 */
export type RuntimeDriver = 'isolate' | 'container';

export interface RuntimeSpec {
  readonly name: string;
  readonly driver: RuntimeDriver;
  /** Full-string pattern of a valid handler. */
  readonly handlerPattern: RegExp;
  /** Human description of the handler format, used in error messages. */
  readonly handlerFormat: string;
  /** Files the handler's module may be, given the handler string; the ZIP must hold one of them. */
  readonly handlerFiles: (handler: string) => readonly string[];
}

const splitLast = (handler: string): [string, string] => {
  const dot = handler.lastIndexOf('.');
  return [handler.slice(0, dot), handler.slice(dot + 1)];
};

export const RUNTIMES: readonly RuntimeSpec[] = [
  {
    name: 'Node24',
    driver: 'isolate',
    handlerPattern: /^(?:[A-Za-z0-9_-]+\/)*[A-Za-z0-9_-]+\.[A-Za-z_$][A-Za-z0-9_$]*$/,
    handlerFormat: "'<file>.<export>', e.g. 'index.handler' or 'src/app.main' (file without extension)",
    handlerFiles: (handler) => {
      const [file] = splitLast(handler);
      return [`${file}.js`, `${file}.mjs`, `${file}.cjs`];
    },
  },
  {
    name: 'Python311',
    driver: 'container',
    handlerPattern: /^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+$/,
    handlerFormat: "'<module>.<function>', e.g. 'handler.process_image' or 'pkg.module.main'",
    handlerFiles: (handler) => {
      const [module] = splitLast(handler);
      const path = module.replaceAll('.', '/');
      return [`${path}.py`];
    },
  },
];

export const RUNTIME_NAMES: readonly string[] = RUNTIMES.map((runtime) => runtime.name);

export const runtimeSpec = (name: string): RuntimeSpec | undefined => RUNTIMES.find((runtime) => runtime.name === name);

/** Splits a handler into the module part and the exported name (`index.handler` → ['index', 'handler']). */
export const handlerParts = splitLast;
