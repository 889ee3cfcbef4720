// The part of iPXE a simulated node needs: run a script the server rendered (boot/ipxe/script.ts) the way iPXE
// does — settings expanded, `chain` fetches and runs the next script, `kernel`/`initrd` fetch the images,
// `boot` ends the run, `sleep` waits, `|| goto label` on failure, `exit` gives up. Only the commands our scripts
// use; anything else is an error, so a change in what the server renders shows up here.
import type { SimDownload, SimFetch } from './http.ts';

export interface IpxeMachine {
  uuid: string;
  /** aa:bb:cc:dd:ee:ff */
  mac: string;
  serial: string;
  manufacturer: string;
  product: string;
  platform?: 'pcbios' | 'efi';
}

export interface IpxeBoot {
  kernelUrl: string;
  initrdUrl: string;
  /** kernel arguments after expansion (initrd=…, bootfarm.*, BOOTIF=…) */
  args: string[];
  /** scripts fetched, retries included */
  scripts: number;
}

export interface IpxeOptions {
  fetch: SimFetch;
  sleep: (ms: number) => Promise<void>;
  /** 'head': ask for the images without transferring them (a storm of 200 nodes would move ~15 GB through a
   * 2-core machine); 'full': download them as iPXE does; 'stream': download them, count the bytes, keep none */
  images?: 'head' | 'full' | 'stream';
  /** for images: 'stream' */
  download?: SimDownload;
  onBytes?: (n: number) => void;
  /** the script reached its `kernel` line: the image transfer starts */
  onImages?: () => void;
  /** give up after this many scripts (a server that keeps saying "retry") */
  maxScripts?: number;
  log?: (line: string) => void;
}

/** iPXE's settings as our scripts use them (${uuid}, ${netX/mac:hexhyp}, ${serial:uristring} …). */
export function expand(line: string, m: IpxeMachine): string {
  const settings: Record<string, string> = {
    uuid: m.uuid,
    'netX/mac': m.mac,
    'net0/mac': m.mac,
    serial: m.serial,
    manufacturer: m.manufacturer,
    product: m.product,
    platform: m.platform ?? 'pcbios',
    buildarch: m.platform === 'efi' ? 'x86_64' : 'i386',
  };
  return line.replace(/\$\{([a-z0-9/]+)(?::([a-z]+))?\}/gi, (_, name: string, type?: string) => {
    const v = settings[name] ?? '';
    if (type === 'hexhyp') return v.replace(/:/g, '-');
    if (type === 'uristring') return encodeURIComponent(v);
    return v;
  });
}

export async function runIpxe(firstUrl: string, m: IpxeMachine, { fetch, sleep, images = 'head', download, onBytes, onImages, maxScripts = 200, log = () => {} }: IpxeOptions): Promise<IpxeBoot> {
  let scripts = 0;
  let url = firstUrl;
  const get = async (u: string, method: 'GET' | 'HEAD' = 'GET') => {
    const r = await fetch(u, { method });
    if (!r.ok) throw new Error(`${method} ${u}: ${r.status}`);
    return r;
  };
  const image = async (u: string) => {
    if (images !== 'stream') return void (await get(u, images === 'full' ? 'GET' : 'HEAD').then((r) => r.arrayBuffer()));
    if (!download) throw new Error('iPXE: images: stream needs a download function');
    const r = await download(u, onBytes);
    if (r.status < 200 || r.status >= 300) throw new Error(`GET ${u}: ${r.status}`);
  };
  for (;;) {
    if (++scripts > maxScripts) throw new Error(`iPXE: gave up after ${maxScripts} scripts (last ${url})`);
    let text: string;
    try {
      text = await (await get(url)).text();
    } catch (e) {
      // iPXE's `chain … || goto failed` in our scripts sleeps 10 s and starts again from /boot.ipxe
      log(`chain ${url}: ${(e as Error).message}; again in 10 s`);
      await sleep(10_000);
      url = firstUrl;
      continue;
    }
    if (!text.startsWith('#!ipxe')) throw new Error(`iPXE: ${url} is not an iPXE script: ${text.slice(0, 80)}`);
    const lines = text.split('\n').map((l) => l.trim());
    let kernel: { url: string; args: string[] } | undefined;
    let initrd: string | undefined;
    let next: string | undefined;
    for (let pc = 0; pc < lines.length && next === undefined; pc++) {
      const raw = lines[pc]!;
      if (!raw || raw.startsWith('#') || raw.startsWith(':')) continue;
      const [cmdPart, onFail] = raw.split(/\s+\|\|\s+/) as [string, string | undefined];
      const words = expand(cmdPart, m).split(/\s+/);
      const fail = () => {
        const label = /^goto\s+(\S+)$/.exec(onFail ?? '')?.[1];
        if (!label) throw new Error(`iPXE: \`${cmdPart}\` failed with no handler`);
        const at = lines.indexOf(`:${label}`);
        if (at < 0) throw new Error(`iPXE: no label ${label}`);
        pc = at;
      };
      try {
        switch (words[0]) {
          case 'echo':
            log(words.slice(1).join(' '));
            break;
          case 'isset':
            if (!words[1]) fail();
            break;
          case 'sleep':
            await sleep(Number(words[1]) * 1000);
            break;
          case 'chain':
            next = words.slice(1).find((w) => /^https?:\/\//.test(w));
            break;
          case 'kernel': {
            const [u, ...args] = words.slice(1);
            onImages?.();
            await image(u!);
            kernel = { url: u!, args };
            break;
          }
          case 'initrd': {
            // initrd [--name NAME] URL
            const u = words.slice(1).find((w) => /^https?:\/\//.test(w));
            if (!u) throw new Error(`iPXE: no URL in ${raw}`);
            await image(u);
            initrd = u;
            break;
          }
          case 'boot':
            if (!kernel || !initrd) throw new Error('boot without kernel/initrd');
            return { kernelUrl: kernel.url, initrdUrl: initrd, args: kernel.args, scripts };
          case 'exit':
            throw new Error(`iPXE: the script exited: ${text.slice(0, 300)}`);
          case 'goto':
            pc = lines.indexOf(`:${words[1]}`);
            break;
          default:
            throw new Error(`iPXE: command ${words[0]} is not simulated (${raw})`);
        }
      } catch (e) {
        if ((e as Error).message.startsWith('iPXE:') || !onFail) throw e;
        fail();
      }
    }
    if (next === undefined) throw new Error(`iPXE: script ${url} ended without booting or chaining`);
    url = next;
  }
}

/** bootfarm.token=… and friends from a kernel command line. */
export function cmdlineArg(args: string[] | string, name: string): string | undefined {
  const list = typeof args === 'string' ? args.split(/\s+/) : args;
  const hit = list.find((a) => a.startsWith(`${name}=`));
  return hit?.slice(name.length + 1);
}
