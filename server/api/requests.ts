// Request bodies shared by a JSON API route and the dashboard form that does the same thing (server/api/ui.ts):
// kept apart from the route files so the dashboard can use them without importing the routes.
import { z } from 'zod';

export const PowerRequest = z
  .strictObject({
    /** on | off | cycle | reset: hard power; soft: ACPI power button; nmi: diagnostic interrupt; identify: the
     * chassis LED; bmc-reset: restart the BMC itself (the host keeps running) */
    action: z.enum(['on', 'off', 'cycle', 'reset', 'soft', 'nmi', 'identify', 'bmc-reset']),
    /** set the next boot device first (pxe starts the boot flow); only with on, cycle or reset */
    bootdev: z.enum(['pxe', 'disk']).optional(),
    /** identify only: how long the LED blinks (0 turns it off; default 15) */
    seconds: z.number().int().min(0).max(255).optional(),
  })
  .refine((b) => !b.bootdev || ['on', 'cycle', 'reset'].includes(b.action), { message: 'bootdev goes with on, cycle or reset', path: ['bootdev'] })
  .refine((b) => b.seconds === undefined || b.action === 'identify', { message: 'seconds goes with identify', path: ['seconds'] });

export const PromoteBody = z.strictObject({
  from: z.string().min(1).max(32),
  to: z.string().min(1).max(32),
  reason: z.string().min(1).max(1024).optional(),
  /** skip failed gates (admin role only); recorded in history */
  force: z.boolean().optional(),
});

export const RollbackBody = z.strictObject({ channel: z.string().min(1).max(32), reason: z.string().min(1).max(1024).optional() });
