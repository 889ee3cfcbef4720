CREATE TABLE "dhcp_leases" (
	"ip" text PRIMARY KEY NOT NULL,
	"mac" text NOT NULL,
	"client_id" text,
	"hostname" text,
	"state" text NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"pool" text NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "dhcp_leases_mac_idx" ON "dhcp_leases" USING btree ("mac");--> statement-breakpoint
CREATE INDEX "dhcp_leases_expires_idx" ON "dhcp_leases" USING btree ("expires_at");