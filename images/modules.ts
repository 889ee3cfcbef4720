// Kernel module selection for the OS images: which .ko files go into an initramfs and in which order /init loads
// them. Pure functions over the text of modules.dep (written by `depmod -b` over the unpacked kernel package,
// which ships no modules.dep of its own).

/** Module name as the kernel knows it: file basename without .ko[.xz|.zst|.gz], '-' folded to '_'. */
export function moduleName(path: string): string {
  const base = path.slice(path.lastIndexOf('/') + 1).replace(/\.ko(\.(xz|zst|gz))?$/, '');
  return base.replaceAll('-', '_');
}

export interface ModuleIndex {
  /** module name → path relative to /lib/modules/KVER */
  path: Map<string, string>;
  /** module name → names of the modules it needs (direct and indirect, as depmod lists them) */
  deps: Map<string, string[]>;
}

/** Parses modules.dep: one `path: dep-path dep-path …` line per module. */
export function parseModulesDep(text: string): ModuleIndex {
  const path = new Map<string, string>();
  const deps = new Map<string, string[]>();
  for (const [n, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Error(`modules.dep line ${n + 1}: no "path:" in ${JSON.stringify(line)}`);
    const file = line.slice(0, colon);
    const name = moduleName(file);
    path.set(name, file);
    deps.set(name, line.slice(colon + 1).trim().split(/\s+/).filter(Boolean).map(moduleName));
  }
  return { path, deps };
}

export interface ModuleRequest {
  /** modules that must be there (the build fails without them) */
  required: string[];
  /** modules taken only if the kernel package has them (vendor NIC drivers vary between kernel builds) */
  optional?: string[];
}

export interface ModuleSelection {
  /** every module to load, each after all of its dependencies; order is deterministic */
  order: string[];
  /** optional modules the kernel package does not have */
  missing: string[];
  /** modules requested that are built into the kernel (nothing to copy or load) */
  builtin: string[];
}

/**
 * Resolves the requested modules and their dependencies into a load order (dependencies first). The order
 * follows the request list, then depth-first through the dependencies, so the same request gives the same
 * order on every build.
 */
export function selectModules(index: ModuleIndex, request: ModuleRequest, builtins: ReadonlySet<string> = new Set()): ModuleSelection {
  const order: string[] = [];
  const seen = new Set<string>();
  const missing: string[] = [];
  const builtin: string[] = [];
  const visit = (name: string, chain: string[]): void => {
    if (seen.has(name)) return;
    if (chain.includes(name)) throw new Error(`module dependency cycle: ${[...chain, name].join(' → ')}`);
    const deps = index.deps.get(name);
    if (deps === undefined) throw new Error(`module ${name} (needed by ${chain.at(-1) ?? 'the image'}) is not in modules.dep`);
    // depmod lists the full closure, so visiting each dependency in turn places it before this module.
    for (const d of deps) visit(d, [...chain, name]);
    seen.add(name);
    order.push(name);
  };
  const want = (raw: string, optional: boolean): void => {
    const name = moduleName(raw);
    if (index.deps.has(name)) return visit(name, []);
    if (builtins.has(name)) return void builtin.push(name);
    if (optional) return void missing.push(name);
    throw new Error(`required module ${name} is neither in modules.dep nor built in`);
  };
  for (const m of request.required) want(m, false);
  for (const m of request.optional ?? []) want(m, true);
  return { order, missing, builtin };
}

/** Names listed in modules.builtin (paths like kernel/lib/crc32c.ko). */
export function parseModulesBuiltin(text: string): Set<string> {
  return new Set(text.split('\n').map((l) => l.trim()).filter(Boolean).map(moduleName));
}
