/** Non-secret settings of a Graph connection; the client secret is the connection's sealed credential. */
import { z } from 'zod';

export const GraphConfigSchema = z.object({
  /** Graph base URL, default the public cloud. */
  graphUrl: z.string().url().default('https://graph.microsoft.com/'),
  /** Token authority, default the public cloud. */
  authorityUrl: z.string().url().default('https://login.microsoftonline.com'),
  tenantId: z.string().min(1),
  clientId: z.string().min(1),
  /** A private CA (PEM) to trust instead of the system roots: private endpoints, the emulator. */
  caPem: z.string().optional(),
  /**
   * Public base URL of Astry's API; when set, each run keeps Graph change-notification
   * subscriptions pointing at `<base>/v1/webhooks/graph/<connection id>` (event-triggered runs).
   */
  notificationBaseUrl: z.string().url().optional(),
});
export type GraphConfig = z.infer<typeof GraphConfigSchema>;

/** The webhook path of a connection (registered by registerGraphWebhookRoutes). */
export const webhookPath = (connectionId: string): string => `/v1/webhooks/graph/${connectionId}`;
