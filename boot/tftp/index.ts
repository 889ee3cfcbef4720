// Public surface of boot/tftp: server/main.ts wires createTftpServer with createFsOpener (or an
// image-store opener) and embeds tftpConfigSchema in its config.
export { createTftpServer, type TftpServer, type TftpServerOptions, type TftpStats, type TftpLogger, type RefusalCause } from './server.ts';
export { createFsOpener, DEFAULT_IPXE_FILES, type FsOpenerOptions } from './fs-open.ts';
export { tftpConfigSchema, type TftpConfig } from './config.ts';
export { clientAddress, listenAddresses, listensOn, parseListenAddress, peerLabel, type Family, type ListenAddress } from './address.ts';
export type { OpenFn, OpenedFile } from './source.ts';
export type { FailureCause } from './transfer.ts';
