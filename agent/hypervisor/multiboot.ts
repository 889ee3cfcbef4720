// A guest small enough for double emulation: a Multiboot (v1) kernel of a few dozen bytes that writes one line to
// COM1 and halts. Used by the self-test when the node has no KVM (the test rack's nodes are TCG VMs: a Linux guest
// under TCG inside TCG takes minutes, agent/README.md has the measurement). QEMU's -kernel loads it itself
// (hw/i386/multiboot.c, with the multiboot_dma.bin option ROM): no bootloader, no disk.
//
// Multiboot Specification 0.6.96 §3.1: the header (magic 0x1BADB002, flags, checksum with magic + flags + checksum = 0
// mod 2^32) within the first 8192 bytes, 4-byte aligned; flag bit 16 says the address fields follow, so a flat
// binary needs no ELF: header_addr, load_addr, load_end_addr (0: the whole file), bss_end_addr (0: none), entry_addr.
// The machine state at entry (§3.2): 32-bit protected mode, flat segments, interrupts off — so `out` to the 16550 at
// 0x3F8 works without setting anything up (QEMU's UART takes bytes without a divisor programmed).

const MAGIC = 0x1badb002;
const FLAGS = 0x00010000;
const LOAD = 0x0010_0000;
const HEADER_BYTES = 32;

/** Machine code at the entry point (i386, hand-assembled; the test disassembles it with objdump):
 *   mov esi, MSG ; mov dx, 0x3f8 ; 1: lodsb ; test al, al ; jz 2f ; out dx, al ; jmp 1b ; 2: cli ; hlt ; jmp 2b */
function code(msgAddr: number): number[] {
  const le32 = (n: number) => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
  return [0xbe, ...le32(msgAddr), 0x66, 0xba, 0xf8, 0x03, 0xac, 0x84, 0xc0, 0x74, 0x03, 0xee, 0xeb, 0xf8, 0xfa, 0xf4, 0xeb, 0xfc];
}

export function multibootBanner(line: string): Uint8Array {
  if (!/^[\x20-\x7e]*$/.test(line)) throw new Error('the banner is one line of printable ASCII');
  const entry = LOAD + HEADER_BYTES;
  const body = code(0);
  const msgAddr = entry + body.length;
  const bytes = [...code(msgAddr), ...new TextEncoder().encode(`${line}\r\n`), 0];
  const out = new Uint8Array(HEADER_BYTES + bytes.length);
  const dv = new DataView(out.buffer);
  const words = [MAGIC, FLAGS, (-(MAGIC + FLAGS)) >>> 0, LOAD, LOAD, 0, 0, entry];
  words.forEach((w, i) => dv.setUint32(i * 4, w, true));
  out.set(bytes, HEADER_BYTES);
  return out;
}
