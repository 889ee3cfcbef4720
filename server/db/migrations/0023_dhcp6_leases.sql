CREATE TABLE "dhcp6_leases" (
	"address" text PRIMARY KEY NOT NULL,
	"duid" text NOT NULL,
	"iaid" bigint NOT NULL,
	"mac" text,
	"state" text NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"pool" text NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "dhcp6_leases_client_idx" ON "dhcp6_leases" USING btree ("duid","iaid");--> statement-breakpoint
CREATE INDEX "dhcp6_leases_expires_idx" ON "dhcp6_leases" USING btree ("expires_at");