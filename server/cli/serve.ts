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
      ctx.keepRunning = true;
    });
}
