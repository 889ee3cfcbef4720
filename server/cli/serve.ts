// `bootfarm serve`: run the boot server in this process (config: BOOTFARM_CONFIG file + BOOTFARM_* env).
import type { Command } from 'commander';
import type { CliContext } from './context.ts';
import { loadConfig } from '../config.ts';
import { createLogger } from '../log.ts';
import { startServer } from '../main.ts';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('serve')
    .description('run the boot server (config: BOOTFARM_CONFIG file + BOOTFARM_* env)')
    .action(async () => {
      const config = loadConfig();
      const log = createLogger({ level: config.log.level });
      const running = await startServer(config, { log });
      const shutdown = async (sig: string) => {
        log.info({ sig }, 'shutting down');
        await running.stop();
        process.exit(0);
      };
      process.once('SIGINT', () => void shutdown('SIGINT'));
      process.once('SIGTERM', () => void shutdown('SIGTERM'));
      // SIGHUP: read the admin listener's certificate and key again (renewed by certbot, an ACME client, a
      // secret mount); a pair that does not load is logged and the old one kept
      process.on('SIGHUP', () => {
        if (!running.admin) return log.info('SIGHUP: no admin listener configured; nothing to reload');
        try {
          running.admin.reload();
        } catch (e) {
          log.error({ err: (e as Error).message }, 'SIGHUP: admin TLS certificate not reloaded; still serving the previous one');
        }
      });
      ctx.keepRunning = true;
    });
}
