// A rack node = one QEMU VM with no disk and a virtio NIC on a tap in the rack bridge, plus the shell program
// its BMC (ipmi_sim's chassis_control) runs to power it on, off and reset. The program starts QEMU
// daemonized with a pidfile (ipmi_sim waits for the program to exit and reads its stdout, so QEMU must not
// keep those open) and stops it by that PID. Every power action is appended to `power.log` with a
// millisecond timestamp, and a marker line is written into the serial log before each start, so the test
// can time "power-on → …" and read each boot's console separately.
//
// chassis_control protocol (FACTS.md): `PROG DEV get power|boot` prints `power:0|1` / `boot:pxe|default`;
// `PROG DEV set power 0|1 | reset 1 | boot pxe|default|cdrom|bios|none | shutdown 1`.
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface NodeIdentity {
  /** SMBIOS type 1 UUID (iPXE's ${uuid}, /sys/class/dmi/id/product_uuid) */
  uuid: string;
  serial: string;
  manufacturer: string;
  product: string;
  /** SMBIOS type 0 BIOS version */
  biosVersion: string;
  mac: string;
}

export interface NodeSpec extends NodeIdentity {
  name: string;
  tap: string;
  /** 'bios' (SeaBIOS + the virtio-net ROM's iPXE), 'uefi' (OVMF's own PXE), or 'uefi-sb': OVMF with Microsoft's keys
   * enrolled and Secure Boot enforcing (Debian's OVMF_CODE_4M.ms.fd + a copy of OVMF_VARS_4M.ms.fd) */
  firmware?: 'bios' | 'uefi' | 'uefi-sb';
  memoryMiB?: number;
  /** QEMU -cpu model (default max) */
  cpu?: string;
  /** further NICs after the boot NIC (eth1, eth2 … in the guest, by PCI order), without an option ROM: they never
   * netboot */
  extraNics?: { tap: string; mac: string }[];
}

export interface NodeFiles {
  dir: string;
  /** serial console of every boot, appended; each power-on starts with a POWER_ON_MARKER line */
  serialLog: string;
  /** one line per BMC action: `<epoch ms> <action> …` */
  powerLog: string;
  pidFile: string;
  /** the chassis_control program (without the DEV argument) */
  control: string;
  /** 2-byte fw_cfg file holding SeaBIOS's serial console port */
  serconPort: string;
  /** the node's own UEFI variable store (Secure Boot nodes): a copy of OVMF_VARS_4M.ms.fd */
  efiVars: string;
}

export const POWER_ON_MARKER = '=== bfe2e power-on';

const OVMF = '/usr/share/ovmf/OVMF.fd';
/** Debian's ovmf: the SMM-enforced Secure Boot build, and variables with Microsoft's KEK/db (and Secure Boot on) */
export const OVMF_SB_CODE = '/usr/share/OVMF/OVMF_CODE_4M.ms.fd';
export const OVMF_SB_VARS = '/usr/share/OVMF/OVMF_VARS_4M.ms.fd';
const isUefi = (spec: NodeSpec) => spec.firmware === 'uefi' || spec.firmware === 'uefi-sb';

/** The firmware part of the argv. Secure Boot: the secboot build needs SMM (q35, smm=on) and a secure flash, or an OS
 * could rewrite the variables that hold the keys; each node gets its own writable copy of the variable store. */
function firmwareArgs(spec: NodeSpec, files: Pick<NodeFiles, 'serconPort' | 'efiVars'>): string[] {
  if (spec.firmware === 'uefi-sb')
    return [
      '-machine', 'q35,smm=on',
      '-global', 'driver=cfi.pflash01,property=secure,value=on',
      '-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_SB_CODE}`,
      '-drive', `if=pflash,format=raw,unit=1,file=${files.efiVars}`,
    ];
  // SeaBIOS prints (and lets option ROMs such as iPXE print) to the VGA console only, and there is no VGA:
  // fw_cfg etc/sercon-port (a little-endian integer, 0x3f8 = COM1) makes it mirror that text to the serial
  // port, so the DHCP / script lines of the ROM iPXE reach the serial log. OVMF writes to serial by itself.
  return spec.firmware === 'uefi' ? ['-bios', OVMF] : ['-fw_cfg', `name=etc/sercon-port,file=${files.serconPort}`];
}

/** QEMU's argv for a node (daemonized, serial to a file, network boot only). */
export function qemuArgs(spec: NodeSpec, files: Pick<NodeFiles, 'serialLog' | 'pidFile' | 'serconPort' | 'efiVars'>): string[] {
  const smbios0 = `type=0,vendor=bootfarm-e2e,version=${spec.biosVersion}`;
  const smbios1 = `type=1,uuid=${spec.uuid},serial=${spec.serial},manufacturer=${spec.manufacturer},product=${spec.product}`;
  return [
    'qemu-system-x86_64',
    // KVM does not work on this machine (FACTS.md): TCG
    '-accel', 'tcg',
    // `max` under TCG: the agent is a Bun binary, which dies with SIGILL (exit 132) on the default qemu64 CPU
    // (no SSE4.2/POPCNT/AVX2); SeaBIOS, OVMF and iPXE are fine with `max` (measured)
    '-cpu', spec.cpu ?? 'max',
    '-m', String(spec.memoryMiB ?? 512),
    '-smp', '1',
    '-nodefaults', '-vga', 'none', '-display', 'none', '-monitor', 'none',
    '-name', spec.name,
    ...firmwareArgs(spec, files),
    '-smbios', smbios0,
    '-smbios', smbios1,
    '-netdev', `tap,id=n0,ifname=${spec.tap},script=no,downscript=no`,
    // UEFI: no option ROM on the NIC (QEMU would load iPXE's EFI driver from efi-virtio.rom), so OVMF's own
    // PXE client boots and fetches snponly.efi by TFTP, as a real server's firmware would
    '-device', `virtio-net-pci,netdev=n0,mac=${spec.mac}${isUefi(spec) ? ',romfile=' : ''}`,
    ...(spec.extraNics ?? []).flatMap((n, k) => ['-netdev', `tap,id=n${k + 1},ifname=${n.tap},script=no,downscript=no`, '-device', `virtio-net-pci,netdev=n${k + 1},mac=${n.mac},romfile=`]),
    '-boot', 'order=n',
    '-chardev', `file,id=s0,path=${files.serialLog},append=on`,
    '-serial', 'chardev:s0',
    '-daemonize', '-pidfile', files.pidFile,
  ];
}

const sh = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Writes the node's directory: the control program and empty logs. */
export function writeNodeFiles(spec: NodeSpec, dir: string): NodeFiles {
  mkdirSync(dir, { recursive: true });
  const files: NodeFiles = {
    dir,
    serialLog: join(dir, 'serial.log'),
    powerLog: join(dir, 'power.log'),
    pidFile: join(dir, 'qemu.pid'),
    control: join(dir, 'chassis-control.sh'),
    serconPort: join(dir, 'sercon-port.bin'),
    efiVars: join(dir, 'OVMF_VARS.fd'),
  };
  if (spec.firmware === 'uefi-sb') copyFileSync(OVMF_SB_VARS, files.efiVars);
  writeFileSync(files.serconPort, Buffer.from([0xf8, 0x03]));
  writeFileSync(files.serialLog, '');
  writeFileSync(files.powerLog, '');
  writeFileSync(join(dir, 'boot'), 'pxe\n');
  const qemu = qemuArgs(spec, files).map(sh).join(' ');
  const script = `#!/bin/sh
# chassis_control for rack node ${spec.name} (written by test/e2e/qemu.ts); runs inside the rack netns.
D=${sh(dir)}
PIDF=${sh(files.pidFile)}
LOG=${sh(files.serialLog)}
now() { date +%s%3N; }
running() { [ -s "$PIDF" ] && kill -0 "$(cat "$PIDF")" 2>/dev/null; }
start() {
  running && return 0
  echo "${POWER_ON_MARKER} $(now) boot=$(cat "$D/boot") ===" >> "$LOG"
  echo "$(now) power-on" >> "$D/power.log"
  ${qemu} >> "$D/qemu.err" 2>&1 || echo "$(now) qemu-failed" >> "$D/power.log"
}
stop() {
  if running; then
    P=$(cat "$PIDF")
    kill "$P" 2>/dev/null
    i=0; while kill -0 "$P" 2>/dev/null && [ $i -lt 40 ]; do sleep 0.05; i=$((i+1)); done
    kill -9 "$P" 2>/dev/null
    echo "$(now) power-off" >> "$D/power.log"
  fi
  rm -f "$PIDF"
}
DEV=$1; OP=$2; shift 2
echo "$(now) call $OP $*" >> "$D/calls.log"
if [ "$OP" = get ]; then
  for what in "$@"; do
    case $what in
      power) if running; then echo power:1; else echo power:0; fi ;;
      boot) echo "boot:$(cat "$D/boot")" ;;
    esac
  done
  exit 0
fi
case $1 in
  power) if [ "$2" = 1 ]; then start; else stop; fi ;;
  shutdown) stop ;;
  reset) stop; echo "$(now) reset" >> "$D/power.log"; start ;;
  boot) echo "$2" > "$D/boot" ;;
esac
exit 0
`;
  writeFileSync(files.control, script);
  chmodSync(files.control, 0o755);
  return files;
}

export function qemuPid(files: NodeFiles): number | null {
  if (!existsSync(files.pidFile)) return null;
  const pid = Number(readFileSync(files.pidFile, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}

/** A locally administered unicast MAC (52:54:00 is QEMU's prefix) derived from the node index (and, for a node's
 * further NICs, the NIC's number: 1 for eth1 …). */
export const nodeMac = (i: number, nic = 0) => `52:54:00:e2:e${nic.toString(16)}:${(i + 1).toString(16).padStart(2, '0')}`;
